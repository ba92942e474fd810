package replication

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Result is what applying one command gave: the storage method's value
// and error. The member that proposed the command hands it to its caller;
// the others drop it.
type Result struct {
	Value any
	Err   error
}

// FSM applies the log's commands to one member's storage.Store: the
// raft.FSM and raft.BatchingFSM. Raft calls ApplyBatch (or Apply),
// Snapshot and Restore from one goroutine.
type FSM struct {
	store   *storage.Store
	writes  *storage.Store // store's Deferred view, which commands apply to
	scratch string         // directory for checkpoints being sent or received

	skipTo   uint64 // entries up to this index are already in the store
	applied  atomic.Uint64
	restores atomic.Int64
	skipped  atomic.Int64
	seq      atomic.Uint64 // names scratch directories

	onApplied atomic.Pointer[[]func(Command, any)] // OnApplied

	log       *slog.Logger
	closed    chan struct{} // closed by Close: a wait for disk space ends
	closeOnce sync.Once
	waiting   atomic.Bool // an entry waits for disk space (SpaceWait)
}

// OnApplied makes f call fn, after the functions given before, after
// each command it applied without a refusal, with the storage method's
// value, on Raft's applying goroutine (fn must not block). A member hears
// so of every change, whichever member's caller made it: its singletons
// follow the state.
func (f *FSM) OnApplied(fn func(c Command, value any)) {
	for {
		old := f.onApplied.Load()
		var fns []func(Command, any)
		if old != nil {
			fns = append(fns, *old...)
		}
		fns = append(fns, fn)
		if f.onApplied.CompareAndSwap(old, &fns) {
			return
		}
	}
}

var _ raft.BatchingFSM = (*FSM)(nil)

// NewFSM returns the state machine over store, using scratch (created if
// needed, emptied) for snapshots' checkpoints. Entries the store already
// holds (its meta/log_index) are skipped when Raft replays them.
func NewFSM(store *storage.Store, scratch string) (*FSM, error) {
	if err := os.RemoveAll(scratch); err != nil {
		return nil, fmt.Errorf("empty the snapshot scratch directory: %w", err)
	}
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, fmt.Errorf("create the snapshot scratch directory: %w", err)
	}
	i, err := store.LogIndex()
	if err != nil {
		return nil, err
	}
	f := &FSM{store: store, writes: store.Deferred(), scratch: scratch, skipTo: i, log: slog.Default(), closed: make(chan struct{})}
	f.applied.Store(i)
	// A restore cut short by a crash may have replaced the store but not
	// yet taken its keys.
	if err := f.takeRotatedKeys(); err != nil {
		return nil, err
	}
	return f, nil
}

// takeRotatedKeys adds to the store's key ring the group's rotated keys
// the store keeps and the ring lacks (storage.Store.TakeRotatedKeys): a
// restored snapshot's records are sealed under the group's newest key,
// which this member may have missed.
func (f *FSM) takeRotatedKeys() error {
	added, unopened, err := f.store.TakeRotatedKeys()
	if err != nil {
		return err
	}
	if added > 0 {
		f.log.Info("took the group's rotated secrets keys from the store", "keys", added)
	}
	if len(unopened) > 0 {
		f.log.Warn("rotated secrets keys the store keeps open with no key this core holds: its sealed secrets cannot be read; give it the group's key file", "keys", unopened)
	}
	return nil
}

// Store is the state the FSM applies to; reads go to it directly.
func (f *FSM) Store() *storage.Store { return f.store }

// Applied is the index of the last entry applied (or found applied).
func (f *FSM) Applied() uint64 { return f.applied.Load() }

// Skipped counts the entries Raft replayed on start that the store
// already held.
func (f *FSM) Skipped() int64 { return f.skipped.Load() }

// Restores counts the snapshots this FSM has restored since it was made.
func (f *FSM) Restores() int64 { return f.restores.Load() }

// domainError reports whether err is an answer of the state (the record
// changed, exists, is gone, a name is bad, a quota is reached), which
// every member reaches alike, rather than a failure of this member's disk.
func domainError(err error) bool {
	for _, e := range []error{storage.ErrNotFound, storage.ErrExists, storage.ErrChanged,
		storage.ErrInvalidName, storage.ErrDefaultModule, storage.ErrAdminRevoke, storage.ErrInvalid, storage.ErrQuota, storage.ErrTickDone, storage.ErrTokenInvalid, errBadCommand, ErrCodeMissing} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Apply applies one committed entry (ApplyBatch of one).
func (f *FSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed entries in order. Each entry's writes are
// committed without waiting for the disk, and the store's log is synced
// once, before any entry of the batch is answered or told to OnApplied's
// functions: a batch costs one sync, not one per entry, and a crash
// before it loses only entries the group's log holds, which the member
// replays at its next start (its store records the last entry applied
// in the same commits).
//
// A command the state refuses (see domainError) is an answer and the
// entry is done; any other error means this member could not write what
// the others did, and it stops (panics) rather than serve a state that
// has diverged: restarted, it replays the entry, which its store does
// not record as applied. A disk too full for an entry is not such a
// failure: the member waits for space and applies it then
// (applyWhileSpaceShort).
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	type applied struct {
		c Command
		v any
	}
	var tell []applied
	wrote := false
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		if l.Index <= f.skipTo {
			f.skipped.Add(1)
			out[i] = Result{Err: fmt.Errorf("entry %d: already applied before a restart", l.Index)}
			continue
		}
		c, err := Decode(l.Data)
		if err != nil {
			f.applied.Store(l.Index)
			out[i] = Result{Err: fmt.Errorf("entry %d: %w", l.Index, err)}
			continue
		}
		f.store.SetLogIndex(l.Index)
		v, err := f.applyWhileSpaceShort(l.Index, c)
		if errors.Is(err, errStopped) {
			// Not applied, nor recorded as applied: replayed at the next
			// start, with the rest of the batch.
			for j := i; j < len(logs); j++ {
				out[j] = Result{Err: err}
			}
			break
		}
		if err != nil && !domainError(err) {
			panic(fmt.Sprintf("replication: entry %d could not be applied to the local store: %v", l.Index, err))
		}
		f.applied.Store(l.Index)
		wrote = true
		out[i] = Result{Value: v, Err: err}
		if err == nil {
			tell = append(tell, applied{c, v})
		}
	}
	if wrote {
		if err := f.store.SyncWAL(); err != nil {
			panic(fmt.Sprintf("replication: entries up to %d could not be made durable in the local store: %v", f.applied.Load(), err))
		}
	}
	if fns := f.onApplied.Load(); fns != nil {
		for _, a := range tell {
			for _, fn := range *fns {
				fn(a.c, a.v)
			}
		}
	}
	return out
}

// Snapshot checkpoints the store (hard links, quick) for Raft to persist
// while Apply continues.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	dir := filepath.Join(f.scratch, fmt.Sprintf("out-%d", f.seq.Add(1)))
	if err := f.store.Checkpoint(dir); err != nil {
		return nil, err
	}
	return &snapshot{dir: dir}, nil
}

// Restore replaces the store's contents with a snapshot's (see
// storage.Store.Replace) and takes the rotated secrets keys they keep.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	dir := filepath.Join(f.scratch, fmt.Sprintf("in-%d", f.seq.Add(1)))
	defer os.RemoveAll(dir)
	if err := untarDir(rc, dir); err != nil {
		return fmt.Errorf("receive snapshot: %w", err)
	}
	f.store.SetLogIndex(0)
	if err := f.store.Replace(dir); err != nil {
		return err
	}
	if err := f.takeRotatedKeys(); err != nil {
		return err
	}
	i, err := f.store.LogIndex()
	if err != nil {
		return err
	}
	f.skipTo = i
	f.applied.Store(i)
	f.restores.Add(1)
	return nil
}

// snapshot is a checkpoint directory waiting to be streamed.
type snapshot struct{ dir string }

// Persist streams the checkpoint as a tar into sink.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := tarDir(s.dir, sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release removes the checkpoint.
func (s *snapshot) Release() { os.RemoveAll(s.dir) }
