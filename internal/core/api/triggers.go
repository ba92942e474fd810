package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/edgefaas/edgefaas/internal/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/core/triggers"
	"github.com/edgefaas/edgefaas/internal/core/triggers/broker"
	"github.com/edgefaas/edgefaas/internal/egress"
)

// TriggersConfig configures functions' events on the core.
type TriggersConfig struct {
	// Dial connects to a trigger's MQTT broker under the operator's egress
	// policy, and Allowed checks a broker at upload; nil dials any host
	// and allows any (tests of the API alone).
	Dial    func(ctx context.Context, host string, port int) (net.Conn, error)
	Allowed func(host string, port int) error
	// Broker, when its Addr is set, runs the embedded MQTT broker; its
	// state file defaults to DataDir/mqtt-broker.db. Triggers may always
	// reach it.
	Broker broker.Config
}

// startTriggers starts the embedded broker (if configured) and returns the
// trigger manager, not started yet; srv is filled in before any trigger
// fires. The returned stop closes the broker.
func startTriggers(cfg TriggersConfig, dataDir string, store *storage.Store, log *slog.Logger, srv **Server) (*triggers.Manager, func(), error) {
	stop := func() {}
	dial, allowed := cfg.Dial, cfg.Allowed
	embedded := func(string, int) bool { return false }
	if cfg.Broker.Addr != "" {
		bc := cfg.Broker
		if bc.StatePath == "" {
			bc.StatePath = filepath.Join(dataDir, "mqtt-broker.db")
		}
		bc.Log = log
		b, err := broker.Start(bc)
		if err != nil {
			return nil, stop, err
		}
		stop = func() {
			if err := b.Close(); err != nil {
				log.Warn("embedded MQTT broker close", "err", err)
			}
		}
		local := b.Addr()
		isLocal := func(host string, port int) bool {
			return net.JoinHostPort(host, strconv.Itoa(port)) == local || host == "localhost" && strconv.Itoa(port) == portOf(local)
		}
		embedded = isLocal
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
	m := triggers.New(triggers.Config{
		Store: store, Log: log, Dial: dial, Allowed: allowed,
		Bound: func(owner, host string, port int) error { // the owner's egress bound; not for the embedded broker
			if embedded(host, port) {
				return nil
			}
			return egress.Permits(store.SubjectEgress, owner, "tcp://"+net.JoinHostPort(host, strconv.Itoa(port)))
		},
		Enqueue: func(f storage.Function, args json.RawMessage, info storage.TriggerInfo, key string, st *storage.CronState) (string, error) {
			if *srv == nil {
				return "", fmt.Errorf("the API is not ready")
			}
			return (*srv).EnqueueTrigger(f, args, info, key, st)
		},
	})
	return m, stop, nil
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// Triggers runs functions' events (package triggers' Manager): the API
// checks new events against it and tells it every committed change.
type Triggers interface {
	// Check refuses events the operator's policy does not permit; its
	// error names the bad field (answered 400).
	Check(events []storage.Event) error
	// FunctionChanged applies a committed create, update or delete.
	FunctionChanged(ev cluster.FunctionEvent)
}

// checkEvents answers 400 for events the trigger runtime refuses.
func (s *Server) checkEvents(events []storage.Event) error {
	if s.cfg.Triggers == nil || len(events) == 0 {
		return nil
	}
	if err := s.cfg.Triggers.Check(events); err != nil {
		return errorf(http.StatusBadRequest, "Bad Request: %v", err)
	}
	return nil
}

// EnqueueTrigger queues an activation that a trigger started, as the
// function's owner, with info in its record (triggers.EnqueueFunc). For a
// cron tick the trigger's state st is committed in the same synced batch
// as the activation (storage.ErrTickDone when that tick was queued
// before).
func (s *Server) EnqueueTrigger(f storage.Function, args json.RawMessage, info storage.TriggerInfo, cronKey string, st *storage.CronState) (string, error) {
	if s.queue == nil {
		return "", ErrNoQueue
	}
	// Ownership: a trigger runs as the function's owner, so it stops with
	// the owner's token (revoked or deleted subject).
	sub, err := s.cfg.Store.GetSubject(f.Owner)
	if errors.Is(err, storage.ErrNotFound) || err == nil && sub.TokenHash == "" {
		return "", fmt.Errorf("%w: the function's owner %q is revoked", triggers.ErrRefused, f.Owner)
	}
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	rec := storage.Activation{ID: s.ids.New(now), Module: f.Module, Function: f.Name, Version: f.Version, Hash: f.Hash,
		Subject: f.Owner, QueuedAt: now, Logs: []string{}, Trigger: &info}
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	call := storage.QueuedCall{Module: f.Module, Function: f.Name, Subject: f.Owner, Args: args}
	var commit func(storage.Activation, storage.QueuedCall) error
	if st != nil {
		if cronKey == "" {
			return "", errors.New("a cron tick needs its trigger's key")
		}
		commit = func(rec storage.Activation, call storage.QueuedCall) error {
			return s.cfg.Store.EnqueueCronTick(rec, call, cronKey, *st)
		}
	}
	if err := s.queue.SubmitWith(rec, call, commit); err != nil {
		return "", err
	}
	return rec.ID, nil
}

var _ triggers.EnqueueFunc = (*Server)(nil).EnqueueTrigger
