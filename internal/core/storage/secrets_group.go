package storage

import (
	"errors"
	"fmt"

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
// current key all the same.
func (s *Store) RotateSecretsKeyTo(id, sealedKey string) (resealed int, err error) {
	if s.keys == nil {
		return 0, fmt.Errorf("rotate: the store has no secrets key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	if err := s.keys.AddSealed(id, sealedKey); err != nil && !errors.Is(err, secrets.ErrKeyHeld) {
		return 0, err
	}
	return s.sealAll()
}
