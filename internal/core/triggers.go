package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/edgefaas/edgefaas/internal/core/invocation"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/core/triggers"
	"github.com/edgefaas/edgefaas/internal/core/triggers/broker"
	"github.com/edgefaas/edgefaas/internal/egress"
)

// TriggersConfig configures functions' events on the core.
type TriggersConfig struct {
	// Dial connects to a trigger's MQTT broker under the operator's egress
	// policy, and Allowed checks a broker at upload; nil dials any host
	// and allows any (tests of the core alone).
	Dial    func(ctx context.Context, host string, port int) (net.Conn, error)
	Allowed func(host string, port int) error
	// Broker, when its Addr is set, runs the embedded MQTT broker; its
	// state file defaults to DataDir/mqtt-broker.db. The operator's
	// policy permits it (it is the operator's own); owners' egress bounds
	// apply to it as to any broker, and its ACL gives each owner's
	// triggers the topics under the owner's name.
	Broker broker.Config
}

// triggersPart is the trigger manager and what it queues through: the
// invocation service, built after it (the API checks events against the
// manager), before any trigger fires.
type triggersPart struct {
	manager     *triggers.Manager
	invocations *invocation.Service
}

// enqueue is the manager's EnqueueFunc.
func (t *triggersPart) enqueue(f storage.Function, args json.RawMessage, info storage.TriggerInfo, key string, st *storage.CronState) (string, error) {
	if t.invocations == nil {
		return "", errors.New("the invocation service is not ready")
	}
	return t.invocations.EnqueueTrigger(f, args, info, key, st)
}

// startTriggers starts the embedded broker (if configured; it closes after
// the triggers stopped) and builds the trigger manager, not started yet.
func (c *assembly) startTriggers() error {
	cfg, log := c.cfg.Triggers, c.log
	dial, allowed := cfg.Dial, cfg.Allowed
	var topic func(owner, host string, port int, topic string) error
	var login func(owner, host string, port int) (string, string, bool)
	if cfg.Broker.Addr != "" {
		bc := cfg.Broker
		if bc.StatePath == "" {
			bc.StatePath = filepath.Join(c.cfg.DataDir, "mqtt-broker.db")
		}
		bc.Log = log
		bc.Admin = c.isAdmin
		b, err := broker.Start(bc)
		if err != nil {
			return err
		}
		c.onStop(func() error {
			if err := b.Close(); err != nil {
				log.Warn("embedded MQTT broker close", "err", err)
			}
			return nil
		})
		local := b.Addr()
		isLocal := func(host string, port int) bool {
			return net.JoinHostPort(host, strconv.Itoa(port)) == local || host == "localhost" && strconv.Itoa(port) == portOf(local)
		}
		topic = func(owner, host string, port int, t string) error {
			if !isLocal(host, port) || c.isAdmin(owner) || broker.Permits([]string{owner + "/"}, t) {
				return nil
			}
			return fmt.Errorf("%q: on the core's broker subject %s may use only %s and the topics under %s/", t, owner, owner, owner)
		}
		login = func(owner, host string, port int) (string, string, bool) {
			if !isLocal(host, port) {
				return "", "", false
			}
			u, p := b.TriggerLogin(owner)
			return u, p, true
		}
		outerDial, outerAllowed := dial, allowed
		dial = func(ctx context.Context, host string, port int) (net.Conn, error) {
			if isLocal(host, port) || outerDial == nil {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			}
			return outerDial(ctx, host, port)
		}
		allowed = func(host string, port int) error {
			if isLocal(host, port) || outerAllowed == nil {
				return nil
			}
			return outerAllowed(host, port)
		}
	}
	t := &triggersPart{}
	tcfg := triggers.Config{
		Store: c.store, Log: log, Dial: dial, Allowed: allowed, Topic: topic, Login: login,
		Bound: func(owner, host string, port int) error { // the owner's egress bound, wherever the broker is
			return egress.Permits(c.store.SubjectEgress, owner, "tcp://"+net.JoinHostPort(host, strconv.Itoa(port)))
		},
		Enqueue: t.enqueue,
		Active: func(owner string) bool { // a revoked owner's triggers stop
			sub, err := c.store.GetSubject(owner)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				log.Warn("triggers: read the owner; running its triggers", "owner", owner, "err", err)
				return true
			}
			return err == nil && !sub.Revoked()
		},
	}
	if c.group != nil {
		tcfg.CronStates = c.group.member.Writes()
	}
	t.manager = triggers.New(tcfg)
	c.triggers = t
	return nil
}

// isAdmin says whether subject is an admin (its triggers may use every
// topic of the embedded broker).
func (c *assembly) isAdmin(subject string) bool {
	s, err := c.store.GetSubject(subject)
	return err == nil && s.Admin
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
