package storage

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Event types a function's trigger may have.
const (
	EventMQTT = "mqtt"
	EventCron = "cron"
)

// Event is one trigger of a function (the upload's `events` list, in
// FunLess's shape): an MQTT subscription whose messages invoke the
// function, or a cron schedule. Package triggers validates and runs them.
type Event struct {
	Type string `json:"type"`
	// Params is set for EventMQTT.
	Params *MQTTParams `json:"params,omitempty"`
	// Schedule and Args are set for EventCron: the cron expression and the
	// arguments every tick passes.
	Schedule string          `json:"schedule,omitempty"`
	Args     json.RawMessage `json:"args,omitempty"`
}

// MQTTParams names the broker and topic of an MQTT trigger. FunLess sends
// the port as a string; it is stored as a number.
type MQTTParams struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Topic    string `json:"topic"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Sealed holds, at rest and in a core group's log entries only, the
	// password sealed by the Store (secrets.go); records read from the
	// Store never have it.
	Sealed string `json:"sealed,omitempty"`
}

// TriggerInfo says, in an activation record, what started a triggered
// activation: the function's trigger (its index in `events`), and for a
// cron trigger the tick it fired for and how many earlier ticks were
// missed (the core was down or the queue full) and folded into this run.
type TriggerInfo struct {
	Type     string     `json:"type"`
	Index    int        `json:"index"`
	Topic    string     `json:"topic,omitempty"`
	Schedule string     `json:"schedule,omitempty"`
	Tick     *time.Time `json:"tick,omitempty"`
	Missed   int        `json:"missed,omitempty"`
}

// CronState is what the core keeps per cron trigger (g/cron/<key>): the
// last tick it fired (or, before the first, when it was installed), so a
// restart neither fires a tick twice nor skips one without saying so.
type CronState struct {
	Module   string    `json:"module"`
	Function string    `json:"function"`
	LastTick time.Time `json:"last_tick"`
	// Missed counts ticks never run on their own (folded into a later run).
	Missed int64 `json:"missed"`
}

// ErrTickDone means the cron tick was already enqueued: the stored last
// tick is at or after it, and nothing was written.
var ErrTickDone = errors.New("cron tick already fired")

// FunctionsWithEvents returns every function that has triggers (a scan of
// all function records, once at boot).
func (s *Store) FunctionsWithEvents() ([]Function, error) {
	var fns []Function
	err := s.scan(prefixAllFuncs, func(k, v []byte) error {
		var f Function
		if err := s.decode(k, v, &f); err != nil {
			return err
		}
		if len(f.Events) > 0 {
			fns = append(fns, f)
		}
		return nil
	})
	return fns, err
}

// TriggerInstance returns this database's random trigger namespace (made
// on first use): MQTT client ids start with it, so two cores sharing a
// broker never take over each other's sessions, while one core keeps its
// sessions across restarts.
func (s *Store) TriggerInstance() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, closer, err := s.db.Get(keyTriggerPrefix)
	if err == nil {
		defer closer.Close()
		return string(v), nil
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return "", fmt.Errorf("read trigger instance: %w", err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	if err := s.guard.admit(len(keyTriggerPrefix) + len(id)); err != nil {
		return "", fmt.Errorf("store trigger instance: %w", err)
	}
	if err := s.db.Set(keyTriggerPrefix, []byte(id), s.syncOpt()); err != nil {
		return "", fmt.Errorf("store trigger instance: %w", err)
	}
	return id, nil
}

// GetCronState returns a cron trigger's state, or ErrNotFound.
func (s *Store) GetCronState(key string) (CronState, error) {
	var st CronState
	err := s.getDirect(keyCron(key), "cron state", key, func(k, v []byte) error {
		return jsonUnmarshal(k, v, &st)
	})
	return st, err
}

// InitCronState stores st for key unless a state exists; it returns the
// state in force (synced).
func (s *Store) InitCronState(key string, st CronState) (CronState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.GetCronState(key)
	if err == nil {
		return cur, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return cur, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.setJSON(b, keyCron(key), st); err != nil {
		return st, err
	}
	if err := s.guard.admit(b.Len()); err != nil {
		return st, fmt.Errorf("store cron state %q: %w", key, err)
	}
	if err := b.Commit(s.syncOpt()); err != nil {
		return st, fmt.Errorf("store cron state %q: %w", key, err)
	}
	return st, nil
}

// ShiftCronState moves a cron trigger's last tick from from to to (the
// wall clock stepped: see eventspec.Follower), unless its state changed
// meanwhile (ErrTickDone: nothing written). Synced.
func (s *Store) ShiftCronState(key string, from, to time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.GetCronState(key)
	if err != nil {
		return err
	}
	if !cur.LastTick.Equal(from) {
		return fmt.Errorf("%s: its last tick is %s, not %s: %w", key, cur.LastTick.Format(time.RFC3339), from.Format(time.RFC3339), ErrTickDone)
	}
	cur.LastTick = to
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.setJSON(b, keyCron(key), cur); err != nil {
		return err
	}
	if err := b.Commit(s.syncOpt()); err != nil {
		return fmt.Errorf("store cron state %q: %w", key, err)
	}
	return nil
}

// EnqueueCronTick stores a queued activation, its call and the cron
// trigger's new state in one batch committed with pebble.Sync, unless the
// state already holds this tick or a later one (ErrTickDone: nothing
// written). Fired ticks and their activations therefore never disagree,
// and enqueuing the same tick twice runs it once.
func (s *Store) EnqueueCronTick(rec Activation, call QueuedCall, key string, st CronState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.GetCronState(key)
	switch {
	case err == nil:
		if !cur.LastTick.Before(st.LastTick) {
			return fmt.Errorf("%s at %s: %w", key, st.LastTick.Format(time.RFC3339), ErrTickDone)
		}
	case !errors.Is(err, ErrNotFound):
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.setJSON(b, keyActivation(rec.ID), rec); err != nil {
		return err
	}
	if err := s.setJSON(b, keyQueued(rec.ID), call); err != nil {
		return err
	}
	if err := s.setJSON(b, keyCron(key), st); err != nil {
		return err
	}
	if err := s.guard.admit(b.Len()); err != nil {
		return fmt.Errorf("enqueue cron tick %s: %w", rec.ID, err)
	}
	if err := b.Commit(s.syncOpt()); err != nil {
		return fmt.Errorf("enqueue cron tick %s: %w", rec.ID, err)
	}
	return nil
}

// DeleteCronStates deletes the state of a function's cron triggers whose
// key is not in keep (a replaced or deleted trigger).
func (s *Store) DeleteCronStates(module, function string, keep map[string]bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	err := s.scan(prefixCron, func(k, v []byte) error {
		var st CronState
		if err := json.Unmarshal(v, &st); err != nil {
			return nil // not ours to judge: keep it
		}
		if st.Module == module && st.Function == function && !keep[string(k[len(prefixCron):])] {
			n++
			return b.Delete(append([]byte(nil), k...), nil)
		}
		return nil
	})
	if err != nil || n == 0 {
		return err
	}
	return b.Commit(s.syncOpt())
}
