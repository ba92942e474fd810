package sinks

import (
	"encoding/json"
	"errors"
	"time"
)

// Defaults of Policy.
const (
	DefaultMaxAttempts  = 12
	DefaultFirstBackoff = time.Second
	DefaultMaxBackoff   = 10 * time.Minute
	DefaultMaxAge       = 24 * time.Hour
)

// Policy bounds the retries of a failed delivery: at most MaxAttempts
// attempts, waiting FirstBackoff after the first failure and twice as
// long after each next one (at most MaxBackoff), and none once the result
// is older than MaxAge. Zero fields take the defaults.
type Policy struct {
	MaxAttempts  int
	FirstBackoff time.Duration
	MaxBackoff   time.Duration
	MaxAge       time.Duration
}

func (p Policy) withDefaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.FirstBackoff <= 0 {
		p.FirstBackoff = DefaultFirstBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	if p.MaxAge <= 0 {
		p.MaxAge = DefaultMaxAge
	}
	return p
}

// Retry says whether a delivery that failed with err after attempts tries,
// of a result that finished at finished, is tried again, and when. A
// permanent error (see Permanent) is never retried.
func (p Policy) Retry(err error, attempts int, finished, now time.Time) (at time.Time, ok bool) {
	p = p.withDefaults()
	if IsPermanent(err) || attempts >= p.MaxAttempts {
		return time.Time{}, false
	}
	d := p.FirstBackoff
	for i := 1; i < attempts && d < p.MaxBackoff; i++ {
		d *= 2
	}
	at = now.Add(min(d, p.MaxBackoff))
	if at.Sub(finished) > p.MaxAge {
		return time.Time{}, false
	}
	return at, true
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying cannot fix (refused by the
// egress policy, a 4xx answer other than 408 and 429): the delivery fails
// at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// CouchDocument is the document a CouchDB sink stores for a result: a
// JSON object result is the document, with "_id" set to the activation id
// unless the result has its own; any other result is wrapped as
// {"_id": id, "result": value}. The activation id as "_id" makes a retry
// after a lost answer a conflict instead of a duplicate. ownID reports
// whether the id is the activation's.
func CouchDocument(id string, result json.RawMessage) (doc []byte, ownID bool, err error) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(result, &obj) == nil && obj != nil {
		if _, has := obj["_id"]; has {
			return result, false, nil
		}
		idJSON, _ := json.Marshal(id)
		obj["_id"] = idJSON
		doc, err = json.Marshal(obj)
		return doc, true, err
	}
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	doc, err = json.Marshal(map[string]any{"_id": id, "result": result})
	return doc, true, err
}
