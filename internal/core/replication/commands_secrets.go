package replication

import "github.com/edgefaas/edgefaas/internal/core/storage"

// The secrets key's command: a group shares one key ring (package
// secrets, group.go), so a rotation through any core is a log entry every
// member applies, never a change of one core's key file alone.

const opRotateSecretsKey op = 48

// RotateSecretsKey is storage.Store.RotateSecretsKeyTo: the group's new
// secrets key, sealed under the key that sealed where it was proposed
// (every member holds that one); each member makes it current and seals
// its records under it.
type RotateSecretsKey struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// SecretsRotation answers RotateSecretsKey: the new key's id and how many
// records the applying member sealed again.
type SecretsRotation struct {
	KeyID    string `json:"key_id"`
	Resealed int    `json:"resealed"`
}

func (RotateSecretsKey) op() op { return opRotateSecretsKey }

func (c RotateSecretsKey) apply(s *storage.Store) (any, error) {
	n, err := s.RotateSecretsKeyTo(c.ID, c.Key)
	if err != nil {
		return nil, err
	}
	return SecretsRotation{KeyID: c.ID, Resealed: n}, nil
}

// decodeSecretsCommand decodes the secrets key's command; nil for
// another op.
func decodeSecretsCommand(o op, body []byte) Command {
	if o == opRotateSecretsKey {
		return decodeAs[RotateSecretsKey](body)
	}
	return nil
}
