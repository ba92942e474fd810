package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/internal/core/api"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/replication"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/syncfile"
)

// GroupConfig makes the core a member of a core group: its state is
// replicated by Raft (internal/core/replication) to every member, its
// writes go through the group's log and its singletons run on the leader
// only. Nil: a single core, which opens no log.
type GroupConfig struct {
	// ID names the member in the group; it never changes.
	ID string
	// Addr is the group transport's listen address (host:port), which
	// the other members dial: a concrete address, not a wildcard.
	Addr string
	// Join is the address of a member of an existing group to join; empty
	// makes a new group of this core alone on its first start.
	Join string
	// TLS and Peer are the transport's mutual TLS and its check of a
	// peer's certificate (nodes.GroupTLS).
	TLS  *tls.Config
	Peer func(*x509.Certificate) error
	// SnapshotEntries is how many log entries pass between two snapshots
	// of the member's store, and how many it keeps behind the newest
	// (replication.Config.SnapshotEntries); 0 is the default.
	SnapshotEntries uint64
	// Tune, if set, changes Raft's configuration (tests).
	Tune func(*raft.Config)
}

// groupPart is the running member.
type groupPart struct {
	member    *replication.Member
	transport *replication.Transport
	cancel    context.CancelFunc // ends the join loop and the singletons
}

// startGroup starts this core's member of the group over its open store:
// the transport, Raft, and on a first start the group's bootstrap (or the
// request to join). It stops before the store closes.
func (c *assembly) startGroup() error {
	g := c.cfg.Group
	if g.ID == "" || g.Addr == "" {
		return errors.New("a core group member needs an ID and a group address")
	}
	t, err := replication.NewTLSTransport(replication.TransportConfig{Bind: g.Addr, TLS: g.TLS,
		Peer: replication.PeerCheck(g.Peer), Logger: c.log})
	if err != nil {
		return err
	}
	m, err := replication.Start(replication.Config{ID: raft.ServerID(g.ID), Dir: filepath.Join(c.cfg.DataDir, "group"),
		Store: c.store, Transport: t, Logger: c.log, Tune: g.Tune, Log: c.logOpts,
		SnapshotEntries: g.SnapshotEntries, Secrets: c.keys})
	if err != nil {
		t.Close()
		return err
	}
	t.ServeForwarded(m)
	ctx, cancel := context.WithCancel(context.Background())
	c.group = &groupPart{member: m, transport: t, cancel: cancel}
	c.onStop(func() error {
		cancel()
		err := m.Close()
		if terr := t.Close(); err == nil && terr != nil {
			err = fmt.Errorf("close the group transport: %w", terr)
		}
		return err
	})
	go m.RunWhileLeader(ctx, func(lctx context.Context) {
		c.log.Info("core group: this core leads", "id", g.ID, "term", m.Status().Term)
		<-lctx.Done()
		c.log.Info("core group: this core no longer leads", "id", g.ID)
	})
	fresh := m.Raft().LastIndex() == 0
	switch {
	case !fresh:
		c.log.Info("core group: member resumes", "id", g.ID, "addr", g.Addr)
	case g.Join == "":
		if err := m.Bootstrap(raft.Server{ID: raft.ServerID(g.ID), Address: t.LocalAddr()}); err != nil {
			return err
		}
		c.log.Info("core group: made a new group of this core", "id", g.ID, "addr", g.Addr)
	default:
		c.log.Info("core group: asking to join", "id", g.ID, "addr", g.Addr, "via", g.Join)
		go c.joinGroup(ctx, g)
	}
	// The first tokens, on the core that made the group: on its first
	// start, or on a later one if it stopped before writing them (the
	// group is still this core alone; groupTokens does nothing if the
	// subjects are there).
	if g.Join == "" && (fresh || alone(m, raft.ServerID(g.ID))) {
		return c.groupTokens(ctx)
	}
	return nil
}

// alone reports whether the group's configuration is this member only.
func alone(m *replication.Member, id raft.ServerID) bool {
	f := m.Raft().GetConfiguration()
	if f.Error() != nil {
		return false
	}
	s := f.Configuration().Servers
	return len(s) == 1 && s[0].ID == id
}

// joinGroup asks the member at g.Join to add this core until one adds it,
// having taken the group's secrets keys from it first: the entries and
// snapshots this core then receives carry secrets sealed under them. A
// refusal is logged at the first try and every 30th, not every second.
func (c *assembly) joinGroup(ctx context.Context, g *GroupConfig) {
	adopted := false
	for try := 0; ; try++ {
		var err error
		if !adopted {
			err = c.adoptGroupKeys(g.Join)
			adopted = err == nil
		}
		if adopted {
			err = c.group.transport.Join(raft.ServerAddress(g.Join), raft.ServerID(g.ID), c.group.transport.LocalAddr())
			if err == nil {
				c.log.Info("core group: joined", "id", g.ID, "via", g.Join)
				return
			}
		}
		if try%30 == 0 {
			c.log.Warn("core group: join refused or unanswered; trying again every second", "via", g.Join, "tries", try+1, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(replication.JoinRetry):
		}
	}
}

// adoptGroupKeys makes the group's secrets keys, asked of the member at
// addr, this core's (secrets.Keyring.Adopt): no operator copies a key
// file.
func (c *assembly) adoptGroupKeys(addr string) error {
	keys, err := c.group.transport.SecretsKeys(raft.ServerAddress(addr))
	if err != nil {
		return fmt.Errorf("ask for the group's secrets keys: %w", err)
	}
	if err := c.keys.Adopt(keys); err != nil {
		return err
	}
	c.log.Info("core group: took the group's secrets keys", "key", c.keys.Current(), "via", addr, "path", c.keys.Path())
	return nil
}

// groupTokens writes the first tokens of a new group on the member that
// made it: the tokens file (written and synced first, as a single core
// does), then the admin and guest subjects through the log, so every
// member holds them. A member that joins receives them with the state.
func (c *assembly) groupTokens(ctx context.Context) error {
	if _, err := c.store.GetSubject(storage.AdminSubject); err == nil {
		return nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	// A new group of one elects itself within Raft's election timeout.
	deadline := time.Now().Add(30 * time.Second)
	for c.group.member.Raft().State() != raft.Leader {
		if time.Now().After(deadline) {
			return errors.New("core group: this core did not become the leader of its new group")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	adminToken, adminHash, err := storage.NewToken()
	if err != nil {
		return err
	}
	guestToken, guestHash, err := storage.NewToken()
	if err != nil {
		return err
	}
	path := filepath.Join(c.cfg.DataDir, storage.TokensFileName)
	if err := syncfile.Write(path, []byte("Admin="+adminToken+"\nGuest="+guestToken+"\n"), 0o600); err != nil {
		return fmt.Errorf("write tokens file: %w", err)
	}
	w := c.group.member.Writes()
	if err := w.CreateSubjectHashed(storage.AdminSubject, true, adminHash); err != nil {
		return fmt.Errorf("core group: first tokens: %w", err)
	}
	if err := w.CreateSubjectHashed(storage.GuestSubject, false, guestHash); err != nil {
		return fmt.Errorf("core group: first tokens: %w", err)
	}
	c.log.Info("first boot of the group: wrote the admin and guest tokens; keep the file secret", "path", path)
	return nil
}

// groupChange is a function change or a subject's token change applied
// from the group's log, for the triggers.
type groupChange struct {
	fn      *cluster.FunctionEvent
	subject string
	revoked string // a worker revoked through any core: its link is dropped
}

// revokedNodes is a cluster that drops the link of a worker revoked
// through another core of the group (nodes.Core).
type revokedNodes interface {
	NodeRevoked(name string)
}

// followLog makes the member's applied changes reach the triggers, in
// the log's order, off Raft's applying goroutine: a change made through
// another core of the group is not seen by this core's API.
func (c *assembly) followLog(ctx context.Context) {
	ch := make(chan groupChange, 1024)
	c.group.member.FSM().OnApplied(func(cmd replication.Command, v any) {
		for _, gc := range changesOf(cmd, v) {
			select {
			case ch <- gc:
			default:
				// The triggers fell far behind: reload them all, as a new
				// leader does, rather than block the log.
				select {
				case ch <- groupChange{}:
				default:
				}
			}
		}
	})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case gc := <-ch:
				switch {
				case gc.fn != nil:
					c.triggers.manager.FunctionChanged(*gc.fn)
				case gc.revoked != "":
					if r, ok := c.cluster.(revokedNodes); ok {
						r.NodeRevoked(gc.revoked)
					}
				case gc.subject != "":
					if err := c.triggers.manager.SubjectChanged(gc.subject); err != nil {
						c.log.Warn("triggers of a subject whose token changed", "subject", gc.subject, "err", err)
					}
				}
			}
		}
	}()
}

// changesOf is what an applied command changed that the triggers follow.
func changesOf(cmd replication.Command, v any) []groupChange {
	fn := func(k cluster.EventKind, f storage.Function, prev *storage.Function) groupChange {
		return groupChange{fn: &cluster.FunctionEvent{Kind: k, Function: f, Previous: prev}}
	}
	switch cmd := cmd.(type) {
	case replication.CreateFunction:
		if f, ok := v.(storage.Function); ok {
			return []groupChange{fn(cluster.FunctionCreated, f, nil)}
		}
	case replication.UpdateFunction:
		if ch, ok := v.(storage.FunctionChange); ok && ch.New != nil {
			return []groupChange{fn(cluster.FunctionUpdated, *ch.New, ch.Old)}
		}
	case replication.DeleteFunction:
		if f, ok := v.(storage.Function); ok {
			return []groupChange{fn(cluster.FunctionDeleted, f, nil)}
		}
	case replication.RenameModule:
		chs, _ := v.([]storage.FunctionChange)
		var out []groupChange
		for _, ch := range chs {
			if ch.New != nil {
				out = append(out, fn(cluster.FunctionUpdated, *ch.New, ch.Old))
			}
		}
		return out
	case replication.DeleteModule:
		fs, _ := v.([]storage.Function)
		var out []groupChange
		for _, f := range fs {
			out = append(out, fn(cluster.FunctionDeleted, f, nil))
		}
		return out
	case replication.RotateToken:
		return []groupChange{{subject: cmd.Name}}
	case replication.RevokeToken:
		return []groupChange{{subject: cmd.Name}}
	case replication.ReplaceNodeCert:
		if cmd.New.Revoked && (cmd.Seen == nil || !cmd.Seen.Revoked) {
			return []groupChange{{revoked: cmd.New.Name}}
		}
	}
	return nil
}

// runGroupTriggers runs the triggers (cron, MQTT) while this core leads
// the group, and pauses them when it stops leading: one core of the group
// runs each trigger.
func (c *assembly) runGroupTriggers() error {
	ctx, cancel := context.WithCancel(context.Background())
	m := c.triggers.manager
	gctx, gcancel := c.grace(c.cfg.ShutdownGrace)
	m.Pause(gctx)
	gcancel()
	c.followLog(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.group.member.RunWhileLeader(ctx, func(lctx context.Context) {
			if err := m.Resume(); err != nil {
				c.log.Error("core group: start the triggers on the new leader", "err", err)
			}
			<-lctx.Done()
			pctx, pcancel := c.grace(c.cfg.ShutdownGrace)
			defer pcancel()
			m.Pause(pctx)
		})
	}()
	c.onStop(func() error {
		cancel()
		<-done
		return nil
	})
	return nil
}

// members is the group's members for GET /v1/admin/group.
func (g *groupPart) members() ([]api.GroupMember, error) {
	ms, err := g.member.Members()
	if err != nil {
		return nil, err
	}
	out := make([]api.GroupMember, 0, len(ms))
	for _, m := range ms {
		out = append(out, api.GroupMember{ID: string(m.ID), Address: string(m.Address), Voter: m.Voter, Self: m.Self,
			Role: m.Role, Term: m.Term, CommitIndex: m.Commit, AppliedIndex: m.Applied, Lag: m.Lag,
			SnapshotIndex: m.Snapshot, Restores: m.Restores, Leader: string(m.Leader), Error: m.Error})
	}
	return out, nil
}

// remove removes a member of the group, for DELETE /v1/admin/group/:id.
func (g *groupPart) remove(id string) error {
	err := g.member.RemoveMember(raft.ServerID(id))
	if errors.Is(err, replication.ErrNoMember) {
		return fmt.Errorf("%w: %s", api.ErrNoGroupMember, id)
	}
	return g.member.AsUnavailable(err)
}

// splitForLog takes the group's log database's memory out of the store's
// share, so a member stays within the budget a single core has: a quarter
// of the block cache and half a memtable (the log is written in order and
// read back only by followers behind). Zero sizes (pebble's defaults)
// stay zero on both.
func splitForLog(o storage.Options) (storage.Options, replication.LogOptions) {
	var l replication.LogOptions
	if o.CacheBytes > 0 {
		l.CacheBytes = o.CacheBytes / 4
		o.CacheBytes -= l.CacheBytes
	}
	if o.MemTableBytes > 0 {
		l.MemTableBytes = o.MemTableBytes / 2
		o.MemTableBytes -= l.MemTableBytes
	}
	return o, l
}
