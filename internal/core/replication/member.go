package replication

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/internal/core/secrets"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Config is one member of a core group.
type Config struct {
	// ID names the member in the group; it never changes.
	ID raft.ServerID
	// Dir holds the member's Raft state: log/ (LogStore), snapshots/
	// (Raft's file snapshot store) and scratch/ (checkpoints in flight).
	Dir string
	// Store is the member's state database, applied to by the FSM. The
	// caller opens and closes it; in a group the FSM is its only writer.
	Store *storage.Store
	// Transport carries Raft's messages between members.
	Transport raft.Transport
	// Logger receives Raft's warnings and errors; nil is slog.Default().
	Logger *slog.Logger
	// Log sizes the log database's memory (LogOptions).
	Log LogOptions
	// SnapshotEntries is how many entries the member applies between two
	// snapshots, and how many it keeps behind its newest for members a
	// little behind; a member further behind (or a new one) takes the
	// snapshot. 0 is DefaultSnapshotEntries.
	SnapshotEntries uint64
	// Tune, if not nil, changes Raft's configuration (hashicorp/raft's
	// defaults, meant for a LAN) before the member starts.
	Tune func(*raft.Config)
	// Secrets is the group's secrets key ring (the store's), handed to a
	// core that asks for it before it joins; nil hands none.
	Secrets *secrets.Keyring
}

// Member is one running member: its Raft, its FSM and its log.
type Member struct {
	id      raft.ServerID
	raft    *raft.Raft
	fsm     *FSM
	logs    *LogStore
	forward *Transport // set by Transport.ServeForwarded
	secrets *secrets.Keyring

	closed    chan struct{} // closed by Close, ends waits on Raft's futures
	closeOnce sync.Once
}

// DefaultSnapshotEntries is Raft's own snapshot threshold: a snapshot
// every 8,192 entries keeps a member's log database small (a create is
// one entry) while a snapshot, a checkpoint of the whole store, is rare.
const DefaultSnapshotEntries = 8192

// snapshotCheck is how often a member compares its log with its
// threshold. Raft's default, 120 s, lets two minutes of writes pass the
// threshold; the check compares two indexes.
const snapshotCheck = 10 * time.Second

// snapshotsKept is how many snapshots a member keeps on disk: the newest
// is enough to restore, one more covers a crash while writing it.
const snapshotsKept = 2

// Start starts a member from its directory: a new one waits to be
// bootstrapped (Bootstrap) or added by a group's leader; one that ran
// before resumes, applying only the entries its store does not hold.
func Start(c Config) (*Member, error) {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Error, DisableTime: true,
		Output: slogWriter{c.Logger.With("component", "raft", "member", string(c.ID))}})
	fsm, err := NewFSM(c.Store, filepath.Join(c.Dir, "scratch"))
	if err != nil {
		return nil, err
	}
	fsm.SetLogger(c.Logger)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(c.Dir, "snapshots"), snapshotsKept, hl)
	if err != nil {
		return nil, fmt.Errorf("open the snapshot store: %w", err)
	}
	restore, err := restoreOnStart(c.Store, snaps, fsm.Applied())
	if err != nil {
		return nil, err
	}
	logs, err := OpenLogStoreWith(filepath.Join(c.Dir, "log"), c.Logger, c.Log)
	if err != nil {
		return nil, err
	}
	rc := raft.DefaultConfig()
	rc.LocalID = c.ID
	rc.Logger = hl
	rc.NoSnapshotRestoreOnStart = !restore
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = DefaultSnapshotEntries
	}
	rc.SnapshotThreshold, rc.TrailingLogs, rc.SnapshotInterval = c.SnapshotEntries, c.SnapshotEntries, snapshotCheck
	if c.Tune != nil {
		c.Tune(rc)
	}
	r, err := raft.NewRaft(rc, fsm, logs, logs, snaps, c.Transport)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("start raft member %s: %w", c.ID, err)
	}
	return &Member{id: c.ID, raft: r, fsm: fsm, logs: logs, secrets: c.Secrets, closed: make(chan struct{})}, nil
}

// restoreOnStart reports whether Raft must restore its newest snapshot
// into the store on start: when the store is older than it (emptied, or
// left behind) or a restore was interrupted. Otherwise the store, which
// is on disk, already holds the snapshot's state and Raft only replays
// the entries after it.
func restoreOnStart(store *storage.Store, snaps raft.SnapshotStore, applied uint64) (bool, error) {
	restoring, err := store.Restoring()
	if err != nil {
		return false, err
	}
	if restoring {
		return true, nil
	}
	metas, err := snaps.List()
	if err != nil {
		return false, fmt.Errorf("list snapshots: %w", err)
	}
	return len(metas) > 0 && metas[0].Index > applied, nil
}

// Bootstrap makes this new member the first of a group of servers (which
// includes it). Call it on one member only; the others learn the group
// from it.
func (m *Member) Bootstrap(servers ...raft.Server) error {
	if err := m.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		return fmt.Errorf("bootstrap the group: %w", err)
	}
	return nil
}

// Raft is the member's Raft, for membership, leadership and statistics.
func (m *Member) Raft() *raft.Raft { return m.raft }

// FSM is the member's state machine; its Store serves local reads.
func (m *Member) FSM() *FSM { return m.fsm }

// ErrNotLeader means this member does not lead the group: the write goes
// to the leader (Leader says which one this member believes leads).
var ErrNotLeader = errors.New("this core does not lead the group")

// ErrUnknownOutcome means the leader lost its leadership, or stopped,
// after taking the write: the write may or may not have been committed.
// The caller reads again before retrying.
var ErrUnknownOutcome = errors.New("leadership lost while writing: the outcome is unknown")

// Apply proposes c and, once a majority has it and this member applied
// it, returns what the storage method returned. Only the leader takes
// proposals: elsewhere it returns ErrNotLeader.
func (m *Member) Apply(c Command, timeout time.Duration) (any, error) {
	data, err := Encode(c)
	if err != nil {
		return nil, err
	}
	if err := m.checkSpace(c, data); err != nil {
		return nil, err
	}
	// A proposal queued just as the member shuts down is never answered
	// by hashicorp/raft (its apply channel is buffered and not drained),
	// so the wait also ends with the member: the outcome is unknown.
	f := m.raft.Apply(data, timeout)
	if err := m.wait(f); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			return nil, fmt.Errorf("apply: %w", ErrNotLeader)
		case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown):
			return nil, fmt.Errorf("apply: %w", ErrUnknownOutcome)
		}
		return nil, fmt.Errorf("apply: %w", err)
	}
	res, ok := f.Response().(Result)
	if !ok {
		return nil, fmt.Errorf("apply: unexpected response %T", f.Response())
	}
	return res.Value, res.Err
}

// wait waits for f, or for the member to close: hashicorp/raft does not
// answer a proposal or a leadership check queued as it shuts down.
func (m *Member) wait(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-m.closed:
		return raft.ErrRaftShutdown
	}
}

// LinearizableRead runs read on this member's store as of a moment between
// the call and the return: on the leader, after every entry committed
// before the call is applied, and confirmed by a majority still following
// it afterwards. Elsewhere it returns ErrNotLeader. Reads need not be
// linearizable (a core reads its own store); this is for the few that
// must see every acknowledged write.
func (m *Member) LinearizableRead(read func(*storage.Store) error) error {
	if m.raft.State() != raft.Leader {
		return fmt.Errorf("read: %w", ErrNotLeader)
	}
	if err := m.wait(m.raft.Barrier(applyTimeout)); err != nil {
		return fmt.Errorf("read: %w", ErrNotLeader)
	}
	rerr := read(m.fsm.Store())
	if err := m.wait(m.raft.VerifyLeader()); err != nil {
		return fmt.Errorf("read: %w", ErrNotLeader)
	}
	return rerr
}

// Leader returns the address and ID of the member this one believes
// leads, empty if it knows of none.
func (m *Member) Leader() (raft.ServerAddress, raft.ServerID) { return m.raft.LeaderWithID() }

// Close stops the member's Raft and closes its log. The store stays open:
// it is the caller's.
func (m *Member) Close() error {
	m.closeOnce.Do(func() { close(m.closed) })
	m.fsm.Close()
	err := m.raft.Shutdown().Error()
	if cerr := m.logs.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("stop raft member: %w", err)
	}
	return nil
}

// slogWriter turns hclog's lines into slog records at Warn. hclog writes
// only Raft's errors: its warnings are a group's routine (elections, a
// follower behind), and an error about one unreachable member is a
// warning to the core, which keeps serving.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn(string(bytes.TrimSpace(p)))
	return len(p), nil
}
