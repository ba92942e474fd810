package replication

import (
	"errors"
	"fmt"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// catchUpLimit bounds how long a write waits for its member to apply the
// entries it knows are committed before it reads a record again.
const catchUpLimit = 2 * time.Second

// catchUp waits, at most limit, until this member has applied every
// entry the leader had committed when asked (a follower may not have
// received an entry committed a moment ago): a record written through
// another core before the call is then in its store. Asking costs a
// round trip to the leader, no log entry.
func (m *Member) catchUp(limit time.Duration) {
	deadline := time.Now().Add(limit)
	target := m.raft.CommitIndex()
	if addr, id := m.raft.LeaderWithID(); id != "" && id != m.id && m.forward != nil {
		if st, err := m.forward.status(addr); err == nil && st.Commit > target {
			target = st.Commit
		}
	}
	// The FSM's own count: Raft's applied index moves when it hands an
	// entry to the FSM, before the store holds it.
	for m.fsm.Applied() < target && time.Now().Before(deadline) {
		select {
		case <-m.closed:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// CreateJoinToken is storage.Store.CreateJoinToken through the log: the
// token is made here and answered once; the log carries its hash.
func (w *Writes) CreateJoinToken(node string, ttl time.Duration) (string, storage.JoinToken, error) {
	token, hash, jt, err := w.store().NewJoinToken(node, ttl)
	if err != nil {
		return "", storage.JoinToken{}, err
	}
	if _, err := proposeAs[any](w, PutJoinToken{Hash: hash, Token: jt}); err != nil {
		return "", storage.JoinToken{}, err
	}
	return token, jt, nil
}

// ConsumeJoinToken is storage.Store.ConsumeJoinToken through the log:
// the token's record is read here (once this member has applied what it
// knows committed, if the token is not there yet), accept decides on it,
// and the log spends it, so of two cores spending one token at once one
// is refused. An expired token is spent and refused.
func (w *Writes) ConsumeJoinToken(token string, accept func(storage.JoinToken) error) (storage.JoinToken, error) {
	if token == "" {
		return storage.JoinToken{}, storage.ErrTokenInvalid
	}
	hash := storage.JoinTokenHash(token)
	jt, err := w.store().GetJoinToken(hash)
	if errors.Is(err, storage.ErrTokenInvalid) {
		w.m.catchUp(catchUpLimit)
		jt, err = w.store().GetJoinToken(hash)
	}
	if err != nil {
		return storage.JoinToken{}, err
	}
	expired := !w.store().Now().Before(jt.ExpiresAt)
	if !expired && accept != nil {
		if err := accept(jt); err != nil {
			return storage.JoinToken{}, err
		}
	}
	if _, err := proposeAs[storage.JoinToken](w, SpendJoinToken{Hash: hash}); err != nil {
		return storage.JoinToken{}, err
	}
	if expired {
		return storage.JoinToken{}, fmt.Errorf("%w (expired at %s)", storage.ErrTokenInvalid, jt.ExpiresAt.Format(time.RFC3339))
	}
	return jt, nil
}

// nodeCertTries bounds how often UpdateNodeCert decides again on a
// record another core changed meanwhile.
const nodeCertTries = 4

// UpdateNodeCert is storage.Store.UpdateNodeCert through the log: change
// runs here on the record as this member holds it, and the log writes the
// result if the record is still that one; if another core changed it
// meanwhile, change runs again on the new record.
func (w *Writes) UpdateNodeCert(name string, change func(nc *storage.NodeCert, create bool) error) (storage.NodeCert, error) {
	for try := 1; ; try++ {
		cur, err := w.store().GetNodeCert(name)
		create := errors.Is(err, storage.ErrNotFound)
		if err != nil && !create {
			return storage.NodeCert{}, err
		}
		var seen *storage.NodeCert
		if !create {
			s := cur
			seen = &s
		}
		nc := cur
		nc.Name = name
		if err := change(&nc, create); err != nil {
			return storage.NodeCert{}, err
		}
		_, err = proposeAs[any](w, ReplaceNodeCert{Seen: seen, New: nc})
		if errors.Is(err, storage.ErrChanged) && try < nodeCertTries {
			w.m.catchUp(catchUpLimit)
			continue
		}
		if err != nil {
			return storage.NodeCert{}, err
		}
		return nc, nil
	}
}

// AdoptNodeCA is storage.Store.AdoptNodeCA through the log: it answers
// the group's CA, ca if it is the first proposed.
func (w *Writes) AdoptNodeCA(ca storage.NodeCA) (storage.NodeCA, error) {
	return proposeAs[storage.NodeCA](w, AdoptNodeCA{CA: ca})
}
