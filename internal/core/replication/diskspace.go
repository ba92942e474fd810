package replication

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// A full disk on a member of a group. Every member applies every entry,
// so an entry refused by one member's disk (storage.ErrDiskFull) is not
// an answer of the state, as a refusal by the state is: skipped, it would
// leave that member's state behind the others' for good; panicking, the
// member would replay it at restart and panic again. The leader refuses a
// write that makes the state grow while its own disk is short, before
// proposing it (the caller gets the 507 a single core gives). A member
// whose disk is short when it applies an entry waits for space, trying
// again, and goes on from that entry: it stays a member, its reads keep
// working from what it applied, and it catches up once space is freed.
// Why: docs/RATIONALE.md, "Why a replicated core uses Raft".

// spaceRetry is how often a member waiting for disk space tries the
// entry again.
const spaceRetry = 500 * time.Millisecond

// SetLogger makes f log its waits for disk space to l.
func (f *FSM) SetLogger(l *slog.Logger) { f.log = l }

// Close ends a wait for disk space (the member stops; the entry, not
// recorded as applied, is applied again when it starts).
func (f *FSM) Close() { f.closeOnce.Do(func() { close(f.closed) }) }

// SpaceWait reports whether the member is waiting for disk space to apply
// an entry.
func (f *FSM) SpaceWait() bool { return f.waiting.Load() }

// errStopped ends an entry's wait for space when the member stops.
var errStopped = errors.New("the member stopped while waiting for disk space")

// applyWhileSpaceShort applies c, waiting while the store refuses it for
// want of space.
func (f *FSM) applyWhileSpaceShort(index uint64, c Command) (any, error) {
	v, err := c.apply(f.writes)
	if !errors.Is(err, storage.ErrDiskFull) {
		return v, err
	}
	f.waiting.Store(true)
	defer f.waiting.Store(false)
	f.log.Warn("core group: the disk is too full to apply the group's next entry; waiting for space (reads go on, writes to this core's state wait)",
		"entry", index, "err", err)
	tick := time.NewTicker(spaceRetry)
	defer tick.Stop()
	for tries := 1; ; tries++ {
		// Between tries the store's other writes must not record the
		// entry as applied.
		f.store.SetLogIndex(index - 1)
		select {
		case <-f.closed:
			return nil, fmt.Errorf("entry %d: %w", index, errStopped)
		case <-tick.C:
		}
		f.store.SetLogIndex(index)
		v, err = c.apply(f.writes)
		if !errors.Is(err, storage.ErrDiskFull) {
			f.log.Info("core group: disk space is back; applying the group's entries again", "entry", index, "tries", tries+1)
			return v, err
		}
	}
}

// grows reports whether applying c may make the state larger: the writes
// a disk below its free-space floor refuses. Deletes and revocations free
// space, and are taken whatever the disk.
func grows(c Command) bool {
	switch c.(type) {
	case DeleteModule, DeleteFunction, DeleteScript, RevokeToken, ClearSubjectEgress, ClearSubjectQuota:
		return false
	}
	return true
}

// checkSpace is the leader's check before proposing c, encoded as data:
// storage.ErrDiskFull if its own disk could not take it. A leader that
// proposed it anyway would be the member waiting for space, and the
// write would wait with it.
func (m *Member) checkSpace(c Command, data []byte) error {
	if !grows(c) {
		return nil
	}
	if err := m.fsm.Store().CheckSpace(int64(len(data))); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}
