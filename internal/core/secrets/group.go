package secrets

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// A core group shares one key ring (docs/RATIONALE.md, "Why a core group
// shares one secrets key"): its log entries and snapshots carry secrets
// sealed, and every member must open them. The core that makes the group
// keeps its own ring; a core that joins takes the ring of a member
// (Export, Adopt) before it asks to join, over the group's mutual TLS; a
// rotation is a log entry carrying the new key sealed under the current
// one (NewSealedKey, AddSealed), so the new key is never at rest in plain
// outside the key files.

// aadKey is the associated data of a key sealed for a rotation, with its
// id: a sealed key cannot pass for a secret, nor for another key.
const aadKey = "edgefaas secrets key "

// KeepOldKeys makes Retire keep every key: a group's log may still hold
// entries sealed under an older key, which a member that joins replays.
func (kr *Keyring) KeepOldKeys() {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	kr.keepOld = true
}

// Export returns the ring as a key file's contents, the current key
// first, for a core that joins the group.
func (kr *Keyring) Export() []byte {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	var b strings.Builder
	for _, k := range kr.keys {
		fmt.Fprintf(&b, "%s %s\n", k.id, base64.StdEncoding.EncodeToString(k.raw))
	}
	return []byte(b.String())
}

// Adopt makes the keys of a key file's contents (Export's) this ring's
// first, the first of them sealing; the keys the ring held stay after
// them, so what this core sealed before still opens. The file is
// rewritten crash-safely, only if it changes.
func (kr *Keyring) Adopt(file []byte) error {
	got, err := parse(file)
	if err != nil {
		return fmt.Errorf("adopt the group's secrets keys: %w", err)
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	for _, g := range got {
		for _, k := range kr.keys {
			if g.id == k.id && string(g.raw) != string(k.raw) {
				return fmt.Errorf("adopt the group's secrets keys: key %s differs from the one in %s", k.id, kr.path)
			}
		}
	}
	keys := slices.Clone(got)
	for _, k := range kr.keys {
		if !slices.ContainsFunc(got, func(g key) bool { return g.id == k.id }) {
			keys = append(keys, k)
		}
	}
	if slices.EqualFunc(keys, kr.keys, func(a, b key) bool { return a.id == b.id }) {
		return nil
	}
	old := kr.keys
	kr.keys = keys
	if err := kr.write(); err != nil {
		kr.keys = old
		return err
	}
	return nil
}

// NewSealedKey makes a new random key and returns its id and the key
// sealed under the current one: how a group's rotation carries it through
// the log. The ring does not change until AddSealed.
func (kr *Keyring) NewSealedKey() (id, sealed string, err error) {
	k, err := newKey()
	if err != nil {
		return "", "", err
	}
	sealed, err = kr.Seal(k.raw, aadKey+k.id)
	if err != nil {
		return "", "", err
	}
	return k.id, sealed, nil
}

// ErrKeyHeld means AddSealed was given a key the ring holds already.
var ErrKeyHeld = errors.New("the key file holds this key already")

// AddSealed opens a key NewSealedKey sealed (under any key of the ring)
// and makes it current, writing the file crash-safely with the old keys
// after it. A key the ring holds already is left where it is
// (ErrKeyHeld): a member that joined after the rotation took it with the
// ring and replays the entry.
func (kr *Keyring) AddSealed(id, sealed string) error {
	if !validID(id) {
		return fmt.Errorf("add a sealed key: bad key id %q", id)
	}
	if kr.holds(id) {
		return ErrKeyHeld
	}
	raw, err := kr.Open(sealed, aadKey+id)
	if err != nil {
		return fmt.Errorf("add the sealed key %s: %w", id, err)
	}
	if len(raw) != 32 {
		return fmt.Errorf("add the sealed key %s: %d bytes, want 32", id, len(raw))
	}
	k, err := makeKey(id, raw)
	if err != nil {
		return err
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if slices.ContainsFunc(kr.keys, func(k key) bool { return k.id == id }) {
		return ErrKeyHeld // added meanwhile
	}
	old := kr.keys
	kr.keys = append([]key{k}, old...)
	if err := kr.write(); err != nil {
		kr.keys = old
		return err
	}
	return nil
}

// holds reports whether the ring holds the key id.
func (kr *Keyring) holds(id string) bool {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return slices.ContainsFunc(kr.keys, func(k key) bool { return k.id == id })
}
