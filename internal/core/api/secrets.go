package api

import (
	"net/http"
)

// secretsRotation is the answer of POST /v1/admin/secrets/rotate.
type secretsRotation struct {
	KeyID    string `json:"key_id"`
	Resealed int    `json:"resealed"`
}

// rotateSecretsKey seals every secret kept at rest under a new key and
// retires the old one (storage.Store.RotateSecretsKey); in a core group,
// on every core, through the log.
func (s *Server) rotateSecretsKey(c *call) error {
	id, n, err := s.writes.RotateSecretsKey()
	if err != nil {
		return err
	}
	s.log.Info("rotated the secrets key", "key", id, "resealed", n, "by", c.subject.Name)
	return reply(c, http.StatusOK, secretsRotation{KeyID: id, Resealed: n})
}
