package triggers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// MaxPayload bounds the message payload a trigger passes as args (the
// API's invocation body limit); a larger message is acknowledged and
// dropped, logged.
const MaxPayload = 6 << 20

// clientID is the trigger's MQTT client id: stable across restarts (the
// broker keeps its persistent session and the unacknowledged messages),
// distinct per core database and trigger, 23 characters of [0-9a-z] (what
// every MQTT 3.1.1 broker accepts).
func (m *Manager) clientID(r *runner) string {
	inst := m.instance
	if len(inst) > 9 {
		inst = inst[:9]
	}
	return "ef" + inst + r.key[:12]
}

func (m *Manager) options(ctx context.Context, r *runner, id string, clean bool) *mqtt.ClientOptions {
	p := r.event.Params
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://" + net.JoinHostPort(p.Host, strconv.Itoa(p.Port))).
		SetClientID(id).
		SetCleanSession(clean).
		SetKeepAlive(30 * time.Second).
		SetPingTimeout(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).
		SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
			if f := r.fn.Load(); m.cfg.Bound != nil && f != nil {
				if err := m.cfg.Bound(f.Owner, p.Host, p.Port); err != nil {
					return nil, fmt.Errorf("broker %s: %w", net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), err)
				}
			}
			return m.cfg.Dial(ctx, p.Host, p.Port)
		})
	if p.Username != "" {
		opts.SetUsername(p.Username).SetPassword(p.Password)
	}
	if f := r.fn.Load(); m.cfg.Login != nil && f != nil {
		if u, pw, ok := m.cfg.Login(f.Owner, p.Host, p.Port); ok {
			opts.SetUsername(u).SetPassword(pw)
		}
	}
	return opts
}

// runMQTT keeps one persistent-session client subscribed with QoS 1; each
// message is acknowledged only after its activation is durably queued. A
// message not acknowledged when the core stops is redelivered by the
// broker to the next session: delivery is at least once.
func (m *Manager) runMQTT(ctx context.Context, log *slog.Logger, r *runner) error {
	p := r.event.Params
	handler := func(_ mqtt.Client, msg mqtt.Message) { m.deliver(ctx, log, r, msg) }
	failed := make(chan error, 1)
	opts := m.options(ctx, r, m.clientID(r), false).
		SetAutoReconnect(true). // after the first connection; before it, the loop below
		SetMaxReconnectInterval(30 * time.Second).
		SetAutoAckDisabled(true).
		SetOrderMatters(true). // acknowledgements go out in the order messages came
		SetResumeSubs(false).
		SetDefaultPublishHandler(handler). // messages of the resumed session arrive before SUBSCRIBE
		SetOnConnectHandler(func(c mqtt.Client) {
			tok := c.Subscribe(p.Topic, 1, handler)
			go func() {
				if !tok.WaitTimeout(30 * time.Second) {
					log.Warn("MQTT subscribe not acknowledged in time; the broker may still hold it", "topic", p.Topic)
				} else if err := subscribeError(tok); err != nil {
					select { // the supervisor starts a new client after its backoff
					case failed <- fmt.Errorf("subscribe to %q refused: %w", p.Topic, err):
					default:
					}
				} else {
					log.Info("MQTT trigger subscribed", "broker", net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), "topic", p.Topic)
				}
			}()
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			log.Warn("MQTT trigger lost its broker; reconnecting", "err", err)
		}).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) {
			log.Debug("MQTT trigger reconnecting")
		})
	// The first connection: retried here with backoff, each failure
	// logged (paho's own retry would hide why: a refused address, bad
	// credentials, no broker).
	var c mqtt.Client
	for delay := time.Second; ; delay = min(delay*2, 30*time.Second) {
		c = mqtt.NewClient(opts)
		tok := c.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			c.Disconnect(0)
			return errStopped
		}
		if tok.Error() == nil {
			break
		}
		log.Warn("MQTT connect failed; retrying", "broker", net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), "err", tok.Error(), "after", delay)
		if !sleep(ctx, delay) {
			return errStopped
		}
	}
	select {
	case <-ctx.Done():
		c.Disconnect(250)
		return errStopped
	case err := <-failed:
		c.Disconnect(250)
		return err
	}
}

// subscribeError is a subscription's error: paho's, or the broker's
// refusal in its SUBACK (a code of 0x80 or more: its ACL, a bad filter).
func subscribeError(tok mqtt.Token) error {
	if err := tok.Error(); err != nil {
		return err
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for topic, code := range st.Result() {
			if code >= 0x80 {
				return fmt.Errorf("the broker refused the subscription to %q (SUBACK code %#x)", topic, code)
			}
		}
	}
	return nil
}

// deliver queues one message as an activation, retrying while the queue
// is full, and acknowledges it once queued.
func (m *Manager) deliver(ctx context.Context, log *slog.Logger, r *runner, msg mqtt.Message) {
	if len(msg.Payload()) > MaxPayload {
		log.Warn("MQTT message larger than the invocation limit; dropped", "topic", msg.Topic(), "bytes", len(msg.Payload()), "limit", MaxPayload)
		m.count.add(storage.EventMQTT, resultDropped, 1)
		msg.Ack()
		return
	}
	args := PayloadArgs(msg.Payload())
	for try := 1; ; try++ {
		f := r.fn.Load()
		info := storage.TriggerInfo{Type: storage.EventMQTT, Index: int(r.index.Load()), Topic: msg.Topic()}
		id, err := m.cfg.Enqueue(*f, args, info, "", nil)
		if err == nil {
			m.count.add(storage.EventMQTT, resultQueued, 1)
			msg.Ack()
			log.Debug("MQTT message queued", "topic", msg.Topic(), "activation", id)
			return
		}
		if errors.Is(err, ErrRefused) {
			log.Warn("MQTT message dropped", "topic", msg.Topic(), "err", err)
			m.count.add(storage.EventMQTT, resultDropped, 1)
			msg.Ack()
			return
		}
		m.count.add(storage.EventMQTT, resultRetried, 1)
		if try == 1 || try%10 == 0 {
			log.Warn("MQTT message could not be queued; retrying (not acknowledged)", "topic", msg.Topic(), "err", err, "tries", try)
		}
		if !sleep(ctx, backoff(try)) {
			return // not acknowledged: the broker redelivers it to the next session
		}
	}
}

// PayloadArgs turns a message payload into the activation's args: a JSON
// object is the args as it is (FunLess's behaviour); any other JSON value
// becomes {"payload": value}; a payload that is not JSON becomes
// {"payload": "text"}, or {"payload_base64": "..."} when it is not UTF-8.
func PayloadArgs(payload []byte) json.RawMessage {
	var v any
	if json.Unmarshal(payload, &v) == nil {
		if _, ok := v.(map[string]any); ok {
			return json.RawMessage(payload)
		}
		b, _ := json.Marshal(map[string]json.RawMessage{"payload": payload})
		return b
	}
	var b []byte
	if utf8.Valid(payload) {
		b, _ = json.Marshal(map[string]string{"payload": string(payload)})
	} else {
		b, _ = json.Marshal(map[string]string{"payload_base64": base64.StdEncoding.EncodeToString(payload)})
	}
	return b
}

// dropSession ends a removed trigger's persistent session: a connect with
// a clean session makes the broker discard it and its queued messages.
func (m *Manager) dropSession(ctx context.Context, r *runner) error {
	c := mqtt.NewClient(m.options(ctx, r, m.clientID(r), true))
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return fmt.Errorf("connect: timed out")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(100)
	return nil
}
