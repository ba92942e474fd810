package storage

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/edgefaas/edgefaas/internal/syncfile"
)

// Names of the subjects created at first boot.
const (
	// AdminSubject holds the operator's admin token.
	AdminSubject = "admin"
	// GuestSubject is the ordinary subject FunLess creates for first use.
	GuestSubject = "guest"
)

// TokensFileName is the file in the data directory where first boot writes
// the admin and guest tokens, as FunLess does.
const TokensFileName = "tokens"

// tokenBytes is the token's entropy: 256 bits.
const tokenBytes = 32

// Subject is an API user. Only the sha256 of its token is stored; an empty
// TokenHash means the token was revoked.
type Subject struct {
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	TokenHash string    `json:"token_sha256,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	IssuedAt  time.Time `json:"issued_at"`
}

// Revoked reports whether the subject currently has no valid token.
func (s Subject) Revoked() bool { return s.TokenHash == "" }

// NewToken returns a fresh random token and the hex sha256 that is stored.
func NewToken() (token, hash string, err error) {
	buf := make([]byte, tokenBytes)
	// A token that starts with '-' reads as a flag on command lines
	// (`edgefaas config set token -X...`): draw again (1 time in 64).
	for token == "" || token[0] == '-' {
		if _, err := rand.Read(buf); err != nil {
			return "", "", fmt.Errorf("generate token: %w", err)
		}
		token = base64.RawURLEncoding.EncodeToString(buf)
	}
	return token, hashToken(token), nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateSubject creates a subject and returns its token, which is not
// stored and cannot be recovered.
func (s *Store) CreateSubject(name string, admin bool) (string, error) {
	token, hash, err := NewToken()
	if err != nil {
		return "", err
	}
	return token, s.CreateSubjectHashed(name, admin, hash, s.now())
}

// CreateSubjectHashed is CreateSubject with the token's hash (NewToken)
// and the time given (see CreateModuleStamped): a core group's log
// carries the hash, never the token.
func (s *Store) CreateSubjectHashed(name string, admin bool, hash string, now time.Time) error {
	if err := CheckName("subject", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, err := s.exists(keySubject(name))
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("subject %q: %w", name, ErrExists)
	}
	sub := Subject{Name: name, Admin: admin, TokenHash: hash, CreatedAt: now, IssuedAt: now}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.setJSON(b, keySubject(name), sub); err != nil {
		return err
	}
	if err := b.Set(keyToken(hash), []byte(name), nil); err != nil {
		return err
	}
	return s.commit(b)
}

// RotateToken issues a new token for a subject (also one whose token was
// revoked); the old token stops working in the same batch.
func (s *Store) RotateToken(name string) (string, error) {
	token, hash, err := NewToken()
	if err != nil {
		return "", err
	}
	return token, s.RotateTokenHashed(name, hash, s.now())
}

// RotateTokenHashed is RotateToken with the new token's hash and the time
// given (see CreateSubjectHashed).
func (s *Store) RotateTokenHashed(name, hash string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.GetSubject(name)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if sub.TokenHash != "" {
		if err := b.Delete(keyToken(sub.TokenHash), nil); err != nil {
			return err
		}
	}
	sub.TokenHash = hash
	sub.IssuedAt = s.now()
	if err := s.setJSON(b, keySubject(name), sub); err != nil {
		return err
	}
	if err := b.Set(keyToken(hash), []byte(name), nil); err != nil {
		return err
	}
	return s.commit(b)
}

// RevokeToken invalidates a subject's token. The subject and its modules
// remain; RotateToken can issue it a new token. Admin tokens cannot be
// revoked (ErrAdminRevoke), only rotated.
func (s *Store) RevokeToken(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.GetSubject(name)
	if err != nil {
		return err
	}
	if sub.Admin {
		return fmt.Errorf("subject %q: %w", name, ErrAdminRevoke)
	}
	if sub.TokenHash == "" {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(keyToken(sub.TokenHash), nil); err != nil {
		return err
	}
	sub.TokenHash = ""
	if err := s.setJSON(b, keySubject(name), sub); err != nil {
		return err
	}
	return s.commitFreeing(b) // a revocation must work on a full disk
}

// GetSubject returns one subject.
func (s *Store) GetSubject(name string) (Subject, error) {
	return getNamed[Subject](s, keySubject(name), "subject", name)
}

// ListSubjects returns every subject by name.
func (s *Store) ListSubjects() ([]Subject, error) {
	return listJSON[Subject](s, prefixSubjects)
}

// Authenticate returns the subject whose token this is, or
// ErrUnauthenticated. The token is looked up by its hash and the stored hash
// is compared in constant time.
func (s *Store) Authenticate(token string) (Subject, error) {
	if token == "" {
		return Subject{}, ErrUnauthenticated
	}
	hash := hashToken(token)
	name, err := s.get(keyToken(hash))
	if errors.Is(err, ErrNotFound) {
		return Subject{}, ErrUnauthenticated
	}
	if err != nil {
		return Subject{}, err
	}
	sub, err := s.GetSubject(string(name))
	if errors.Is(err, ErrNotFound) {
		return Subject{}, ErrUnauthenticated
	}
	if err != nil {
		return Subject{}, err
	}
	if subtle.ConstantTimeCompare([]byte(sub.TokenHash), []byte(hash)) != 1 {
		return Subject{}, ErrUnauthenticated
	}
	return sub, nil
}

// Bootstrap creates the admin and guest subjects on first boot and writes
// their tokens to tokensPath (mode 0600) as "Admin=<token>" and
// "Guest=<token>" lines. It reports whether it did so; on later boots it
// does nothing. The file is written and synced before the subjects are
// committed, so a crash in between only means new tokens at the next boot.
func (s *Store) Bootstrap(tokensPath string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	done, err := s.exists(keyBootstrapped())
	if err != nil || done {
		return false, err
	}
	adminToken, adminHash, err := NewToken()
	if err != nil {
		return false, err
	}
	guestToken, guestHash, err := NewToken()
	if err != nil {
		return false, err
	}
	content := "Admin=" + adminToken + "\nGuest=" + guestToken + "\n"
	if err := syncfile.Write(tokensPath, []byte(content), 0o600); err != nil {
		return false, fmt.Errorf("write tokens file: %w", err)
	}
	now := s.now()
	b := s.db.NewBatch()
	defer b.Close()
	for _, sub := range []Subject{
		{Name: AdminSubject, Admin: true, TokenHash: adminHash, CreatedAt: now, IssuedAt: now},
		{Name: GuestSubject, TokenHash: guestHash, CreatedAt: now, IssuedAt: now},
	} {
		// A subject of that name could only exist if it was created before
		// bootstrap, which the API does not allow; overwrite to be certain
		// the written tokens work.
		if old, err := s.GetSubject(sub.Name); err == nil && old.TokenHash != "" {
			if err := b.Delete(keyToken(old.TokenHash), nil); err != nil {
				return false, err
			}
		}
		if err := s.setJSON(b, keySubject(sub.Name), sub); err != nil {
			return false, err
		}
		if err := b.Set(keyToken(sub.TokenHash), []byte(sub.Name), nil); err != nil {
			return false, err
		}
	}
	if err := b.Set(keyBootstrapped(), []byte(now.Format(time.RFC3339)), nil); err != nil {
		return false, err
	}
	return true, s.commit(b)
}
