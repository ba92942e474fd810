// Package secrets seals the secrets the core keeps at rest (sink
// passwords, webhook secrets, header values, MQTT passwords) with
// AES-256-GCM under a key kept outside the database: the key file, by
// default DATA_DIR/secrets.key, else wherever the operator puts it (a
// removable medium, a tmpfs filled at boot).
//
// The key file holds one key per line, "ID BASE64", the first one
// current: Seal uses it, Open accepts any key of the file. Rotating adds
// a new key in front (the old ones still open what they sealed), the
// caller seals its records again, and Retire leaves the current key
// alone. Every write of the file is crash-safe (internal/syncfile): a
// crash during a rotation leaves the old file or the new one, both of
// which open every record.
package secrets

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/edgefaas/edgefaas/internal/syncfile"
)

// FileName is the key file's name in the core's data directory.
const FileName = "secrets.key"

// prefix starts every sealed value: "sealed:v1:ID:BASE64(nonce|ciphertext)".
const prefix = "sealed:v1:"

// Errors of Open.
var (
	// ErrUnknownKey means a value was sealed under a key the key file
	// does not hold (another key file, or a retired key).
	ErrUnknownKey = errors.New("sealed under a key the key file does not hold")
	// ErrCorrupt means a sealed value does not decrypt: it was changed,
	// or the key file holds another key under its id.
	ErrCorrupt = errors.New("sealed value does not decrypt")
)

type key struct {
	id   string
	raw  []byte
	aead cipher.AEAD
}

// Keyring is the key file in memory; safe for concurrent use.
type Keyring struct {
	path    string
	mu      sync.RWMutex
	keys    []key // keys[0] seals
	keepOld bool  // KeepOldKeys: Retire keeps every key
}

// LoadOrCreate reads the key file at path, or creates it (0600, a new
// random key) if it does not exist; created says it did. A file that
// exists but holds no valid key is an error, never replaced: the records
// sealed under it would be lost.
func LoadOrCreate(path string) (kr *Keyring, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		kr = &Keyring{path: path}
		k, err := newKey()
		if err != nil {
			return nil, false, err
		}
		kr.keys = []key{k}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("secrets key file: %w", err)
		}
		if err := kr.write(); err != nil {
			return nil, false, err
		}
		return kr, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("secrets key file: %w", err)
	}
	keys, err := parse(b)
	if err != nil {
		return nil, false, fmt.Errorf("secrets key file %s: %w", path, err)
	}
	return &Keyring{path: path, keys: keys}, false, nil
}

func parse(b []byte) ([]key, error) {
	var keys []key
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, enc, ok := strings.Cut(line, " ")
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if !ok || err != nil || len(raw) != 32 || !validID(id) {
			return nil, fmt.Errorf("line %d: want \"ID BASE64\" with a 32-byte key", n)
		}
		k, err := makeKey(id, raw)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key in the file (it is empty or was truncated); restore it from a backup: the secrets sealed under it cannot be opened without it")
	}
	return keys, nil
}

func validID(id string) bool {
	_, err := hex.DecodeString(id)
	return err == nil && len(id) == 8
}

func newKey() (key, error) {
	raw := make([]byte, 32)
	idb := make([]byte, 4)
	if _, err := rand.Read(raw); err != nil {
		return key{}, err
	}
	if _, err := rand.Read(idb); err != nil {
		return key{}, err
	}
	return makeKey(hex.EncodeToString(idb), raw)
}

func makeKey(id string, raw []byte) (key, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, err
	}
	return key{id: id, raw: raw, aead: aead}, nil
}

// write replaces the key file with the keys, crash-safely. Callers hold
// mu (or own kr alone).
func (kr *Keyring) write() error {
	var b strings.Builder
	b.WriteString("# edgefaas secrets keys: the first seals, all open. Back this file up apart from the database.\n")
	for _, k := range kr.keys {
		fmt.Fprintf(&b, "%s %s\n", k.id, base64.StdEncoding.EncodeToString(k.raw))
	}
	if err := syncfile.Write(kr.path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("secrets key file: %w", err)
	}
	return nil
}

// Path is the key file's path.
func (kr *Keyring) Path() string { return kr.path }

// Current is the id of the key that seals.
func (kr *Keyring) Current() string {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.keys[0].id
}

// Seal encrypts plain under the current key, authenticated with aad
// (what the value belongs to, so a sealed value cannot be moved to
// another field).
func (kr *Keyring) Seal(plain []byte, aad string) (string, error) {
	kr.mu.RLock()
	k := kr.keys[0]
	kr.mu.RUnlock()
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	out := k.aead.Seal(nonce, nonce, plain, []byte(aad))
	return prefix + k.id + ":" + base64.RawStdEncoding.EncodeToString(out), nil
}

// IsSealed reports whether v is a value Seal made.
func IsSealed(v string) bool { return strings.HasPrefix(v, prefix) }

// SealedUnderCurrent reports whether v was sealed under the current key.
func (kr *Keyring) SealedUnderCurrent(v string) bool {
	return strings.HasPrefix(v, prefix+kr.Current()+":")
}

// Open decrypts a value Seal made under any key of the file.
func (kr *Keyring) Open(v, aad string) ([]byte, error) {
	rest, ok := strings.CutPrefix(v, prefix)
	id, enc, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return nil, fmt.Errorf("open: %w: not a sealed value", ErrCorrupt)
	}
	kr.mu.RLock()
	var k *key
	for i := range kr.keys {
		if kr.keys[i].id == id {
			k = &kr.keys[i]
		}
	}
	kr.mu.RUnlock()
	if k == nil {
		return nil, fmt.Errorf("open: key %s: %w (%s)", id, ErrUnknownKey, kr.path)
	}
	b, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil || len(b) < k.aead.NonceSize() {
		return nil, fmt.Errorf("open: %w", ErrCorrupt)
	}
	plain, err := k.aead.Open(nil, b[:k.aead.NonceSize()], b[k.aead.NonceSize():], []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("open: key %s: %w", id, ErrCorrupt)
	}
	return plain, nil
}

// Rotate makes a new key current and writes the file with it first and
// the old keys after, so both open; the caller then seals its records
// again and calls Retire.
func (kr *Keyring) Rotate() (string, error) {
	k, err := newKey()
	if err != nil {
		return "", err
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	old := kr.keys
	kr.keys = append([]key{k}, old...)
	if err := kr.write(); err != nil {
		kr.keys = old
		return "", err
	}
	return k.id, nil
}

// Retire drops every key but the current one from the file: the caller
// has sealed every record under the current key. A ring told to keep its
// old keys (KeepOldKeys) keeps them.
func (kr *Keyring) Retire() error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if len(kr.keys) == 1 || kr.keepOld {
		return nil
	}
	old := kr.keys
	kr.keys = kr.keys[:1]
	if err := kr.write(); err != nil {
		kr.keys = old
		return err
	}
	return nil
}
