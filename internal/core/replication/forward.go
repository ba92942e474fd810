package replication

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Forwarding: a write taken by a follower goes to the leader over the
// member's transport (a connection that starts with connForward, kept
// for the next write): the command as its log entry, then the leader's
// answer as JSON, one write at a time per connection. The caller does
// not need to know which core leads.

// ErrNoLeader means this member knows of no leader: the group has no
// majority it can reach. The write is refused; reads and invocations go
// on from the local store.
var ErrNoLeader = errors.New("no core of the group leads: no majority is reachable")

// applyTimeout bounds how long a write waits to enter the leader's log.
const applyTimeout = 10 * time.Second

// forwardTimeout bounds one forwarded write, from dial to answer.
const forwardTimeout = 30 * time.Second

// maxForward bounds a forwarded command (a function's code travels in
// it) and an answer.
const maxForward = 512 << 20

// errorKinds names the errors a write answers, so a forwarded answer is
// the same error to errors.Is as the leader's.
var errorKinds = map[string]error{
	"not_found":      storage.ErrNotFound,
	"exists":         storage.ErrExists,
	"changed":        storage.ErrChanged,
	"invalid_name":   storage.ErrInvalidName,
	"default_module": storage.ErrDefaultModule,
	"admin_revoke":   storage.ErrAdminRevoke,
	"invalid":        storage.ErrInvalid,
	"bad_command":    errBadCommand,
	"not_leader":     ErrNotLeader,
	"no_leader":      ErrNoLeader,
	"unknown":        ErrUnknownOutcome,
	"code_missing":   ErrCodeMissing,
	"quota":          storage.ErrQuota,
	"no_member":      ErrNoMember,
	"disk_full":      storage.ErrDiskFull,
	"tick_done":      storage.ErrTickDone,
	"token_invalid":  storage.ErrTokenInvalid,
}

// forwardReply is a forwarded write's answer.
type forwardReply struct {
	Value json.RawMessage `json:"value,omitempty"`
	Kind  string          `json:"kind,omitempty"`
	Error string          `json:"error,omitempty"`
}

// remoteError is an error answered by the leader: its message, and the
// sentinel its kind names.
type remoteError struct {
	msg  string
	kind error
}

func (e remoteError) Error() string { return e.msg }
func (e remoteError) Unwrap() error { return e.kind }

// replyValue returns a pointer to what the command op answers, nil for
// none.
func replyValue(o op) any {
	switch o {
	case opCreateModule:
		return new(storage.Module)
	case opRenameModule:
		return new([]storage.FunctionChange)
	case opDeleteModule:
		return new([]storage.Function)
	case opCreateFunction, opDeleteFunction:
		return new(storage.Function)
	case opUpdateFunction:
		return new(storage.FunctionChange)
	case opCreateScript, opDeleteScript:
		return new(storage.Script)
	case opInitCronState:
		return new(storage.CronState)
	case opRotateSecretsKey:
		return new(SecretsRotation)
	}
	return nodeReplyValue(o)
}

// Propose makes the write c on the group: applied here if this member
// leads, else forwarded to the leader. It answers what the storage
// method answered; ErrNoLeader when no leader is known, ErrUnknownOutcome
// when the leader was lost after taking the write.
func (m *Member) Propose(c Command) (any, error) {
	if lean, ok := withoutStoredCode(m.fsm.Store(), c); ok {
		v, err := m.propose(lean)
		if !errors.Is(err, ErrCodeMissing) {
			return v, err
		}
	}
	return m.propose(c)
}

func (m *Member) propose(c Command) (any, error) {
	if m.raft.State() == raft.Leader {
		v, err := m.Apply(c, applyTimeout)
		if !errors.Is(err, ErrNotLeader) {
			return v, err
		}
	}
	if m.forward == nil {
		return nil, fmt.Errorf("write: %w (no transport to forward it)", ErrNotLeader)
	}
	// A member that lost the lead as the write reached it answers
	// ErrNotLeader without applying it: ask the leader known now, a few
	// times, before giving the caller the refusal.
	var err error
	for range forwardTries {
		addr, _ := m.raft.LeaderWithID()
		if addr == "" {
			return nil, fmt.Errorf("write: %w", ErrNoLeader)
		}
		var v any
		v, err = m.forward.forward(addr, c, func() bool {
			now, _ := m.raft.LeaderWithID()
			return now != addr
		})
		if !errors.Is(err, ErrNotLeader) {
			return v, err
		}
	}
	return nil, err
}

// forwardTries bounds how many leaders a forwarded write is offered to.
const forwardTries = 3

// ServeForwarded makes t take writes forwarded by other members and apply
// them through m, and makes m forward its writes through t.
func (t *Transport) ServeForwarded(m *Member) {
	m.forward = t
	f := func(c net.Conn) { m.serveForwarded(c) }
	t.s.forward.Store(&f)
}

// forwardConn is an idle forwarding connection, kept for the next write
// to the same leader: a TLS handshake per write cost more than the write.
type forwardConn struct {
	net.Conn
	r *bufio.Reader
}

// closedByPeer reports whether the peer closed the idle connection c, or
// sent on it unasked, which makes it unusable too.
func (c *forwardConn) closedByPeer() bool {
	return c.r.Buffered() > 0 || peerClosed(c.Conn)
}

// forwardIdle bounds the idle forwarding connections kept per leader.
const forwardIdle = 4

// getConn returns an idle connection to addr or dials one. An idle
// connection the peer has closed (the leader stopped) is dropped, not
// used: a write on it would seem sent and its lost answer would make the
// outcome unknown, though the write never reached a leader.
func (t *Transport) getConn(addr raft.ServerAddress) (*forwardConn, error) {
	for {
		t.mu.Lock()
		conns := t.idle[addr]
		if len(conns) == 0 {
			t.mu.Unlock()
			break
		}
		c := conns[len(conns)-1]
		t.idle[addr] = conns[:len(conns)-1]
		t.mu.Unlock()
		if !c.closedByPeer() {
			return c, nil
		}
		c.Close()
	}
	conn, err := t.s.dial(addr, handshakeTimeout, connForward)
	if err != nil {
		return nil, err
	}
	return &forwardConn{Conn: conn, r: bufio.NewReader(conn)}, nil
}

// putConn keeps c for the next write to addr, or closes it.
func (t *Transport) putConn(addr raft.ServerAddress, c *forwardConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idle == nil {
		t.idle = map[raft.ServerAddress][]*forwardConn{}
	}
	if len(t.idle[addr]) >= forwardIdle {
		c.Close()
		return
	}
	t.idle[addr] = append(t.idle[addr], c)
}

// dropIdle closes the idle connections to addr: one failed, the others
// may be as stale (the member restarted).
func (t *Transport) dropIdle(addr raft.ServerAddress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.idle[addr] {
		c.Close()
	}
	delete(t.idle, addr)
}

// closeIdle closes every idle forwarding connection.
func (t *Transport) closeIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, conns := range t.idle {
		for _, c := range conns {
			c.Close()
		}
	}
	t.idle = nil
}

// Close closes the transport and its idle forwarding connections.
func (t *Transport) Close() error {
	t.closeIdle()
	return t.NetworkTransport.Close()
}

// roundTrip sends one frame to the member at addr and returns its answer.
func (t *Transport) roundTrip(addr raft.ServerAddress, data []byte) (forwardReply, error) {
	return t.roundTripWhile(addr, data, nil)
}

// leaderCheck is how often a forwarded write checks that the member it
// went to still leads, as this member sees it.
const leaderCheck = 100 * time.Millisecond

// roundTripWhile is roundTrip that gives up as soon as gone reports that
// addr no longer leads: a leader cut off by a partition answers nothing,
// and the write would otherwise wait for forwardTimeout while another
// member already leads. Given up before the frame was sent, it is
// ErrNotLeader (nothing was applied: the caller asks the new leader);
// after, ErrUnknownOutcome. A nil gone never gives up early.
func (t *Transport) roundTripWhile(addr raft.ServerAddress, data []byte, gone func() bool) (forwardReply, error) {
	type answer struct {
		r   forwardReply
		err error
	}
	var (
		mu      sync.Mutex
		conn    *forwardConn
		sent    bool
		aborted bool
	)
	done := make(chan answer, 1)
	go func() {
		var r forwardReply
		c, err := t.getConn(addr)
		if err != nil {
			done <- answer{r, fmt.Errorf("forward the write to the leader: %w", ErrNoLeader)}
			return
		}
		mu.Lock()
		if aborted {
			mu.Unlock()
			c.Close()
			done <- answer{r, fmt.Errorf("forward the write to %s: %w", addr, ErrNotLeader)}
			return
		}
		conn, sent = c, true
		mu.Unlock()
		c.SetDeadline(time.Now().Add(forwardTimeout))
		if err := writeFrame(c, data); err != nil {
			c.Close()
			t.dropIdle(addr)
			// An idle connection the leader closed: nothing was applied.
			done <- answer{r, fmt.Errorf("forward the write to %s: %v: %w", addr, err, ErrNotLeader)}
			return
		}
		b, err := readFrame(c.r)
		if err != nil {
			c.Close()
			t.dropIdle(addr)
			// Sent, but the answer was lost: the write may have been applied.
			done <- answer{r, fmt.Errorf("forward the write to %s: %v: %w", addr, err, ErrUnknownOutcome)}
			return
		}
		c.SetDeadline(time.Time{})
		t.putConn(addr, c)
		if err := json.Unmarshal(b, &r); err != nil {
			done <- answer{r, fmt.Errorf("forwarded write's answer from %s: %v: %w", addr, err, ErrUnknownOutcome)}
			return
		}
		done <- answer{r, nil}
	}()
	if gone == nil {
		a := <-done
		return a.r, a.err
	}
	tick := time.NewTicker(leaderCheck)
	defer tick.Stop()
	for {
		select {
		case a := <-done:
			return a.r, a.err
		case <-tick.C:
			if !gone() {
				continue
			}
			mu.Lock()
			aborted = true
			wasSent := sent
			if conn != nil {
				conn.Close()
			}
			mu.Unlock()
			if wasSent {
				return forwardReply{}, fmt.Errorf("forward the write to %s: it no longer leads: %w", addr, ErrUnknownOutcome)
			}
			return forwardReply{}, fmt.Errorf("forward the write to %s: it no longer leads: %w", addr, ErrNotLeader)
		}
	}
}

// forward sends c to the member at addr and returns its answer; it gives
// up when gone reports that addr no longer leads (see roundTripWhile).
func (t *Transport) forward(addr raft.ServerAddress, c Command, gone func() bool) (any, error) {
	data, err := Encode(c)
	if err != nil {
		return nil, err
	}
	r, err := t.roundTripWhile(addr, data, gone)
	if err != nil {
		return nil, err
	}
	if r.Error != "" {
		return nil, remoteError{msg: r.Error, kind: errorKinds[r.Kind]}
	}
	into := replyValue(c.op())
	if into == nil {
		return nil, nil
	}
	if err := json.Unmarshal(r.Value, into); err != nil {
		return nil, fmt.Errorf("forwarded write's answer from %s: %w", addr, err)
	}
	// The value, not the pointer: what Apply answers.
	switch v := into.(type) {
	case *storage.Module:
		return *v, nil
	case *[]storage.FunctionChange:
		return *v, nil
	case *[]storage.Function:
		return *v, nil
	case *storage.Function:
		return *v, nil
	case *storage.FunctionChange:
		return *v, nil
	case *storage.Script:
		return *v, nil
	case *storage.CronState:
		return *v, nil
	case *storage.JoinToken:
		return *v, nil
	case *storage.NodeCA:
		return *v, nil
	case *SecretsRotation:
		return *v, nil
	}
	return nil, fmt.Errorf("forwarded write: unexpected answer %T", into)
}

// serveForwarded applies the writes forwarded on one connection, one at
// a time, and answers each. Only a leader applies: a member that lost the
// lead answers ErrNotLeader, and the forwarding member asks the leader it
// knows now.
func (m *Member) serveForwarded(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		// An idle connection waits for its next write until the member
		// closes (its listener's connections close with it) or the peer
		// goes; a write, once its first byte came, has forwardTimeout.
		conn.SetDeadline(time.Time{})
		if _, err := r.Peek(1); err != nil {
			return
		}
		conn.SetDeadline(time.Now().Add(forwardTimeout))
		data, err := readFrame(r)
		if err != nil {
			return
		}
		if err := writeFrame(conn, m.answerForwarded(data)); err != nil {
			return
		}
	}
}

// answerForwarded applies one forwarded entry, or takes a request to
// join, and encodes the answer.
func (m *Member) answerForwarded(data []byte) []byte {
	var r forwardReply
	var v any
	var err error
	switch {
	case len(data) > 0 && data[0] == joinFrame:
		err = m.answerJoin(data[1:])
	case len(data) > 0 && data[0] == removeFrame:
		err = m.answerRemove(data[1:])
	case len(data) == 1 && data[0] == statusFrame:
		v = m.Status()
	case len(data) == 1 && data[0] == readIndexFrame:
		v, err = m.leaderReadIndex()
	case len(data) == 1 && data[0] == keysFrame:
		v, err = m.secretsKeys()
	default:
		var c Command
		if c, err = Decode(data); err == nil {
			v, err = m.Apply(c, applyTimeout)
		}
	}
	if err != nil {
		r.Error = err.Error()
		for k, e := range errorKinds {
			if errors.Is(err, e) {
				r.Kind = k
				break
			}
		}
	} else if v != nil {
		if r.Value, err = json.Marshal(v); err != nil {
			r = forwardReply{Error: fmt.Sprintf("encode the answer: %v", err)}
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(forwardReply{Error: fmt.Sprintf("encode the answer: %v", err)})
	}
	return b
}

func writeFrame(w io.Writer, b []byte) error {
	hdr := binary.AppendUvarint(nil, uint64(len(b)))
	if _, err := w.Write(append(hdr, b...)); err != nil {
		return err
	}
	return nil
}

func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxForward {
		return nil, fmt.Errorf("frame of %d bytes, more than %d", n, maxForward)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}
