package replication

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Secrets in the log: the log and its snapshots are kept at rest on every
// member, so a write carries its sinks' and triggers' secrets sealed
// under the group's key, as the store keeps them (storage,
// secrets_group.go), and a compare-and-set carries only what it checks.
// Every member holds the group's keys: a core that joins asks a member
// for them (keysFrame) before it asks to join, over the group's mutual
// TLS, so it opens whatever the log and snapshots bring it.

// sealedNew returns nf with its sinks' and triggers' secrets sealed.
func sealedNew(s *storage.Store, nf storage.NewFunction) (storage.NewFunction, error) {
	var err error
	if nf.Sinks, err = s.SealedSinks(nf.Sinks); err != nil {
		return nf, fmt.Errorf("seal the sinks' secrets: %w", err)
	}
	if nf.Events, err = s.SealedEvents(nf.Events); err != nil {
		return nf, fmt.Errorf("seal the triggers' secrets: %w", err)
	}
	return nf, nil
}

// sealedUpdate returns u with the secrets of the sinks and triggers it
// sets sealed.
func sealedUpdate(s *storage.Store, u storage.FunctionUpdate) (storage.FunctionUpdate, error) {
	if u.Sinks != nil {
		sinks, err := s.SealedSinks(*u.Sinks)
		if err != nil {
			return u, fmt.Errorf("seal the sinks' secrets: %w", err)
		}
		u.Sinks = &sinks
	}
	if u.Events != nil {
		events, err := s.SealedEvents(*u.Events)
		if err != nil {
			return u, fmt.Errorf("seal the triggers' secrets: %w", err)
		}
		u.Events = &events
	}
	return u, nil
}

// seenOnly is the part of a function record its compare-and-set checks
// (its identity, owner and version): the entry need not carry the
// record's sinks and triggers, nor their secrets.
func seenOnly(f storage.Function) storage.Function {
	f.Sinks, f.Events = nil, nil
	return f
}

// opened returns f, written from an entry's sealed values, with its
// secrets opened, for the proposer's answer and the member's triggers. A
// member that cannot open them answers f as it is: the record is stored
// and every read of it says why it does not open.
func opened(s *storage.Store, f storage.Function) storage.Function {
	o := f
	o.Sinks, o.Events = slices.Clone(f.Sinks), slices.Clone(f.Events)
	if err := s.OpenSecrets(&o); err != nil {
		return f
	}
	return o
}

// RotateSecretsKey is storage.Store.RotateSecretsKey through the log: the
// new key is made here and travels sealed under the current one.
func (w *Writes) RotateSecretsKey() (keyID string, resealed int, err error) {
	id, sealed, err := w.store().NewSealedSecretsKey()
	if err != nil {
		return "", 0, err
	}
	r, err := proposeAs[SecretsRotation](w, RotateSecretsKey{ID: id, Key: sealed})
	if err != nil {
		return "", 0, err
	}
	return r.KeyID, r.Resealed, nil
}

// keysFrame starts a forwarded frame that asks a member for the group's
// secrets keys: no command's op has this value.
const keysFrame = 0xF4

// secretsKeys answers keysFrame: the member's key ring as a key file.
func (m *Member) secretsKeys() ([]byte, error) {
	if m.secrets == nil {
		return nil, errors.New("this member keeps no secrets keys")
	}
	return m.secrets.Export(), nil
}

// SecretsKeys asks the member at target for the group's secrets keys, as
// a key file's contents. Like Join, the asking core need not be a member
// yet: the transport's mutual TLS and peer check admit cores only.
func (t *Transport) SecretsKeys(target raft.ServerAddress) ([]byte, error) {
	r, err := t.roundTrip(target, []byte{keysFrame})
	if err != nil {
		return nil, err
	}
	if r.Error != "" {
		return nil, remoteError{msg: r.Error, kind: errorKinds[r.Kind]}
	}
	var keys []byte
	if err := json.Unmarshal(r.Value, &keys); err != nil || len(keys) == 0 {
		return nil, fmt.Errorf("the secrets keys from %s: %v", target, err)
	}
	return keys, nil
}
