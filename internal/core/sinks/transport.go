package sinks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefaas/edgefaas/internal/core/sinks/sinkspec"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/egress"
	"github.com/edgefaas/edgefaas/internal/outbound"
)

// HTTPFunc performs one outbound HTTP request under the operator's egress
// policy (egress.Client.Do).
type HTTPFunc func(ctx context.Context, req *outbound.Request) *outbound.Response

// DialFunc opens a TCP connection under the operator's egress policy
// (egress.Client.DialContext); granted is the sink's own host:port.
type DialFunc func(ctx context.Context, address string, granted []string) (net.Conn, error)

// Headers edgefaas sets on HTTP deliveries.
const (
	HeaderActivation = "X-Edgefaas-Activation"
	HeaderFunction   = "X-Edgefaas-Function"
	HeaderSignature  = "X-Edgefaas-Signature"
)

// deliver sends job's result to sink i.
func (d *Dispatcher) deliver(ctx context.Context, job *storage.SinkJob, i int) error {
	s := job.Sinks[i]
	if s.Type == storage.SinkCallback {
		return d.callback(ctx, job, s.Params.URL)
	}
	if d.cfg.Bound != nil && job.Owner != "" {
		dest := s.Params.URL
		if s.Type == storage.SinkMQTT {
			dest = "tcp://" + net.JoinHostPort(s.Params.Host, strconv.Itoa(s.Params.Port))
		}
		if err := d.cfg.Bound(job.Owner, dest); err != nil {
			return Permanent(fmt.Errorf("refused by the egress bound of %s: %w", job.Owner, err))
		}
	}
	switch s.Type {
	case storage.SinkCouchDB:
		return d.couch(ctx, job, s)
	case storage.SinkWebhook:
		return d.webhook(ctx, job, s)
	case storage.SinkMQTT:
		return d.mqtt.publish(ctx, s, job.Result)
	}
	return Permanent(fmt.Errorf("unknown sink type %q", s.Type))
}

// callback POSTs job's finished record to an asynchronous call's callback
// url, on behalf of the call's subject: not once the subject is revoked,
// and within its egress bound.
func (d *Dispatcher) callback(ctx context.Context, job *storage.SinkJob, url string) error {
	if d.cfg.Active != nil && !d.cfg.Active(job.Subject) {
		return Permanent(fmt.Errorf("not sent: subject %q was revoked", job.Subject))
	}
	if d.cfg.Bound != nil {
		if err := d.cfg.Bound(job.Subject, url); err != nil {
			d.log.Warn("callback refused by the subject's egress bound", "id", job.ID, "subject", job.Subject, "err", err)
			return Permanent(fmt.Errorf("refused by the egress bound of %s: %w", job.Subject, err))
		}
	}
	if d.cfg.Callback == nil {
		return Permanent(errors.New("the core has no egress for callbacks"))
	}
	if err := d.cfg.Callback(ctx, url, job.Callback); err != nil {
		return classify(err)
	}
	return nil
}

func (d *Dispatcher) couch(ctx context.Context, job *storage.SinkJob, s storage.Sink) error {
	doc, ownID, err := CouchDocument(job.ID, job.Result)
	if err != nil {
		return Permanent(fmt.Errorf("build the document: %w", err))
	}
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	if s.Params.Username != "" {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(s.Params.Username+":"+s.Params.Password)))
	}
	status, err := d.post(ctx, job, s.Params.URL, h, doc)
	if err != nil {
		return err
	}
	if status == http.StatusConflict && ownID {
		// Stored by an earlier attempt whose answer was lost.
		return nil
	}
	return statusError(status)
}

func (d *Dispatcher) webhook(ctx context.Context, job *storage.SinkJob, s storage.Sink) error {
	h := http.Header{"Content-Type": {"application/json"}}
	for k, v := range s.Params.Headers {
		h.Set(k, v)
	}
	h.Set(HeaderActivation, job.ID)
	h.Set(HeaderFunction, job.Module+"/"+job.Function)
	if s.Params.Secret != "" {
		h.Set(HeaderSignature, Signature(s.Params.Secret, time.Now(), job.Result))
	}
	status, err := d.post(ctx, job, s.Params.URL, h, job.Result)
	if err != nil {
		return err
	}
	return statusError(status)
}

// Signature is the X-Edgefaas-Signature of a webhook body sent at t:
// "t=UNIX,v1=HEX", HEX the HMAC-SHA256 under the sink's secret of the
// timestamp, a dot and the body (the scheme of Stripe's and Standard
// Webhooks' signatures). The timestamp is signed, so a receiver that
// refuses old ones (http/client.VerifyWebhook) cannot be sent a captured
// delivery again later.
func Signature(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

func (d *Dispatcher) post(ctx context.Context, job *storage.SinkJob, target string, h http.Header, body []byte) (int, error) {
	u, err := url.Parse(target)
	if err != nil {
		return 0, Permanent(err)
	}
	resp := d.cfg.HTTP(ctx, &outbound.Request{
		Function: job.Module + "/" + job.Function, AllowedHosts: []string{net.JoinHostPort(u.Hostname(), portOf(u))},
		Method: http.MethodPost, URL: target, Header: h, Body: body,
	})
	if resp.Err != nil {
		err := classify(resp.Err)
		if u.RawQuery != "" {
			// The error names the URL ("POST URL: ..."): its query (a
			// secret, redacted everywhere else) must not reach the record
			// or the log.
			err = redacted{err, strings.ReplaceAll(err.Error(), u.RawQuery, "REDACTED")}
		}
		return 0, err
	}
	return resp.Status, nil
}

// redacted is err with another message (a secret taken out); errors.Is
// and errors.As still see err.
type redacted struct {
	err error
	msg string
}

func (r redacted) Error() string { return r.msg }
func (r redacted) Unwrap() error { return r.err }

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// classify marks the egress policy's refusals permanent.
func classify(err error) error {
	if errors.Is(err, egress.ErrHostNotAllowed) || errors.Is(err, egress.ErrAddressNotAllowed) || errors.Is(err, egress.ErrBadRequest) {
		return Permanent(fmt.Errorf("refused by the egress policy: %w", err))
	}
	return err
}

// statusError: 2xx delivered; 408, 429 and 5xx retried; other codes fail
// (3xx too: redirects are not followed, see egress.Client.DoNoRedirect).
func statusError(status int) error {
	switch {
	case status >= 200 && status <= 299:
		return nil
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return fmt.Errorf("answered %d %s", status, http.StatusText(status))
	}
	return Permanent(fmt.Errorf("answered %d %s", status, http.StatusText(status)))
}

// mqttPool keeps one connected paho client per broker and credentials,
// reused by deliveries and closed after idle.
type mqttPool struct {
	dial    DialFunc
	timeout time.Duration
	idle    time.Duration

	mu      sync.Mutex
	clients map[string]*mqttConn
}

type mqttConn struct {
	mu       sync.Mutex // serialises connecting
	client   mqtt.Client
	lastUsed time.Time
}

func newMQTTPool(dial DialFunc, timeout, idle time.Duration) *mqttPool {
	return &mqttPool{dial: dial, timeout: timeout, idle: idle, clients: map[string]*mqttConn{}}
}

func mqttKey(s storage.Sink) string {
	return strings.Join([]string{s.Params.Host, strconv.Itoa(s.Params.Port), strconv.FormatBool(s.Params.TLS), s.Params.Username, s.Params.Password}, "\x00")
}

// publish sends payload to the sink's topic with QoS 1 and waits for the
// broker's PUBACK.
func (p *mqttPool) publish(ctx context.Context, s storage.Sink, payload []byte) error {
	if p.dial == nil {
		return Permanent(errors.New("the core has no egress for MQTT sinks"))
	}
	key := mqttKey(s)
	p.mu.Lock()
	c := p.clients[key]
	if c == nil {
		c = &mqttConn{}
		p.clients[key] = c
	}
	p.mu.Unlock()
	c.mu.Lock()
	c.lastUsed = time.Now()
	if c.client == nil || !c.client.IsConnectionOpen() {
		if c.client != nil {
			c.client.Disconnect(0)
			c.client = nil
		}
		cl, err := p.connect(ctx, s)
		if err != nil {
			c.mu.Unlock()
			return err
		}
		c.client = cl
	}
	cl := c.client
	c.mu.Unlock()
	tok := cl.Publish(s.Params.Topic, 1, s.Params.Retain, payload)
	wait := p.timeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	if !tok.WaitTimeout(wait) {
		p.drop(key, cl)
		return fmt.Errorf("publish to %s: no PUBACK within %s", sinkspec.Target(s), wait)
	}
	if err := tok.Error(); err != nil {
		p.drop(key, cl)
		return fmt.Errorf("publish to %s: %w", sinkspec.Target(s), err)
	}
	return nil
}

func (p *mqttPool) connect(ctx context.Context, s storage.Sink) (mqtt.Client, error) {
	addr := net.JoinHostPort(s.Params.Host, strconv.Itoa(s.Params.Port))
	var dialErr error
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(clientID()).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(p.timeout).
		SetWriteTimeout(p.timeout).
		SetKeepAlive(30 * time.Second).
		SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, p.timeout)
			defer cancel()
			conn, err := p.dial(dctx, addr, []string{addr})
			if err != nil {
				dialErr = err
				return nil, err
			}
			if s.Params.TLS {
				tc := tls.Client(conn, &tls.Config{ServerName: s.Params.Host, MinVersion: tls.VersionTLS12})
				if err := tc.HandshakeContext(dctx); err != nil {
					conn.Close()
					return nil, err
				}
				return tc, nil
			}
			return conn, nil
		})
	if s.Params.Username != "" {
		opts.SetUsername(s.Params.Username).SetPassword(s.Params.Password)
	}
	cl := mqtt.NewClient(opts)
	tok := cl.Connect()
	if !tok.WaitTimeout(p.timeout + time.Second) {
		cl.Disconnect(0)
		return nil, fmt.Errorf("connect to %s: no CONNACK within %s", addr, p.timeout)
	}
	if err := tok.Error(); err != nil {
		if dialErr != nil {
			return nil, classify(dialErr)
		}
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return cl, nil
}

func (p *mqttPool) drop(key string, cl mqtt.Client) {
	p.mu.Lock()
	c := p.clients[key]
	p.mu.Unlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.client == cl {
		c.client = nil
	}
	c.mu.Unlock()
	cl.Disconnect(0)
}

// reap disconnects clients unused for the idle time.
func (p *mqttPool) reap(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.clients {
		if !c.mu.TryLock() {
			continue
		}
		if now.Sub(c.lastUsed) > p.idle {
			if c.client != nil {
				c.client.Disconnect(100)
			}
			delete(p.clients, k)
		}
		c.mu.Unlock()
	}
}

func (p *mqttPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.clients {
		c.mu.Lock()
		if c.client != nil {
			c.client.Disconnect(250)
		}
		c.mu.Unlock()
		delete(p.clients, k)
	}
}
