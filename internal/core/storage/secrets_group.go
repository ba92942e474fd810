package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"syscall"

	"github.com/edgefaas/edgefaas/internal/core/secrets"
)

// Secrets in a core group: a write that travels through the group's log
// carries its secrets already sealed (SealedSinks, SealedEvents), so the
// log and its snapshots hold them as the store does; the store writes a
// sealed value as it came (sealSinks and sealEvents leave it alone), and
// OpenSecrets opens what such a write answers. Every member holds the
// group's keys (package secrets, group.go), so each opens what any
// sealed.

// SealedSinks returns sinks with their secrets sealed under the current
// key, in new slices and maps, for a write made through a group's log.
func (s *Store) SealedSinks(sinks []Sink) ([]Sink, error) { return s.sealSinks(sinks, aadSinks) }

// SealedEvents returns events with their MQTT passwords sealed, in new
// slices, for a write made through a group's log.
func (s *Store) SealedEvents(events []Event) ([]Event, error) {
	return s.sealEvents(events, aadEvents)
}

// OpenSecrets opens in place the sealed secrets of a function a write
// answered (one whose sinks or events came sealed).
func (s *Store) OpenSecrets(f *Function) error { return s.openRecord(f) }

// NewSealedSecretsKey makes a new key for a group's rotation and returns
// its id and the key sealed under the current one
// (secrets.Keyring.NewSealedKey); nothing changes until
// RotateSecretsKeyTo.
func (s *Store) NewSealedSecretsKey() (id, sealed string, err error) {
	if s.keys == nil {
		return "", "", fmt.Errorf("rotate: the store has no secrets key")
	}
	return s.keys.NewSealedKey()
}

// RotateSecretsKeyTo is RotateSecretsKey with the new key given, sealed
// under a key the ring holds (NewSealedSecretsKey): a group's log carries
// it so, and every member makes the same key current and seals its
// records under it. A key the ring holds already (a member that took it
// when it joined, replaying the entry, or one whose sealing was cut short
// by a full disk) stays where it is; the records are sealed under the
// current key all the same. The sealed key is kept in the store too
// (meta/secrets_keys/), in the batch of the sealed records, so a snapshot
// carries it to a member that missed the entry (TakeRotatedKeys).
func (s *Store) RotateSecretsKeyTo(id, sealedKey string) (resealed int, err error) {
	if s.keys == nil {
		return 0, fmt.Errorf("rotate: the store has no secrets key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	if err := s.keys.AddSealed(id, sealedKey); err != nil && !errors.Is(err, secrets.ErrKeyHeld) {
		if errors.Is(err, syscall.ENOSPC) {
			// A group member waits for space and applies the entry
			// again, as for the store's own writes.
			return 0, fmt.Errorf("%w: %w", ErrDiskFull, err)
		}
		return 0, err
	}
	return s.sealAll(&rotatedKey{id: id, sealed: sealedKey})
}

// rotatedKey is a group's rotation as the store keeps it: the new key's
// id and the key sealed under the one current before it.
type rotatedKey struct{ id, sealed string }

// TakeRotatedKeys adds to the key ring the rotated keys the store keeps
// and the ring lacks, each opened with a key the ring holds, in the order
// they open (a key sealed under an earlier rotated one opens after it), so
// the last rotation's key ends current. A member that restored a snapshot
// taken past rotations it never applied (down meanwhile, or joined with
// the keys of a member not yet past them) runs it: the snapshot's records
// are sealed under the newest key. It returns how many keys it added and
// the ids of those no held key opens (a member that never had the group's
// keys), whose records stay unreadable, each read saying why.
func (s *Store) TakeRotatedKeys() (added int, unopened []string, err error) {
	if s.keys == nil {
		return 0, nil, nil
	}
	pending := map[string]string{}
	err = s.scan(prefixRotatedKeys, func(k, v []byte) error {
		var sealed string
		if err := json.Unmarshal(v, &sealed); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		pending[string(k[len(prefixRotatedKeys):])] = sealed
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read the rotated secrets keys: %w", err)
	}
	for progress := true; progress; {
		progress = false
		for _, id := range slices.Sorted(maps.Keys(pending)) {
			err := s.keys.AddSealed(id, pending[id])
			switch {
			case errors.Is(err, secrets.ErrUnknownKey):
				continue // sealed under a key not taken yet
			case err == nil:
				added++
			case !errors.Is(err, secrets.ErrKeyHeld):
				return added, nil, err
			}
			delete(pending, id)
			progress = true
		}
	}
	return added, slices.Sorted(maps.Keys(pending)), nil
}
