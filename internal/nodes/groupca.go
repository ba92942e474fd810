package nodes

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// GroupTrust makes a core's node CA, join tokens and records of joined
// workers its core group's (docs/RATIONALE.md, "Why a core group shares
// one node CA"): a worker joined through one core, with a token made on
// any, is a worker of every core, and a revocation through any core
// shuts it out of all.
type GroupTrust struct {
	// Records is the group's log (replication.Writes): every write of a
	// token or a record goes through it.
	Records storage.NodeRecords
	// Founder is set on the core that made the group: its CA
	// (DATA_DIR/node-ca, created if need be) becomes the group's. A core
	// that joined the group takes the group's from the log instead.
	Founder bool
	// Wait bounds how long a core waits for the group's CA to reach it
	// (the join, then the log); zero is groupCAWait.
	Wait time.Duration
}

// groupCAWait is how long a core waits for its group's CA by default: a
// joining core is added once the group's leader takes its request.
const groupCAWait = 5 * time.Minute

// ca returns the group's CA from the store, once it is there: the
// founder proposes its own first (again after a restart, until the log
// answers), and every member then adopts the first one the log applied.
func (g *GroupTrust) ca(store *storage.Store, dataDir string, log *slog.Logger) (*x509.Certificate, crypto.Signer, error) {
	if log == nil {
		log = slog.Default()
	}
	limit := g.Wait
	if limit <= 0 {
		limit = groupCAWait
	}
	deadline := time.Now().Add(limit)
	for try := 0; ; try++ {
		got, err := store.GetNodeCA()
		if err == nil {
			ca, key, err := parseCA([]byte(got.CertPEM), []byte(got.KeyPEM))
			if err != nil {
				return nil, nil, fmt.Errorf("the group's node CA: %w", err)
			}
			return ca, key, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, nil, fmt.Errorf("read the group's node CA: %w", err)
		}
		if g.Founder {
			err = g.propose(dataDir)
			if err == nil {
				continue // now in the store
			}
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("the group's node CA did not reach this core within %s (has the group taken its join?): %v", limit, err)
		}
		if try%100 == 0 {
			log.Info("core group: waiting for the group's node CA", "founder", g.Founder, "err", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// propose offers this core's CA (created if need be) as the group's.
func (g *GroupTrust) propose(dataDir string) error {
	if _, _, err := loadOrCreateCA(dataDir); err != nil {
		return err
	}
	dir := caDir(dataDir)
	cert, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		return err
	}
	_, err = g.Records.AdoptNodeCA(storage.NodeCA{CertPEM: string(cert), KeyPEM: string(key)})
	return err
}
