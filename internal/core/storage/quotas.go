package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Per-subject quotas (docs/RATIONALE.md#why-per-subject-quotas-and-their-defaults):
// what one tenant may keep in the shared core, so that no tenant takes a
// shared limit (the database's disk, the synced commits of cron ticks,
// the sinks' outbox). A subject's quota is kept under quota/<subject>;
// no record means DefaultQuota. Admins are exempt: they are the
// operator. The counts are checked inside the write that would pass
// them, under s.mu, so two concurrent creates cannot both take the last
// slot.

// Quota is one subject's limits. Every field is a hard limit: a write
// that would pass one is refused with ErrQuota before anything is stored.
type Quota struct {
	// Functions bounds the number of functions the subject owns.
	Functions int64 `json:"functions"`
	// CodeBytes bounds the sum of the code sizes of the subject's
	// functions (each function counts its code, shared or not).
	CodeBytes int64 `json:"code_bytes"`
	// CronTriggers bounds the cron triggers of all the subject's functions.
	CronTriggers int64 `json:"cron_triggers"`
	// MinCronPeriodSeconds is the shortest period a cron trigger of the
	// subject may tick at (checked at upload by the API, which parses
	// schedules); 0 means no minimum.
	MinCronPeriodSeconds int64 `json:"min_cron_period_seconds"`
	// SinksPerFunction bounds the sinks of one function.
	SinksPerFunction int64 `json:"sinks_per_function"`
	// Sinks bounds the sinks of all the subject's functions.
	Sinks int64 `json:"sinks"`
	// QueuedBytes bounds the args of the subject's asynchronous calls
	// queued or running (the queue checks it when a call is queued, and
	// answers 429: the calls drain).
	QueuedBytes int64 `json:"queued_bytes"`
	// RecordsBytes bounds the bytes of the subject's finished activation
	// records: retention deletes the subject's oldest ones beyond it, so
	// one tenant's calls do not push out the others' records.
	RecordsBytes int64 `json:"records_bytes"`
}

// DefaultQuota is the quota of a subject the operator has set none for,
// sized for a small machine (docs/RATIONALE.md#why-per-subject-quotas-and-their-defaults).
var DefaultQuota = Quota{
	Functions:            100,
	CodeBytes:            256 << 20,
	CronTriggers:         10,
	MinCronPeriodSeconds: 10,
	SinksPerFunction:     4,
	Sinks:                32,
	QueuedBytes:          256 << 20,
	RecordsBytes:         16 << 20,
}

// Check reports the first negative field as an ErrInvalid.
func (q Quota) Check() error {
	for _, f := range q.fields() {
		if f.limit < 0 {
			return invalid(fmt.Sprintf("quota %s is %d; it must be 0 or more", f.name, f.limit))
		}
	}
	return nil
}

// Usage is what a subject holds against its quota.
type Usage struct {
	Functions    int64 `json:"functions"`
	CodeBytes    int64 `json:"code_bytes"`
	CronTriggers int64 `json:"cron_triggers"`
	Sinks        int64 `json:"sinks"`
	// MaxSinksPerFunction is the most sinks one of its functions has.
	MaxSinksPerFunction int64 `json:"max_sinks_per_function"`
}

type quotaField struct {
	name  string
	limit int64
}

func (q Quota) fields() []quotaField {
	return []quotaField{
		{"functions", q.Functions}, {"code_bytes", q.CodeBytes}, {"cron_triggers", q.CronTriggers},
		{"min_cron_period_seconds", q.MinCronPeriodSeconds}, {"sinks_per_function", q.SinksPerFunction}, {"sinks", q.Sinks},
		{"queued_bytes", q.QueuedBytes}, {"records_bytes", q.RecordsBytes},
	}
}

// ErrQuota means a write would take a subject past one of its quotas.
var ErrQuota = errors.New("quota exceeded")

// QuotaError is an ErrQuota naming the quota, its value and what the
// write would have made of it.
type QuotaError struct {
	Subject string
	Quota   string // the Quota field's JSON name
	Limit   int64
	Would   int64
}

func (e *QuotaError) Error() string {
	if e.Quota == "min_cron_period_seconds" {
		return fmt.Sprintf("quota exceeded: subject %q has min_cron_period_seconds %d; a cron trigger would tick every %d s",
			e.Subject, e.Limit, e.Would)
	}
	return fmt.Sprintf("quota exceeded: subject %q has %s %d; this write would make it %d", e.Subject, e.Quota, e.Limit, e.Would)
}

func (e *QuotaError) Is(target error) bool { return target == ErrQuota }

// SetSubjectQuota stores subject's quota. The subject must exist.
func (s *Store) SetSubjectQuota(subject string, q Quota) error {
	if err := q.Check(); err != nil {
		return err
	}
	return s.putSubjectRecord(subject, keyQuota(subject), q)
}

// ClearSubjectQuota removes subject's quota: DefaultQuota applies again.
func (s *Store) ClearSubjectQuota(subject string) error {
	return s.deleteSubjectRecord(subject, keyQuota(subject))
}

// DefaultQuota returns the quota of a subject the operator has set none
// for: Options.DefaultQuota, else the package's DefaultQuota.
func (s *Store) DefaultQuota() Quota {
	if s.defaultQuota != nil {
		return *s.defaultQuota
	}
	return DefaultQuota
}

// SubjectQuota returns subject's quota and whether the operator set it
// (false: the default quota). A field a stored quota lacks (set by an
// earlier version) takes the default's value.
func (s *Store) SubjectQuota(subject string) (q Quota, set bool, err error) {
	q = s.DefaultQuota()
	err = s.getJSON(keyQuota(subject), &q)
	if errors.Is(err, ErrNotFound) {
		return s.DefaultQuota(), false, nil
	}
	if err != nil {
		return Quota{}, false, fmt.Errorf("quota of %q: %w", subject, err)
	}
	return q, true, nil
}

// QuotaOf returns subject's quota for the bounds checked outside the
// store's writes (queued bytes, retained records); ok is false when no
// quota bounds the subject (an admin). An unknown subject has the default.
func (s *Store) QuotaOf(subject string) (q Quota, ok bool, err error) {
	sub, err := s.GetSubject(subject)
	switch {
	case err == nil && sub.Admin:
		return Quota{}, false, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return Quota{}, false, err
	}
	q, _, err = s.SubjectQuota(subject)
	return q, err == nil, err
}

// SubjectUsage counts what subject's functions hold against its quota.
func (s *Store) SubjectUsage(subject string) (Usage, error) {
	return s.usage(subject, "", "")
}

// usage counts subject's functions, leaving out the function module/name
// (the one a write replaces): a scan of every function record. A record
// without the subject's `"owner":"NAME"` (as json.Marshal writes it) is
// not the subject's and is skipped undecoded; the others are decoded only
// as far as the count needs (no secrets opened) and their owner checked.
func (s *Store) usage(subject, module, name string) (Usage, error) {
	owner, err := json.Marshal(subject)
	if err != nil {
		return Usage{}, err
	}
	needle := append([]byte(`"owner":`), owner...)
	var u Usage
	err = s.scan(prefixAllFuncs, func(k, v []byte) error {
		if !bytes.Contains(v, needle) {
			return nil
		}
		var f usageFields
		if err := jsonUnmarshal(k, v, &f); err != nil {
			return err
		}
		if f.Owner != subject || (f.Module == module && f.Name == name) {
			return nil
		}
		u.addFields(f)
		return nil
	})
	return u, err
}

// usageFields are the fields of a stored Function the quota counts.
type usageFields struct {
	Module string `json:"module"`
	Name   string `json:"name"`
	Owner  string `json:"owner"`
	Size   int64  `json:"size"`
	Events []struct {
		Type string `json:"type"`
	} `json:"events"`
	Sinks []json.RawMessage `json:"sinks"`
}

func (u *Usage) addFields(f usageFields) {
	cron := 0
	for _, ev := range f.Events {
		if ev.Type == EventCron {
			cron++
		}
	}
	u.addCounts(f.Size, cron, len(f.Sinks))
}

func (u *Usage) add(f Function) {
	cron := 0
	for _, ev := range f.Events {
		if ev.Type == EventCron {
			cron++
		}
	}
	u.addCounts(f.Size, cron, len(f.Sinks))
}

// addCounts adds one function of size bytes with cron triggers and sinks.
func (u *Usage) addCounts(size int64, cron, sinks int) {
	u.Functions++
	u.CodeBytes += size
	u.CronTriggers += int64(cron)
	u.Sinks += int64(sinks)
	u.MaxSinksPerFunction = max(u.MaxSinksPerFunction, int64(sinks))
}

// checkQuota refuses writing f (replacing old, nil for a creation) when
// it would take f's owner past a quota. A dimension already past its
// limit (the operator lowered it) refuses only a write that grows it.
// Admins are exempt. Callers hold s.mu.
func (s *Store) checkQuota(f Function, old *Function) error {
	sub, err := s.GetSubject(f.Owner)
	switch {
	case err == nil && sub.Admin:
		return nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return err
	}
	q, _, err := s.SubjectQuota(f.Owner)
	if err != nil {
		return err
	}
	others, err := s.usage(f.Owner, f.Module, f.Name)
	if err != nil {
		return fmt.Errorf("count the quota of %q: %w", f.Owner, err)
	}
	after, before := others, others
	after.add(f)
	if old != nil {
		before.add(*old)
	}
	fnSinks := int64(len(f.Sinks))
	oldSinks := int64(-1)
	if old != nil {
		oldSinks = int64(len(old.Sinks))
	}
	checks := []struct {
		name            string
		limit, now, was int64
	}{
		{"functions", q.Functions, after.Functions, before.Functions},
		{"code_bytes", q.CodeBytes, after.CodeBytes, before.CodeBytes},
		{"cron_triggers", q.CronTriggers, after.CronTriggers, before.CronTriggers},
		{"sinks_per_function", q.SinksPerFunction, fnSinks, oldSinks},
		{"sinks", q.Sinks, after.Sinks, before.Sinks},
	}
	for _, c := range checks {
		if c.now > c.limit && (old == nil || c.now > c.was) {
			return &QuotaError{Subject: f.Owner, Quota: c.name, Limit: c.limit, Would: c.now}
		}
	}
	return nil
}
