package replication

import (
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// The asynchronous queue's and the cron triggers' writes: in a group they
// go through the log, so every member holds the queue, its records and
// each trigger's last tick, and the leader's dispatcher and cron work
// from them (a new leader resumes where the old one stopped).
const (
	opEnqueueActivation op = 40
	opWriteActivations  op = 41
	opEnqueueCronTick   op = 42
	opInitCronState     op = 43
	opShiftCronState    op = 44
)

// EnqueueActivation is storage.Store.EnqueueActivation: a queued call's
// record and the call, args included (they are on disk on every member,
// never in a queue's memory).
type EnqueueActivation struct {
	Record storage.Activation `json:"record"`
	Call   storage.QueuedCall `json:"call"`
}

// WriteActivations is storage.Store.WriteActivations, synced: a queued
// call marked running, requeued, or finished (its call dequeued).
type WriteActivations struct {
	Records []storage.Activation `json:"records"`
}

// EnqueueCronTick is storage.Store.EnqueueCronTick: the tick's call
// queued with the trigger's new state, refused (storage.ErrTickDone) if
// the state holds this tick or a later one, whichever core proposed it.
type EnqueueCronTick struct {
	Record storage.Activation `json:"record"`
	Call   storage.QueuedCall `json:"call"`
	Key    string             `json:"key"`
	State  storage.CronState  `json:"state"`
}

// InitCronState is storage.Store.InitCronState; it answers the state in
// force.
type InitCronState struct {
	Key   string            `json:"key"`
	State storage.CronState `json:"state"`
}

// ShiftCronState is storage.Store.ShiftCronState.
type ShiftCronState struct {
	Key  string    `json:"key"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

func (EnqueueActivation) op() op { return opEnqueueActivation }
func (WriteActivations) op() op  { return opWriteActivations }
func (EnqueueCronTick) op() op   { return opEnqueueCronTick }
func (InitCronState) op() op     { return opInitCronState }
func (ShiftCronState) op() op    { return opShiftCronState }

func (c EnqueueActivation) apply(s *storage.Store) (any, error) {
	return nil, s.EnqueueActivation(c.Record, c.Call)
}

func (c WriteActivations) apply(s *storage.Store) (any, error) {
	return nil, s.WriteActivations(c.Records, true)
}

func (c EnqueueCronTick) apply(s *storage.Store) (any, error) {
	return nil, s.EnqueueCronTick(c.Record, c.Call, c.Key, c.State)
}

func (c InitCronState) apply(s *storage.Store) (any, error) {
	return s.InitCronState(c.Key, c.State)
}

func (c ShiftCronState) apply(s *storage.Store) (any, error) {
	return nil, s.ShiftCronState(c.Key, c.From, c.To)
}

// decodeQueue returns the command in a queue or cron entry's body, nil if
// o is not one of theirs.
func decodeQueue(o op, body []byte) Command {
	switch o {
	case opEnqueueActivation:
		return decodeAs[EnqueueActivation](body)
	case opWriteActivations:
		return decodeAs[WriteActivations](body)
	case opEnqueueCronTick:
		return decodeAs[EnqueueCronTick](body)
	case opInitCronState:
		return decodeAs[InitCronState](body)
	case opShiftCronState:
		return decodeAs[ShiftCronState](body)
	}
	return nil
}

// EnqueueActivation is storage.Store.EnqueueActivation through the log.
func (w *Writes) EnqueueActivation(rec storage.Activation, call storage.QueuedCall) error {
	_, err := proposeAs[any](w, EnqueueActivation{Record: rec, Call: call})
	return err
}

// WriteActivations is storage.Store.WriteActivations through the log
// (always synced: a log entry is).
func (w *Writes) WriteActivations(recs []storage.Activation) error {
	if len(recs) == 0 {
		return nil
	}
	_, err := proposeAs[any](w, WriteActivations{Records: recs})
	return err
}

// EnqueueCronTick is storage.Store.EnqueueCronTick through the log.
func (w *Writes) EnqueueCronTick(rec storage.Activation, call storage.QueuedCall, key string, st storage.CronState) error {
	_, err := proposeAs[any](w, EnqueueCronTick{Record: rec, Call: call, Key: key, State: st})
	return err
}

// InitCronState is storage.Store.InitCronState through the log.
func (w *Writes) InitCronState(key string, st storage.CronState) (storage.CronState, error) {
	return proposeAs[storage.CronState](w, InitCronState{Key: key, State: st})
}

// ShiftCronState is storage.Store.ShiftCronState through the log.
func (w *Writes) ShiftCronState(key string, from, to time.Time) error {
	_, err := proposeAs[any](w, ShiftCronState{Key: key, From: from, To: to})
	return err
}
