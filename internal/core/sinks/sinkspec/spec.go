// Package sinkspec is the syntax and validation of a function's sink
// specifications (where its results go, the upload's `sinks` field),
// shared by the API that accepts them and the delivery runtime (package
// sinks) that delivers to them: parsing and redaction, and the target and
// pending deliveries an activation record shows.
package sinkspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Bounds of a sink spec.
const (
	MaxSinks      = 16
	maxURLLen     = 2048
	maxUserLen    = 256
	maxSecretLen  = 1024
	maxHeaders    = 32
	maxHeaderLen  = 1024
	maxTopicLen   = 1024
	maxHostLen    = 253
	redactedValue = "REDACTED"
)

// FieldError is a refused sink spec; Field names the offending field, as
// sinks[1].params.url.
type FieldError struct {
	Field, Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

type specBody struct {
	Type   *string         `json:"type"`
	Params json.RawMessage `json:"params"`
}

type httpParams struct {
	URL      *string           `json:"url"`
	Username *string           `json:"username"`
	Password *string           `json:"password"`
	Headers  map[string]string `json:"headers"`
	Secret   *string           `json:"secret"`
}

type mqttParams struct {
	Host     *string         `json:"host"`
	Port     json.RawMessage `json:"port"`
	Topic    *string         `json:"topic"`
	Username *string         `json:"username"`
	Password *string         `json:"password"`
	Retain   *bool           `json:"retain"`
	TLS      *bool           `json:"tls"`
}

// Parse decodes and validates the multipart field "sinks": a JSON list of
// {"type","params"}. An empty field, null, [] or {} mean no sinks. Unknown
// keys, wrong types and out-of-range values are refused with a
// *FieldError naming the field.
func Parse(raw []byte) ([]storage.Sink, error) {
	raw = bytes.TrimSpace(raw)
	switch string(raw) {
	case "", "null", "[]", "{}":
		return []storage.Sink{}, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fieldErr("sinks", "must be a JSON list of {\"type\",\"params\"} objects: %v", err)
	}
	if len(list) > MaxSinks {
		return nil, fieldErr("sinks", "has %d entries, the limit is %d", len(list), MaxSinks)
	}
	out := make([]storage.Sink, 0, len(list))
	for i, item := range list {
		s, err := parseOne(fmt.Sprintf("sinks[%d]", i), item)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func strict(raw []byte, into any, field string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fieldErr(field, "%v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return fieldErr(field, "has data after the object")
	}
	return nil
}

func parseOne(field string, raw []byte) (storage.Sink, error) {
	var b specBody
	if err := strict(raw, &b, field); err != nil {
		return storage.Sink{}, err
	}
	if b.Type == nil {
		return storage.Sink{}, fieldErr(field+".type", "is missing (couchdb, webhook or mqtt)")
	}
	if len(bytes.TrimSpace(b.Params)) == 0 || string(bytes.TrimSpace(b.Params)) == "null" {
		return storage.Sink{}, fieldErr(field+".params", "is missing")
	}
	pf := field + ".params"
	s := storage.Sink{Type: *b.Type}
	switch *b.Type {
	case storage.SinkCouchDB, storage.SinkWebhook:
		var p httpParams
		if err := strict(b.Params, &p, pf); err != nil {
			return s, err
		}
		if p.URL == nil {
			return s, fieldErr(pf+".url", "is missing")
		}
		if err := checkHTTPURL(pf+".url", *p.URL, *b.Type == storage.SinkCouchDB); err != nil {
			return s, err
		}
		s.Params.URL = *p.URL
		if *b.Type == storage.SinkCouchDB {
			if p.Headers != nil {
				return s, fieldErr(pf+".headers", "is for webhook sinks only")
			}
			if p.Secret != nil {
				return s, fieldErr(pf+".secret", "is for webhook sinks only")
			}
		} else {
			if p.Username != nil || p.Password != nil {
				return s, fieldErr(pf+".username", "is for couchdb and mqtt sinks; send a webhook's credentials in headers")
			}
			if err := checkHeaders(pf+".headers", p.Headers); err != nil {
				return s, err
			}
			s.Params.Headers = p.Headers
			if p.Secret != nil {
				if err := checkText(pf+".secret", *p.Secret, 1, maxSecretLen); err != nil {
					return s, err
				}
				s.Params.Secret = *p.Secret
			}
		}
		if err := credentials(pf, p.Username, p.Password, &s.Params); err != nil {
			return s, err
		}
	case storage.SinkMQTT:
		var p mqttParams
		if err := strict(b.Params, &p, pf); err != nil {
			return s, err
		}
		if p.Host == nil {
			return s, fieldErr(pf+".host", "is missing")
		}
		if err := checkHost(pf+".host", *p.Host); err != nil {
			return s, err
		}
		s.Params.Host = *p.Host
		if p.TLS != nil {
			s.Params.TLS = *p.TLS
		}
		port, err := parsePort(pf+".port", p.Port, s.Params.TLS)
		if err != nil {
			return s, err
		}
		s.Params.Port = port
		if p.Topic == nil {
			return s, fieldErr(pf+".topic", "is missing")
		}
		if err := checkTopic(pf+".topic", *p.Topic); err != nil {
			return s, err
		}
		s.Params.Topic = *p.Topic
		if p.Retain != nil {
			s.Params.Retain = *p.Retain
		}
		if err := credentials(pf, p.Username, p.Password, &s.Params); err != nil {
			return s, err
		}
	default:
		return s, fieldErr(field+".type", "%q is not one of couchdb, webhook, mqtt", *b.Type)
	}
	return s, nil
}

func credentials(pf string, user, pass *string, p *storage.SinkParams) error {
	if user == nil && pass == nil {
		return nil
	}
	if user == nil || *user == "" {
		return fieldErr(pf+".username", "is missing (a password needs a username)")
	}
	if err := checkText(pf+".username", *user, 1, maxUserLen); err != nil {
		return err
	}
	if strings.Contains(*user, ":") {
		return fieldErr(pf+".username", "must not contain ':'")
	}
	p.Username = *user
	if pass != nil {
		if err := checkText(pf+".password", *pass, 0, maxSecretLen); err != nil {
			return err
		}
		p.Password = *pass
	}
	return nil
}

func checkText(field, v string, min, max int) error {
	if len(v) < min || len(v) > max {
		return fieldErr(field, "must be %d to %d bytes long, got %d", min, max, len(v))
	}
	if !utf8.ValidString(v) || strings.ContainsAny(v, "\x00\r\n") {
		return fieldErr(field, "must be UTF-8 text without NUL or line breaks")
	}
	return nil
}

func checkHTTPURL(field, raw string, needPath bool) error {
	if raw == "" || len(raw) > maxURLLen {
		return fieldErr(field, "must be an http or https URL of 1 to %d characters", maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fieldErr(field, "%q is not an http or https URL", raw)
	}
	if u.User != nil {
		return fieldErr(field, "must not carry credentials; use params.username and params.password (couchdb) or params.headers (webhook)")
	}
	if u.Fragment != "" {
		return fieldErr(field, "must not have a #fragment")
	}
	if err := checkHost(field, u.Hostname()); err != nil {
		return err
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fieldErr(field, "port %q is not 1 to 65535", p)
		}
	}
	if needPath && strings.Trim(u.Path, "/") == "" {
		return fieldErr(field, "must name the database, as http://host:5984/DB")
	}
	return nil
}

// checkHost accepts a DNS name or an IP literal.
func checkHost(field, h string) error {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if h == "" || len(h) > maxHostLen {
		return fieldErr(field, "must be a host name or address of 1 to %d characters", maxHostLen)
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == ':' || r == '_') {
			return fieldErr(field, "%q is not a host name or address", h)
		}
	}
	return nil
}

func parsePort(field string, raw json.RawMessage, tls bool) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		if tls {
			return 8883, nil
		}
		return 1883, nil
	}
	var s string
	var n int
	if json.Unmarshal(raw, &s) == nil {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return 0, fieldErr(field, "%q is not a port number", s)
		}
		n = v
	} else if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fieldErr(field, "must be a port number (1 to 65535) or a string holding one")
	}
	if n < 1 || n > 65535 {
		return 0, fieldErr(field, "%d is not 1 to 65535", n)
	}
	return n, nil
}

func checkTopic(field, t string) error {
	if t == "" || len(t) > maxTopicLen {
		return fieldErr(field, "must be 1 to %d bytes long", maxTopicLen)
	}
	if !utf8.ValidString(t) || strings.ContainsRune(t, 0) {
		return fieldErr(field, "must be UTF-8 without NUL")
	}
	if strings.ContainsAny(t, "+#") {
		return fieldErr(field, "%q has a wildcard (+ or #); a result is published to one topic", t)
	}
	if strings.HasPrefix(t, "$") {
		return fieldErr(field, "%q starts with '$', which brokers reserve", t)
	}
	return nil
}

var forbiddenHeaders = map[string]bool{
	"host": true, "content-length": true, "content-type": true, "transfer-encoding": true,
	"connection": true, "upgrade": true, "te": true, "trailer": true, "keep-alive": true,
	"proxy-authorization": true, "proxy-connection": true,
}

func checkHeaders(field string, h map[string]string) error {
	if len(h) > maxHeaders {
		return fieldErr(field, "has %d entries, the limit is %d", len(h), maxHeaders)
	}
	for k, v := range h {
		if k == "" || len(k) > 128 {
			return fieldErr(field, "a header name must be 1 to 128 characters")
		}
		for _, r := range k {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
				return fieldErr(field, "%q is not a header name", k)
			}
		}
		lk := strings.ToLower(k)
		if forbiddenHeaders[lk] || strings.HasPrefix(lk, "x-edgefaas-") {
			return fieldErr(field+"."+k, "is set by edgefaas and cannot be given")
		}
		if err := checkText(field+"."+k, v, 0, maxHeaderLen); err != nil {
			return err
		}
	}
	return nil
}

// Redact returns sinks as the API shows them: passwords, webhook secrets,
// header values and URL query values replaced by "REDACTED", so a
// function record never echoes a secret back.
func Redact(sinks []storage.Sink) []storage.Sink {
	out := make([]storage.Sink, len(sinks))
	for i, s := range sinks {
		p := s.Params
		if p.Password != "" {
			p.Password = redactedValue
		}
		if p.Secret != "" {
			p.Secret = redactedValue
		}
		if len(p.Headers) > 0 {
			h := make(map[string]string, len(p.Headers))
			for k := range p.Headers {
				h[k] = redactedValue
			}
			p.Headers = h
		}
		p.URL = redactQuery(p.URL)
		out[i] = storage.Sink{Type: s.Type, Params: p}
	}
	return out
}

func redactQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery == "" {
		return raw
	}
	q := u.Query()
	for k := range q {
		q[k] = []string{redactedValue}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Target names a sink's destination for activation records and logs,
// without credentials or query: scheme://host[:port]/path for HTTP sinks,
// mqtt[s]://host:port/topic for MQTT.
func Target(s storage.Sink) string {
	if s.Type == storage.SinkMQTT {
		scheme := "mqtt"
		if s.Params.TLS {
			scheme = "mqtts"
		}
		return fmt.Sprintf("%s://%s/%s", scheme, joinHostPort(s.Params.Host, s.Params.Port), s.Params.Topic)
	}
	u, err := url.Parse(s.Params.URL)
	if err != nil {
		return s.Type
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// Pending returns the deliveries an activation of a function with sinks
// starts with: one pending entry per sink.
func Pending(sinks []storage.Sink) []storage.SinkDelivery {
	out := make([]storage.SinkDelivery, len(sinks))
	for i, s := range sinks {
		out[i] = storage.SinkDelivery{Type: s.Type, Target: Target(s), Status: storage.SinkPending}
	}
	return out
}
