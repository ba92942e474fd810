// Package eventspec is the syntax and validation of a function's event
// specifications (its MQTT and cron triggers, the upload's `events`
// field), shared by the API that accepts them and the trigger runtime
// (package triggers) that runs them: parsing and redaction, a trigger's
// stable key, and the cron tick bookkeeping.
package eventspec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Limits of a function's events.
const (
	// MaxEvents bounds the triggers of one function.
	MaxEvents = 16
	maxHost   = 253
	maxTopic  = 1024
	maxCred   = 256
	maxSched  = 256
	maxArgs   = 64 << 10
)

// FieldError is a refused `events` field: Field names the bad part
// (`events[1].params.port`), so the API answers 400 naming it.
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func bad(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// cronParser accepts the standard five fields, an optional leading seconds
// field (six fields), and descriptors (@hourly, @every 1s, ...), with an
// optional CRON_TZ= or TZ= prefix.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a cron expression as triggers accept it.
func ParseSchedule(expr string) (cron.Schedule, error) {
	return cronParser.Parse(expr)
}

// Parse decodes and validates the `events` multipart field: a JSON list
// of {"type":"mqtt","params":{"host","port","topic"[,"username","password"]}}
// and {"type":"cron","schedule":"...","args":{...}}. Empty, null and []
// mean no triggers. Unknown fields are refused.
func Parse(raw []byte) ([]storage.Event, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return []storage.Event{}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, bad("events", "must be a JSON list of trigger objects: %v", err)
	}
	if len(items) > MaxEvents {
		return nil, bad("events", "has %d triggers, the limit is %d", len(items), MaxEvents)
	}
	out := make([]storage.Event, 0, len(items))
	for i, it := range items {
		ev, err := parseEvent(fmt.Sprintf("events[%d]", i), it)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func fields(field string, raw json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, bad(field, "must be a JSON object")
	}
	return m, nil
}

func str(field string, m map[string]json.RawMessage, key string, required bool, limit int) (string, error) {
	v, ok := m[key]
	if !ok {
		if required {
			return "", bad(field+"."+key, "is required")
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", bad(field+"."+key, "must be a string")
	}
	if required && strings.TrimSpace(s) == "" {
		return "", bad(field+"."+key, "must not be empty")
	}
	if len(s) > limit {
		return "", bad(field+"."+key, "is %d bytes long, the limit is %d", len(s), limit)
	}
	return s, nil
}

func only(field string, m map[string]json.RawMessage, allowed ...string) error {
	for k := range m {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return bad(field, "unknown field %q; accepted: %s", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func parseEvent(field string, raw json.RawMessage) (storage.Event, error) {
	var ev storage.Event
	m, err := fields(field, raw)
	if err != nil {
		return ev, err
	}
	typ, err := str(field, m, "type", true, 16)
	if err != nil {
		return ev, err
	}
	switch typ {
	case storage.EventMQTT:
		if err := only(field, m, "type", "params"); err != nil {
			return ev, err
		}
		p, ok := m["params"]
		if !ok {
			return ev, bad(field+".params", "is required for an mqtt trigger")
		}
		params, err := parseMQTT(field+".params", p)
		if err != nil {
			return ev, err
		}
		return storage.Event{Type: typ, Params: params}, nil
	case storage.EventCron:
		if err := only(field, m, "type", "schedule", "args"); err != nil {
			return ev, err
		}
		sched, err := str(field, m, "schedule", true, maxSched)
		if err != nil {
			return ev, err
		}
		if _, err := ParseSchedule(sched); err != nil {
			return ev, bad(field+".schedule", "is not a cron schedule (5 fields, 6 with seconds first, or @every 1m, @hourly, ...): %v", err)
		}
		args := json.RawMessage("{}")
		if a, ok := m["args"]; ok && string(bytes.TrimSpace(a)) != "null" {
			a = bytes.TrimSpace(a)
			if len(a) == 0 || a[0] != '{' {
				return ev, bad(field+".args", "must be a JSON object")
			}
			if len(a) > maxArgs {
				return ev, bad(field+".args", "is %d bytes, the limit is %d", len(a), maxArgs)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, a); err != nil {
				return ev, bad(field+".args", "must be a JSON object")
			}
			args = compact.Bytes()
		}
		return storage.Event{Type: typ, Schedule: sched, Args: args}, nil
	}
	return ev, bad(field+".type", "%q is not a trigger type; use \"mqtt\" or \"cron\"", typ)
}

func parseMQTT(field string, raw json.RawMessage) (*storage.MQTTParams, error) {
	m, err := fields(field, raw)
	if err != nil {
		return nil, err
	}
	if err := only(field, m, "host", "port", "topic", "username", "password"); err != nil {
		return nil, err
	}
	var p storage.MQTTParams
	if p.Host, err = str(field, m, "host", true, maxHost); err != nil {
		return nil, err
	}
	if err := checkHost(p.Host); err != nil {
		return nil, bad(field+".host", "%v", err)
	}
	p.Port = 1883
	if v, ok := m["port"]; ok {
		var n json.Number
		var s string
		switch {
		case json.Unmarshal(v, &s) == nil:
			n = json.Number(strings.TrimSpace(s))
		case json.Unmarshal(v, &n) == nil:
		default:
			return nil, bad(field+".port", "must be a port number (1-65535), as a number or a string")
		}
		port, err := strconv.Atoi(n.String())
		if err != nil || port < 1 || port > 65535 {
			return nil, bad(field+".port", "must be a port number (1-65535), got %s", v)
		}
		p.Port = port
	}
	if p.Topic, err = str(field, m, "topic", true, maxTopic); err != nil {
		return nil, err
	}
	if err := checkTopicFilter(p.Topic); err != nil {
		return nil, bad(field+".topic", "%v", err)
	}
	if p.Username, err = str(field, m, "username", false, maxCred); err != nil {
		return nil, err
	}
	if p.Password, err = str(field, m, "password", false, maxCred); err != nil {
		return nil, err
	}
	if p.Password != "" && p.Username == "" {
		return nil, bad(field+".password", "needs a username")
	}
	return &p, nil
}

// checkHost accepts a DNS name or an IP address (IPv6 without brackets).
func checkHost(h string) error {
	for _, r := range h {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == ':'
		if !ok {
			return fmt.Errorf("%q is not a host name or IP address", h)
		}
	}
	return nil
}

// checkTopicFilter applies MQTT 3.1.1's rules for a subscription filter:
// '#' only as the last level, '+' only as a whole level, no NUL.
func checkTopicFilter(t string) error {
	if !utf8.ValidString(t) || strings.ContainsRune(t, 0) {
		return fmt.Errorf("%q is not valid UTF-8 without NUL", t)
	}
	levels := strings.Split(t, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("%q: '#' must be the whole last level", t)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("%q: '+' must be a whole level", t)
		}
	}
	return nil
}

// Redact returns events with passwords replaced, for records shown to
// clients.
func Redact(events []storage.Event) []storage.Event {
	if len(events) == 0 {
		return events
	}
	out := make([]storage.Event, len(events))
	for i, ev := range events {
		if ev.Params != nil && ev.Params.Password != "" {
			p := *ev.Params
			p.Password = "********"
			ev.Params = &p
		}
		out[i] = ev
	}
	return out
}

// Key is a trigger's stable identity: the function, the trigger's content
// and its occurrence among identical triggers of the function. An update
// that keeps a trigger keeps its key (and so its MQTT session and its cron
// state); changing it makes a new one.
func Key(module, function string, events []storage.Event, i int) string {
	spec := canon(events[i])
	n := 0
	for j := 0; j < i; j++ {
		if canon(events[j]) == spec {
			n++
		}
	}
	sum := sha256.Sum256([]byte(module + "/" + function + "/" + spec + "/" + strconv.Itoa(n)))
	return hex.EncodeToString(sum[:12])
}

func canon(ev storage.Event) string {
	b, _ := json.Marshal(ev)
	return string(b)
}

// Due says which tick to run now for a schedule whose last fired (or
// installed) tick is last: the latest tick at or before now, and how many
// ticks between last and it are missed (folded into this run). ok is false
// when no tick is due; next is then the next tick.
//
// Folding is the choice for a core that was down or a queue that was full:
// one late run with the count of the skipped ticks in its record, never a
// burst of catch-up runs.
func Due(s cron.Schedule, last, now time.Time) (tick time.Time, missed int, next time.Time, ok bool) {
	t := s.Next(last)
	if t.IsZero() || t.After(now) {
		return time.Time{}, 0, t, false
	}
	// Count ticks up to now; a schedule that ticks every second across a
	// month of downtime is 2.6 M steps: bounded, then estimated.
	const maxSteps = 1 << 20
	for i := 0; i < maxSteps; i++ {
		n := s.Next(t)
		if n.IsZero() || n.After(now) {
			return t, missed, n, true
		}
		t = n
		missed++
	}
	// Too many to walk: jump close to now and estimate by the period.
	period := s.Next(t).Sub(t)
	if period <= 0 {
		period = time.Second
	}
	skip := now.Sub(t) / period
	missed += int(skip)
	t = t.Add((skip - 1) * period)
	for {
		n := s.Next(t)
		if n.IsZero() || n.After(now) {
			return t, missed, n, true
		}
		t = n
	}
}

// MinPeriod returns the shortest time between two ticks of the cron
// expression expr: the delay of "@every", else the least gap among the
// first ticks after a fixed instant (up to 1024 ticks within 8 days of
// the first, which covers every weekly pattern and any sub-minute one).
// The API compares it with the owner's quota (min_cron_period_seconds).
func MinPeriod(expr string) (time.Duration, error) {
	s, err := ParseSchedule(expr)
	if err != nil {
		return 0, err
	}
	if c, ok := s.(cron.ConstantDelaySchedule); ok {
		return c.Delay, nil
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	first := s.Next(start)
	if first.IsZero() {
		return 0, fmt.Errorf("schedule %q never ticks", expr)
	}
	least := time.Duration(0)
	t := first
	for i := 0; i < 1024 && t.Sub(first) <= 8*24*time.Hour; i++ {
		n := s.Next(t)
		if n.IsZero() {
			break
		}
		if d := n.Sub(t); least == 0 || d < least {
			least = d
		}
		t = n
	}
	return least, nil
}
