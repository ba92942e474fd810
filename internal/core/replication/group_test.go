package replication

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/internal/core/secrets"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// The group tests run members in one process over Raft's InmemTransport:
// plain Go, each member with its own pebble databases on disk.

// limit bounds every wait: elections and replication on a loaded 2-core
// machine take well under a second; the limit only ends a broken test.
const limit = 30 * time.Second

type testMember struct {
	id    raft.ServerID
	dir   string
	store *storage.Store
	keys  *secrets.Keyring // nil unless the group has a key file
	trans *raft.InmemTransport
	m     *Member
}

type testGroup struct {
	t       *testing.T
	mu      sync.Mutex
	members []*testMember // live members
	tune    func(*raft.Config)
	keyFile []byte // copied into a new member's directory; nil: no secrets keys
}

// raftTimings keeps Raft's LAN timeouts (1 s; the product's) for
// in-process members and shortens only the commit batching: shorter
// timeouts made a loaded machine's pauses depose leaders mid-test
// ("leadership lost while writing").
func raftTimings(c *raft.Config) {
	c.CommitTimeout = 5 * time.Millisecond
}

// newGroup starts n members and bootstraps them as one group.
func newGroup(t *testing.T, n int, tune func(*raft.Config)) *testGroup {
	t.Helper()
	return newGroupKeyed(t, n, tune, nil)
}

// newGroupKeyed is newGroup with every member's store sealing secrets
// with the key file's keys (nil: none).
func newGroupKeyed(t *testing.T, n int, tune func(*raft.Config), keyFile []byte) *testGroup {
	t.Helper()
	g := &testGroup{t: t, keyFile: keyFile, tune: func(c *raft.Config) {
		raftTimings(c)
		if tune != nil {
			tune(c)
		}
	}}
	var servers []raft.Server
	for i := 0; i < n; i++ {
		tm := g.start(raft.ServerID(fmt.Sprintf("core-%d", i)), t.TempDir())
		servers = append(servers, raft.Server{ID: tm.id, Address: tm.trans.LocalAddr()})
	}
	if err := g.members[0].m.Bootstrap(servers...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, tm := range g.live() {
			g.stop(tm)
		}
	})
	g.leader()
	return g
}

// start starts a member with its data in dir (reused: a restart) and
// connects it with every live member.
func (g *testGroup) start(id raft.ServerID, dir string) *testMember {
	g.t.Helper()
	var opts storage.Options
	if g.keyFile != nil {
		path := filepath.Join(dir, secrets.FileName)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := os.WriteFile(path, g.keyFile, 0o600); err != nil {
				g.t.Fatal(err)
			}
		}
		kr, _, err := secrets.LoadOrCreate(path)
		if err != nil {
			g.t.Fatal(err)
		}
		kr.KeepOldKeys()
		opts.Secrets = kr
	}
	store, err := storage.OpenWith(filepath.Join(dir, "db"), nil, opts)
	if err != nil {
		g.t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(id))
	for _, o := range g.live() {
		trans.Connect(o.trans.LocalAddr(), o.trans)
		o.trans.Connect(trans.LocalAddr(), trans)
	}
	m, err := Start(Config{ID: id, Dir: filepath.Join(dir, "raft"), Store: store, Transport: trans, Tune: g.tune,
		Log: LogOptions{CacheBytes: 1 << 20, MemTableBytes: 1 << 20}, Secrets: opts.Secrets})
	if err != nil {
		g.t.Fatal(err)
	}
	tm := &testMember{id: id, dir: dir, store: store, keys: opts.Secrets, trans: trans, m: m}
	g.mu.Lock()
	g.members = append(g.members, tm)
	g.mu.Unlock()
	return tm
}

// stop stops a member as a crash would leave it to the others: cut off,
// its Raft stopped, its databases closed.
func (g *testGroup) stop(tm *testMember) {
	g.t.Helper()
	g.mu.Lock()
	for i, o := range g.members {
		if o == tm {
			g.members = append(g.members[:i], g.members[i+1:]...)
			break
		}
	}
	g.mu.Unlock()
	tm.trans.DisconnectAll()
	for _, o := range g.live() {
		o.trans.Disconnect(tm.trans.LocalAddr())
	}
	if err := tm.m.Close(); err != nil {
		g.t.Error(err)
	}
	if err := tm.store.Close(); err != nil {
		g.t.Error(err)
	}
}

func (g *testGroup) live() []*testMember {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*testMember(nil), g.members...)
}

// leader waits for a live member that leads and returns it.
func (g *testGroup) leader() *testMember {
	g.t.Helper()
	var l *testMember
	wait.For(g.t, limit, "a leader", func() bool {
		for _, tm := range g.live() {
			if tm.m.Raft().State() == raft.Leader {
				l = tm
				return true
			}
		}
		return false
	})
	return l
}

// apply proposes c through whichever member leads, as a follower forwards
// a write, retrying while there is none. errUnknown is returned as is:
// the caller decides.
func (g *testGroup) apply(c Command) (any, error) {
	var v any
	var err error
	werr := wait.Until(g.t.Context(), limit, "a leader to take the write", func() bool {
		for _, tm := range g.live() {
			if tm.m.Raft().State() != raft.Leader {
				continue
			}
			v, err = tm.m.Apply(c, limit)
			return !errors.Is(err, ErrNotLeader)
		}
		return false
	})
	if werr != nil {
		return nil, werr
	}
	return v, err
}

// settle is apply for set-up writes that must happen whatever the
// elections of a loaded machine do: a write whose leader was lost
// mid-way is tried again, and a retry that finds the write already made
// (it had applied) counts as done, with no value.
func (g *testGroup) settle(c Command) (any, error) {
	unknown := false
	for {
		v, err := g.apply(c)
		switch {
		case errors.Is(err, ErrUnknownOutcome):
			unknown = true
			continue
		case unknown && errors.Is(err, storage.ErrExists):
			return nil, nil
		}
		return v, err
	}
}

// dump is a store's modules and functions as JSON, to compare members.
func dump(t *testing.T, s *storage.Store) string {
	t.Helper()
	mods, err := s.ListModules()
	if err != nil {
		t.Fatal(err)
	}
	subs, err := s.ListSubjects()
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := s.ListScripts()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{"modules": mods, "subjects": subs, "scripts": scripts}
	for _, sub := range subs {
		hosts, set, err := s.SubjectEgress(sub.Name)
		if err != nil {
			t.Fatal(err)
		}
		out["e/"+sub.Name] = map[string]any{"hosts": hosts, "set": set}
	}
	for _, m := range mods {
		fns, err := s.ListFunctions(m.Name)
		if err != nil {
			t.Fatal(err)
		}
		out["f/"+m.Name] = fns
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// converged waits until every live member has applied what want applied
// (its FSM counts an entry once the store's read cache has forgotten the
// old value too) and holds the same records.
func (g *testGroup) converged(want *testMember) {
	g.t.Helper()
	wait.ForState(g.t, limit, "every member holds the leader's state", func() (bool, string) {
		applied := want.m.FSM().Applied()
		w := dump(g.t, want.store)
		for _, tm := range g.live() {
			if a := tm.m.FSM().Applied(); a < applied {
				return false, fmt.Sprintf("%s applied up to %d, %s up to %d", tm.id, a, want.id, applied)
			}
			if got := dump(g.t, tm.store); got != w {
				return false, fmt.Sprintf("%s: %s\n%s: %s", tm.id, got, want.id, w)
			}
		}
		return true, ""
	})
}

// waitState is wait.ForState with the tests' limit.
func waitState(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	wait.ForState(t, limit, what, cond)
}

func stamp(t testing.TB, s *storage.Store) storage.Stamp {
	t.Helper()
	st, err := s.NewStamp()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newFunction(name, code string) storage.NewFunction {
	return storage.NewFunction{Name: name, Owner: "alice", Code: []byte(code), ABI: "funless"}
}

// TestWritesOnTheLeaderReachFollowers: a module and a function created
// through the leader are on every member, the same records (identity,
// times, code) everywhere, and an update and a delete follow.
func TestWritesOnTheLeaderReachFollowers(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.leader()
	v, err := g.apply(CreateModule{Name: "m", Owner: "alice", Stamp: stamp(t, l.store)})
	if err != nil {
		t.Fatal(err)
	}
	mod := v.(storage.Module)
	v, err = g.apply(CreateFunction{In: mod, New: newFunction("f", "code1"), Stamp: stamp(t, l.store)})
	if err != nil {
		t.Fatal(err)
	}
	f := v.(storage.Function)
	g.converged(l)
	for _, tm := range g.live() {
		got, err := tm.store.GetFunction("m", "f")
		if err != nil {
			t.Fatalf("%s: %v", tm.id, err)
		}
		if got.ID != f.ID || !got.CreatedAt.Equal(f.CreatedAt) || got.Hash != storage.HashCode([]byte("code1")) {
			t.Errorf("%s holds %+v, the leader wrote %+v", tm.id, got, f)
		}
		if code, err := tm.store.Code(got.Hash); err != nil || string(code) != "code1" {
			t.Errorf("%s: code %q, %v", tm.id, code, err)
		}
	}
	if _, err := g.apply(UpdateFunction{Seen: f, Update: storage.FunctionUpdate{Code: []byte("code2"), ABI: "funless"}, At: l.store.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.apply(CreateFunction{In: mod, New: newFunction("g", "code2"), Stamp: stamp(t, l.store)}); err != nil {
		t.Fatal(err)
	}
	g2, err := l.store.GetFunction("m", "g")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.apply(DeleteFunction{Seen: g2}); err != nil {
		t.Fatal(err)
	}
	g.converged(l)
	leads := 0
	for _, tm := range g.live() {
		st := tm.m.Status()
		if st.Role == "leader" {
			leads++
		} else if st.Role != "follower" {
			t.Errorf("%s: role %q", tm.id, st.Role)
		}
		if st.Leader != l.id || st.Term == 0 || st.Applied < l.m.FSM().Applied() || st.Lag != 0 {
			t.Errorf("%s: status %+v; the leader is %s at %d", tm.id, st, l.id, l.m.FSM().Applied())
		}
	}
	if leads != 1 {
		t.Errorf("%d members say they lead", leads)
	}
	for _, tm := range g.live() {
		if n, _ := tm.store.CodeRefs(storage.HashCode([]byte("code1"))); n != 0 {
			t.Errorf("%s: code1 still has %d references", tm.id, n)
		}
		if n, _ := tm.store.CodeRefs(storage.HashCode([]byte("code2"))); n != 1 {
			t.Errorf("%s: code2 has %d references, want 1", tm.id, n)
		}
	}
}

// TestCompareAndSetRaceHasOneWinner: two members read the same function
// from their own store and both propose an update of the record they read;
// the state machine checks the record when it applies each, so one wins and
// the other gets ErrChanged, on every round.
func TestCompareAndSetRaceHasOneWinner(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.leader()
	v, err := g.apply(CreateFunction{In: storage.Module{Name: storage.DefaultModule}, New: newFunction("f", "code"), Stamp: stamp(t, l.store)})
	if err != nil {
		t.Fatal(err)
	}
	version := v.(storage.Function).Version
	const rounds = 20
	for r := 0; r < rounds; r++ {
		g.converged(l)
		ms := g.live()
		a, b := ms[0], ms[1]
		seenA, err := a.store.GetFunction(storage.DefaultModule, "f")
		if err != nil {
			t.Fatal(err)
		}
		seenB, err := b.store.GetFunction(storage.DefaultModule, "f")
		if err != nil {
			t.Fatal(err)
		}
		if seenA.Version != version || seenB.Version != version {
			t.Fatalf("round %d: members read versions %d and %d, want %d", r, seenA.Version, seenB.Version, version)
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, seen := range []storage.Function{seenA, seenB} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				md := storage.Metadata{Tag: fmt.Sprintf("round %d by %d", r, i)}
				_, errs[i] = g.apply(UpdateFunction{Seen: seen, Update: storage.FunctionUpdate{Metadata: &md}, At: l.store.Now()})
			}()
		}
		wg.Wait()
		g.converged(l)
		f, err := l.store.GetFunction(storage.DefaultModule, "f")
		if err != nil {
			t.Fatal(err)
		}
		checkRace(t, r, errs, f.Version-version)
		version = f.Version
	}
	g.converged(l)
	for _, tm := range g.live() {
		f, err := tm.store.GetFunction(storage.DefaultModule, "f")
		if err != nil || f.Version != version {
			t.Errorf("%s: version %d (%v), want %d", tm.id, f.Version, err, version)
		}
	}
}

// checkRace judges one round of two updates of the same record: at most
// one may take effect (applied is how much the version grew), one
// answered success must have, and with both answers known exactly one
// wins. A write whose leader was lost (ErrUnknownOutcome) may have taken
// effect or not.
func checkRace(t *testing.T, round int, errs []error, applied uint64) {
	t.Helper()
	won, unknown := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, ErrUnknownOutcome):
			unknown++
		case !errors.Is(err, storage.ErrChanged):
			t.Fatalf("round %d: %v, want nil, ErrChanged or ErrUnknownOutcome", round, err)
		}
	}
	switch {
	case applied > 1:
		t.Fatalf("round %d: both updates of one version took effect (%v)", round, errs)
	case won > 1:
		t.Fatalf("round %d: %d winners (%v), want 1", round, won, errs)
	case won == 1 && applied != 1:
		t.Fatalf("round %d: an acknowledged update is not in the store", round)
	case unknown == 0 && won != 1:
		t.Fatalf("round %d: no winner (%v)", round, errs)
	}
}

// TestLeaderKilledLosesNoAcknowledgedWrite: a writer creates functions
// through whichever member leads; the leader is stopped mid-stream. Every
// write that was acknowledged is on both survivors, and the stopped member,
// started again from its directories, applies only what it lacks and ends
// with the same state.
func TestLeaderKilledLosesNoAcknowledgedWrite(t *testing.T) {
	g := newGroup(t, 3, nil)
	const total, killAt = 60, 20
	var acked []string
	var old *testMember
	in := storage.Module{Name: storage.DefaultModule}
	for i := 0; i < total; i++ {
		if i == killAt {
			old = g.leader()
			g.stop(old)
		}
		name := fmt.Sprintf("f%d", i)
		for {
			_, err := g.apply(CreateFunction{In: in, New: newFunction(name, "code "+name), Stamp: stamp(t, g.live()[0].store)})
			if err == nil {
				acked = append(acked, name)
				break
			}
			if errors.Is(err, ErrUnknownOutcome) {
				continue // read again: ErrExists below means it was committed
			}
			if errors.Is(err, storage.ErrExists) {
				break // committed by an attempt whose answer was lost: not acknowledged
			}
			t.Fatalf("create %s: %v", name, err)
		}
	}
	l := g.leader()
	if l.id == old.id {
		t.Fatal("the stopped member leads")
	}
	if len(acked) < total-2 {
		t.Fatalf("only %d of %d writes acknowledged", len(acked), total)
	}
	g.converged(l)
	for _, tm := range g.live() {
		for _, name := range acked {
			if _, err := tm.store.GetFunction(storage.DefaultModule, name); err != nil {
				t.Errorf("%s lost an acknowledged write: %v", tm.id, err)
			}
		}
	}
	back := g.start(old.id, old.dir)
	g.converged(l)
	if back.m.FSM().Restores() != 0 {
		t.Errorf("the restarted member restored %d snapshots; its store was on disk", back.m.FSM().Restores())
	}
	if back.m.FSM().Skipped() < killAt {
		t.Errorf("the restarted member skipped %d entries its store held, want at least %d", back.m.FSM().Skipped(), killAt)
	}
}

// TestNewMemberCatchesUpFromSnapshot: a group whose log was compacted by a
// snapshot adds a fourth member; it receives the snapshot (a pebble
// checkpoint) rather than the log, holds every function, then follows new
// writes.
func TestNewMemberCatchesUpFromSnapshot(t *testing.T) {
	g := newGroup(t, 3, func(c *raft.Config) {
		c.TrailingLogs = 5
		c.SnapshotThreshold = 1 << 30 // only the snapshot the test asks for
	})
	l := g.leader()
	const n = 200
	// alice owns more functions than the default quota allows.
	q := storage.DefaultQuota
	q.Functions = 2 * n
	for _, c := range []Command{
		CreateSubject{Name: "alice", TokenHash: strings.Repeat("ab", 32), At: l.store.Now()},
		SetSubjectQuota{Subject: "alice", Quota: q},
	} {
		if _, err := g.settle(c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	in := storage.Module{Name: storage.DefaultModule}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%d", i)
		if _, err := g.settle(CreateFunction{In: in, New: newFunction(name, "code "+name), Stamp: stamp(t, l.store)}); err != nil {
			t.Fatal(err)
		}
	}
	// Every member snapshots, so whichever leads when the new one joins
	// (a loaded machine may elect another meanwhile) has dropped the start
	// of its log: once it has applied every create, or its snapshot would
	// be of what it had (a follower cut off for a moment was at entry 9).
	g.converged(g.leader())
	for _, tm := range g.live() {
		if err := tm.m.Raft().Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
		first, err := tm.m.logs.FirstIndex()
		if err != nil {
			t.Fatal(err)
		}
		if first <= n/2 {
			t.Fatalf("%s's log starts at %d after the snapshot: not compacted", tm.id, first)
		}
		if st := tm.m.Status(); st.Snapshot < n/2 {
			t.Errorf("%s's status names snapshot %d, taken after %d creates", tm.id, st.Snapshot, n)
		}
	}
	nm := g.start("core-new", t.TempDir())
	wait.For(t, limit, "a leader adds the new member", func() bool {
		err := g.leader().m.Raft().AddVoter(nm.id, nm.trans.LocalAddr(), 0, limit).Error()
		if err != nil && !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) {
			t.Fatal(err)
		}
		return err == nil
	})
	g.converged(l)
	if st := nm.m.Status(); st.Restores < 1 {
		t.Errorf("the new member restored no snapshot: %+v", st)
	}
	if _, err := g.apply(CreateFunction{In: in, New: newFunction("after", "code after"), Stamp: stamp(t, l.store)}); err != nil {
		t.Fatal(err)
	}
	g.converged(l)
	if _, err := nm.store.GetFunction(storage.DefaultModule, "after"); err != nil {
		t.Errorf("the new member: %v", err)
	}
}

// TestMemberWithEmptiedStoreRestoresOnStart: a member whose state
// database was lost (its Raft directory kept) restores the newest
// snapshot on start instead of replaying only the log after it, and
// holds every record again.
func TestMemberWithEmptiedStoreRestoresOnStart(t *testing.T) {
	g := newGroup(t, 3, func(c *raft.Config) {
		c.TrailingLogs = 5
		c.SnapshotThreshold = 1 << 30
	})
	l := g.leader()
	in := storage.Module{Name: storage.DefaultModule}
	for i := 0; i < 50; i++ {
		name := fmt.Sprintf("f%d", i)
		if _, err := g.settle(CreateFunction{In: in, New: newFunction(name, "code "+name), Stamp: stamp(t, l.store)}); err != nil {
			t.Fatal(err)
		}
	}
	g.converged(l)
	var fo *testMember
	for _, tm := range g.live() {
		if tm != l {
			fo = tm
		}
	}
	if err := fo.m.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	g.stop(fo)
	if err := os.RemoveAll(filepath.Join(fo.dir, "db")); err != nil {
		t.Fatal(err)
	}
	back := g.start(fo.id, fo.dir)
	g.converged(l)
	if back.m.FSM().Restores() != 1 {
		t.Errorf("the member restored %d snapshots on start, want 1", back.m.FSM().Restores())
	}
}

// TestWholeGroupRestartsFromDisk: every member stopped and started again
// from its directories elects a leader from its own log and stable
// values, skips the entries its store holds, and takes writes again.
func TestWholeGroupRestartsFromDisk(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.leader()
	in := storage.Module{Name: storage.DefaultModule}
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("f%d", i)
		if _, err := g.settle(CreateFunction{In: in, New: newFunction(name, "code "+name), Stamp: stamp(t, l.store)}); err != nil {
			t.Fatal(err)
		}
	}
	g.converged(l)
	want := dump(t, l.store)
	old := g.live()
	for _, tm := range old {
		g.stop(tm)
	}
	for _, tm := range old {
		g.start(tm.id, tm.dir)
	}
	l = g.leader()
	if _, err := g.apply(CreateFunction{In: in, New: newFunction("after", "code after"), Stamp: stamp(t, l.store)}); err != nil {
		t.Fatal(err)
	}
	g.converged(l)
	for _, tm := range g.live() {
		if tm.m.FSM().Skipped() < 10 {
			t.Errorf("%s skipped %d entries on start, want at least 10", tm.id, tm.m.FSM().Skipped())
		}
		if _, err := tm.store.GetFunction(storage.DefaultModule, "f9"); err != nil {
			t.Errorf("%s: %v", tm.id, err)
		}
	}
	if got := dump(t, l.store); got == want {
		t.Error("the write after the restart is missing")
	}
}
