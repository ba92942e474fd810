package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Activation statuses. The first two are not final: the record will be
// written again.
const (
	StatusQueued        = "queued"
	StatusRunning       = "running"
	StatusSuccess       = "success"
	StatusFunctionError = "function_error"
	StatusRuntimeError  = "runtime_error"
	StatusTimeout       = "timeout"
	StatusBusy          = "busy"
	StatusNoWorker      = "no_worker"
	StatusLost          = "lost"
	// StatusCanceled ends a queued call that must not run any more: its
	// subject was revoked. Its error says why.
	StatusCanceled = "canceled"
)

// FinalStatus reports whether an activation in status s is finished.
func FinalStatus(s string) bool { return s != StatusQueued && s != StatusRunning }

// Activation is the record of one invocation, synchronous or not: what ran,
// for whom, where, how long, and what came out. Its ID sorts by time.
type Activation struct {
	ID              string          `json:"id"`
	Module          string          `json:"module"`
	Function        string          `json:"function"`
	Version         uint64          `json:"version"`
	Hash            string          `json:"hash"`
	Subject         string          `json:"subject"`
	Worker          string          `json:"worker"`
	Async           bool            `json:"async"`
	Status          string          `json:"status"`
	QueuedAt        time.Time       `json:"queued_at"`
	StartedAt       *time.Time      `json:"started_at"`
	DurationMS      float64         `json:"duration_ms"`
	Error           string          `json:"error,omitempty"`
	Result          json.RawMessage `json:"result,omitempty"`
	ResultTruncated bool            `json:"result_truncated"`
	Logs            []string        `json:"logs"`
	LogsTruncated   bool            `json:"logs_truncated"`
	Attempts        int             `json:"attempts,omitempty"`
	Trigger         *TriggerInfo    `json:"trigger,omitempty"` // set when a trigger (events) started it
	// Sinks is the delivery of a successful result to each of the
	// function's sinks (none: the function has no sinks).
	Sinks []SinkDelivery `json:"sinks,omitempty"`
}

// ApproxBytes is about what a record takes in memory or in a log entry:
// its result, error and log lines, and an allowance for the rest.
func ApproxBytes(a Activation) int {
	n := 512 + len(a.Result) + len(a.Error)
	for _, l := range a.Logs {
		n += 16 + len(l)
	}
	return n
}

// QueuedCall is what an asynchronous activation needs to run (kept under
// q/<id> until its record is final).
type QueuedCall struct {
	Module   string          `json:"module"`
	Function string          `json:"function"`
	Subject  string          `json:"subject"`
	Args     json.RawMessage `json:"args"`
	Callback string          `json:"callback,omitempty"`
	// Script is the APP script the call is placed by ("": the platform's).
	Script string `json:"script,omitempty"`
	// FunctionID is the called function's record id when it was queued
	// ("" from earlier versions): a function deleted and created again
	// under the same name is another function, which the call must not run.
	FunctionID string `json:"function_id,omitempty"`
}

// EnqueueActivation stores a queued activation and its call in one batch
// committed with pebble.Sync (through a Deferred view, synced by SyncWAL):
// once it returns nil, a kill -9 loses nothing.
func (s *Store) EnqueueActivation(rec Activation, call QueuedCall) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(keyActivation(rec.ID), appendActivation(nil, &rec), nil); err != nil {
		return fmt.Errorf("enqueue activation %s: %w", rec.ID, err)
	}
	val, err := encodeQueuedCall(call)
	if err != nil {
		return fmt.Errorf("enqueue activation %s: %w", rec.ID, err)
	}
	if err := b.Set(keyQueued(rec.ID), val, nil); err != nil {
		return fmt.Errorf("enqueue activation %s: %w", rec.ID, err)
	}
	if err := s.guard.admit(b.Len()); err != nil {
		return fmt.Errorf("enqueue activation %s: %w", rec.ID, err)
	}
	if err := b.Commit(s.syncOpt()); err != nil {
		return fmt.Errorf("enqueue activation %s: %w", rec.ID, err)
	}
	return nil
}

// encodeQueuedCall is call as stored: its JSON, with the args spliced in
// as they are. json.Marshal validates and copies a json.RawMessage into a
// buffer it grows by doubling: for a 4 MiB call, a sixth of the core's CPU
// while a tenant queued such calls, and up to three copies of the args in
// memory. The args were checked when the call was decoded (an invocation's
// "args" is a JSON object; a trigger's, JSON the core made).
func encodeQueuedCall(call QueuedCall) ([]byte, error) {
	args := call.Args
	call.Args = nil
	head, err := json.Marshal(call)
	if err != nil || len(args) == 0 {
		return head, err
	}
	// Every string before "args" is escaped, so its first occurrence is
	// the member's.
	const null = `"args":null`
	i := bytes.Index(head, []byte(null))
	if i < 0 {
		return nil, fmt.Errorf("encode queued call: no args member in %.200s", head)
	}
	i += len(null) - len("null")
	out := make([]byte, 0, len(head)-len("null")+len(args))
	out = append(append(append(out, head[:i]...), args...), head[i+len("null"):]...)
	return out, nil
}

// WriteActivations stores records in one batch. A final record of an
// asynchronous activation also drops its queued call. With sync the batch
// is fsynced before it returns. Activation keys bypass the read cache, so
// writing them never slows function lookups.
func (s *Store) WriteActivations(recs []Activation, sync bool) error {
	if len(recs) == 0 {
		return nil
	}
	return s.WriteActivationsWithSinks(recs, nil, sync)
}

func addActivations(b *pebble.Batch, recs []Activation) error {
	var key, val []byte // reused: Set copies them into the batch
	for i := range recs {
		key = append(append(key[:0], prefixActivations...), recs[i].ID...)
		val = appendActivation(val[:0], &recs[i])
		if err := b.Set(key, val, nil); err != nil {
			return fmt.Errorf("write activation %s: %w", recs[i].ID, err)
		}
		if recs[i].Async && FinalStatus(recs[i].Status) {
			if err := b.Delete(keyQueued(recs[i].ID), nil); err != nil {
				return fmt.Errorf("dequeue %s: %w", recs[i].ID, err)
			}
		}
	}
	return nil
}

// GetActivation returns one record, or ErrNotFound.
func (s *Store) GetActivation(id string) (Activation, error) {
	var a Activation
	err := s.getDirect(keyActivation(id), "activation", id, func(k, v []byte) error {
		return decodeActivation(k, v, &a)
	})
	return a, err
}

// ScanActivations calls fn with records newest first, starting below the
// ID before (every record if empty), until fn returns false.
func (s *Store) ScanActivations(before string, fn func(Activation) bool) error {
	return s.ScanActivationsOf(before, "", "", func(_ string, a *Activation) bool { return fn(*a) })
}

// ScanActivationsOf is ScanActivations for the records of module and
// function ("" is any): the others are passed with their ID and a nil
// record, not decoded. A record's module and function come first in its
// encoding, so a list filtered by function skips another function's
// record (its logs and result up to hundreds of KiB) at the cost of two
// comparisons.
func (s *Store) ScanActivationsOf(before, module, function string, fn func(id string, a *Activation) bool) error {
	upper := prefixEnd(prefixActivations)
	if before != "" {
		upper = keyActivation(before)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefixActivations, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("scan activations: %w", err)
	}
	for ok := it.Last(); ok; ok = it.Prev() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("scan activations: %w", err)
		}
		if m, f, ok := activationNames(v); ok && (module != "" && string(m) != module || function != "" && string(f) != function) {
			if !fn(string(it.Key()[len(prefixActivations):]), nil) {
				break
			}
			continue
		}
		var a Activation
		if err := decodeActivation(it.Key(), v, &a); err != nil {
			it.Close()
			return err
		}
		if !fn(a.ID, &a) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("scan activations: %w", err)
	}
	return nil
}

// activationNames reads a record's module and function in place, without
// decoding the rest; ok is false for a record stored as JSON or cut short.
func activationNames(v []byte) (module, function []byte, ok bool) {
	if len(v) == 0 || v[0] != activationCodecV1 {
		return nil, nil, false
	}
	d := decoder{b: v[1:]}
	d.raw() // the ID
	module, function = d.raw(), d.raw()
	return module, function, !d.err
}

// QueuedActivation is an activation whose record is not final yet, with the
// call it runs.
type QueuedActivation struct {
	Record Activation
	// Call is the queued call without its Args, which stay on disk
	// (QueuedArgs reads them); ArgsBytes is their size.
	Call      QueuedCall
	ArgsBytes int64
}

// queuedIndex decodes a stored QueuedCall without keeping its args.
type queuedIndex struct {
	Module     string   `json:"module"`
	Function   string   `json:"function"`
	Subject    string   `json:"subject"`
	Args       argsSize `json:"args"`
	Callback   string   `json:"callback,omitempty"`
	Script     string   `json:"script,omitempty"`
	FunctionID string   `json:"function_id,omitempty"`
}

// argsSize is a JSON value's size: the decoder hands it the value's bytes
// in place, so nothing of them is copied.
type argsSize int64

func (n *argsSize) UnmarshalJSON(b []byte) error {
	*n = argsSize(len(b))
	return nil
}

// QueuedActivations lists the asynchronous activations not finished yet,
// oldest first: what a restarted core must run again or mark lost. It
// reads their calls' args only to size them: a queue of large calls costs
// a restart its index, not its payloads.
func (s *Store) QueuedActivations() ([]QueuedActivation, error) {
	var out []QueuedActivation
	err := s.scan(prefixQueued, func(k, v []byte) error {
		var q QueuedActivation
		var ix queuedIndex
		if err := jsonUnmarshal(k, v, &ix); err != nil {
			return err
		}
		q.Call = QueuedCall{Module: ix.Module, Function: ix.Function, Subject: ix.Subject, Callback: ix.Callback, Script: ix.Script, FunctionID: ix.FunctionID}
		q.ArgsBytes = int64(ix.Args)
		id := string(k[len(prefixQueued):])
		rec, err := s.GetActivation(id)
		if errors.Is(err, ErrNotFound) {
			// Cannot happen (one batch writes both); keep the call visible.
			rec = Activation{ID: id, Module: q.Call.Module, Function: q.Call.Function, Subject: q.Call.Subject, Async: true, Status: StatusQueued}
		} else if err != nil {
			return err
		}
		q.Record = rec
		out = append(out, q)
		return nil
	})
	return out, err
}

// QueuedArgs reads a queued call's args (ErrNotFound once it finished).
// It decodes from pebble's own buffer, bypassing the read cache: the args
// are copied once, into the answer.
func (s *Store) QueuedArgs(id string) (json.RawMessage, error) {
	v, closer, err := s.db.Get(keyQueued(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("queued call %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("queued call %s: %w", id, err)
	}
	defer closer.Close()
	var call QueuedCall
	if err := json.Unmarshal(v, &call); err != nil {
		return nil, fmt.Errorf("queued call %s: %w", id, err)
	}
	return call.Args, nil
}

// PruneActivations deletes finished records older than cutoff (by the time
// in their ID, read by idTime), then the oldest finished ones of each
// subject whose records take more than its quota's RecordsBytes, then the
// oldest finished ones until the records take at most maxBytes (0: no
// byte bound). Records still queued or running are kept. It returns how
// many it deleted and the bytes left.
//
// The subjects' own bounds go first so that one tenant's flood of calls
// deletes its own oldest records, not the other tenants'.
func (s *Store) PruneActivations(cutoff time.Time, maxBytes int64, idTime func(id string) (time.Time, bool)) (deleted int, left int64, err error) {
	type entry struct {
		id      string
		subject string
		size    int64
	}
	var all []entry
	var total int64
	subTotal := map[string]int64{}
	if err := s.scan(prefixActivations, func(k, v []byte) error {
		e := entry{id: string(k[len(prefixActivations):]), subject: activationSubject(k, v), size: int64(len(k) + len(v))}
		all = append(all, e)
		total += e.size
		subTotal[e.subject] += e.size
		return nil
	}); err != nil {
		return 0, 0, err
	}
	// The queue is read after the records: a record enqueued meanwhile
	// (both keys in one batch) is either absent from the first scan or
	// present in this one, never taken for a finished record.
	queued := map[string]bool{}
	if err := s.scan(prefixQueued, func(k, _ []byte) error {
		queued[string(k[len(prefixQueued):])] = true
		return nil
	}); err != nil {
		return 0, 0, err
	}
	// First each subject's own bound: its oldest finished records beyond
	// its quota (none for an admin) are marked, and no longer count
	// towards the total the core's bound is checked against.
	over := map[string]int64{} // the bytes each subject is past its quota
	for sub, n := range subTotal {
		q, ok, err := s.QuotaOf(sub)
		if err != nil {
			return 0, total, fmt.Errorf("prune activations: quota of %q: %w", sub, err)
		}
		if ok && n > q.RecordsBytes {
			over[sub] = n - q.RecordsBytes
		}
	}
	marked := make([]bool, len(all))
	for i, e := range all {
		if len(over) == 0 {
			break
		}
		if queued[e.id] || over[e.subject] <= 0 {
			continue
		}
		marked[i] = true
		total -= e.size
		if over[e.subject] -= e.size; over[e.subject] <= 0 {
			delete(over, e.subject)
		}
	}
	// Consecutive deletable records go as one range deletion: retention at
	// the byte bound deletes as many records as are written, and one
	// tombstone per record would double the writes.
	b := s.db.NewBatch()
	defer b.Close()
	var runStart, runEnd []byte
	flushRun := func() error {
		if runStart == nil {
			return nil
		}
		err := b.DeleteRange(runStart, append(runEnd, 0), nil)
		runStart, runEnd = nil, nil
		return err
	}
	lastMarked := -1
	for i := len(marked) - 1; i >= 0; i-- {
		if marked[i] {
			lastMarked = i
			break
		}
	}
	for i, e := range all {
		if queued[e.id] {
			if err := flushRun(); err != nil {
				return 0, total, fmt.Errorf("prune activations: %w", err)
			}
			continue
		}
		t, ok := idTime(e.id)
		old := ok && t.Before(cutoff)
		overall := maxBytes > 0 && total > maxBytes
		if !marked[i] && !old && !overall {
			if i >= lastMarked {
				break // ids sort by time: everything after is newer
			}
			if err := flushRun(); err != nil {
				return 0, total, fmt.Errorf("prune activations: %w", err)
			}
			continue
		}
		if runStart == nil {
			runStart = keyActivation(e.id)
		}
		runEnd = keyActivation(e.id)
		deleted++
		if !marked[i] {
			total -= e.size
		}
	}
	if err := flushRun(); err != nil {
		return 0, total, fmt.Errorf("prune activations: %w", err)
	}
	if deleted == 0 {
		return 0, total, nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, total, fmt.Errorf("prune %d activations: %w", deleted, err)
	}
	return deleted, total, nil
}

// activationSubject reads the subject of the record v stored under k
// without decoding the rest ("" if it cannot).
func activationSubject(k, v []byte) string {
	if len(v) == 0 || v[0] != activationCodecV1 {
		var a struct {
			Subject string `json:"subject"`
		}
		if jsonUnmarshal(k, v, &a) != nil {
			return ""
		}
		return a.Subject
	}
	d := decoder{b: v[1:]}
	d.str() // ID
	d.str() // Module
	d.str() // Function
	d.uvarint()
	d.str() // Hash
	sub := d.str()
	if d.err {
		return ""
	}
	return sub
}

// Records are stored in a compact binary form (activationCodecV1 first,
// then the fields in order: length-prefixed strings, varints) rather than
// JSON: the writer encodes thousands a second, and this takes a tenth of
// the CPU and fewer bytes. Records written as JSON by earlier versions
// start with '{' and are still read.
const activationCodecV1 = 0x01

const (
	flagAsync = 1 << iota
	flagResultTruncated
	flagLogsTruncated
	flagStarted
)

// appendActivation appends a's binary encoding to b.
func appendActivation(b []byte, a *Activation) []byte {
	b = append(b, activationCodecV1)
	b = appendString(b, a.ID)
	b = appendString(b, a.Module)
	b = appendString(b, a.Function)
	b = binary.AppendUvarint(b, a.Version)
	b = appendString(b, a.Hash)
	b = appendString(b, a.Subject)
	b = appendString(b, a.Worker)
	var flags byte
	if a.Async {
		flags |= flagAsync
	}
	if a.ResultTruncated {
		flags |= flagResultTruncated
	}
	if a.LogsTruncated {
		flags |= flagLogsTruncated
	}
	if a.StartedAt != nil {
		flags |= flagStarted
	}
	b = append(b, flags)
	b = appendString(b, a.Status)
	b = binary.AppendVarint(b, unixNano(a.QueuedAt))
	if a.StartedAt != nil {
		b = binary.AppendVarint(b, unixNano(*a.StartedAt))
	}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a.DurationMS))
	b = appendString(b, a.Error)
	b = binary.AppendUvarint(b, uint64(len(a.Result)))
	b = append(b, a.Result...)
	b = binary.AppendUvarint(b, uint64(len(a.Logs)))
	for _, l := range a.Logs {
		b = appendString(b, l)
	}
	b = binary.AppendUvarint(b, uint64(max(a.Attempts, 0)))
	// The trigger (rare: only triggered calls) as JSON, empty if none.
	var trig []byte
	if a.Trigger != nil {
		trig, _ = json.Marshal(a.Trigger) // plain fields: cannot fail
	}
	b = binary.AppendUvarint(b, uint64(len(trig)))
	b = append(b, trig...)
	// The sink deliveries (only functions with sinks) as JSON, empty if none.
	var sinks []byte
	if len(a.Sinks) > 0 {
		sinks, _ = json.Marshal(a.Sinks) // plain fields: cannot fail
	}
	b = binary.AppendUvarint(b, uint64(len(sinks)))
	return append(b, sinks...)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeActivation reads a record stored under key k, binary or JSON.
func decodeActivation(k, v []byte, a *Activation) error {
	if len(v) == 0 || v[0] != activationCodecV1 {
		return jsonUnmarshal(k, v, a)
	}
	d := decoder{b: v[1:]}
	a.ID = d.str()
	a.Module = d.str()
	a.Function = d.str()
	a.Version = d.uvarint()
	a.Hash = d.str()
	a.Subject = d.str()
	a.Worker = d.str()
	flags := d.byte()
	a.Async = flags&flagAsync != 0
	a.ResultTruncated = flags&flagResultTruncated != 0
	a.LogsTruncated = flags&flagLogsTruncated != 0
	a.Status = d.str()
	a.QueuedAt = fromUnixNano(d.varint())
	if flags&flagStarted != 0 {
		t := fromUnixNano(d.varint())
		a.StartedAt = &t
	}
	a.DurationMS = math.Float64frombits(d.uint64())
	a.Error = d.str()
	if r := d.bytes(); len(r) > 0 {
		a.Result = json.RawMessage(r)
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = true
	} else {
		a.Logs = make([]string, 0, n)
		for range n {
			a.Logs = append(a.Logs, d.str())
		}
	}
	a.Attempts = int(d.uvarint())
	if trig := d.bytes(); len(trig) > 0 {
		a.Trigger = new(TriggerInfo)
		if err := json.Unmarshal(trig, a.Trigger); err != nil {
			return fmt.Errorf("decode %s: trigger: %w", k, err)
		}
	}
	if sinks := d.bytes(); len(sinks) > 0 {
		if err := json.Unmarshal(sinks, &a.Sinks); err != nil {
			return fmt.Errorf("decode %s: sinks: %w", k, err)
		}
	}
	if d.err {
		return fmt.Errorf("decode %s: truncated or corrupt record", k)
	}
	return nil
}

// decoder reads appendActivation's fields; a short input sets err.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 { return readVarint(d, binary.Uvarint) }

func (d *decoder) varint() int64 { return readVarint(d, binary.Varint) }

// readVarint reads one varint with read: binary.Uvarint or binary.Varint.
func readVarint[T uint64 | int64](d *decoder, read func([]byte) (T, int)) T {
	v, n := read(d.b)
	if n <= 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.err, d.b = true, nil
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// bytes returns a copy (the input is pebble's buffer).
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err, d.b = true, nil
		return nil
	}
	out := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return out
}

// raw is the next length-prefixed string's bytes, in place.
func (d *decoder) raw() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err, d.b = true, nil
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err, d.b = true, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
