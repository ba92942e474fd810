package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/internal/core"
	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/egress"
	"github.com/edgefaas/edgefaas/internal/outbound"
)

// activationFlags are the core's flags for activation records and the
// asynchronous queue.
type activationFlags struct {
	records      string
	retention    time.Duration
	maxBytes     int64
	pruneEvery   time.Duration
	maxQueued    int
	maxInFlight  int
	perFunction  int
	perSubject   int
	queuedBytes  sizeValue
	subjectBytes sizeValue
	runBytes     sizeValue
	maxLabels    int
	callbackHost []string
	callbackNet  []string
}

func (f *activationFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.records, "activation-records", "all", "which invocations keep an activation record: all, or async (synchronous calls keep none and their answers carry no X-Edgefaas-Activation; asynchronous ones always keep theirs, which are the queue's state)")
	fl.DurationVar(&f.retention, "activation-retention", activations.DefaultRetention, "delete finished activation records older than this")
	fl.Int64Var(&f.maxBytes, "activation-max-bytes", activations.DefaultMaxBytes, "delete the oldest finished activation records while all of them take more bytes than this")
	fl.DurationVar(&f.pruneEvery, "activation-prune-every", activations.DefaultPruneEvery, "how often activation retention runs")
	fl.IntVar(&f.maxQueued, "async-max-queued", activations.DefaultMaxQueued, "asynchronous activations queued or running at most; more are refused with 429")
	fl.IntVar(&f.maxInFlight, "async-max-in-flight", activations.DefaultMaxInFlight, "asynchronous activations running at once")
	fl.IntVar(&f.perFunction, "async-per-function", activations.DefaultPerFunction, "asynchronous activations of one function running at once")
	fl.IntVar(&f.perSubject, "async-per-subject", activations.DefaultPerSubject, "asynchronous activations of one subject running at once")
	f.queuedBytes = sizeValue{text: "1GiB", bytes: activations.DefaultMaxQueuedBytes}
	f.subjectBytes = sizeValue{text: "256MiB", bytes: activations.DefaultPerSubjectQueuedBytes}
	fl.Var(&f.queuedBytes, "async-max-bytes", "the args of the asynchronous calls queued or running, in total, at most (they wait on disk); more are refused with 429; "+sizeHelp)
	fl.Var(&f.subjectBytes, "async-subject-bytes", "the same for one subject's calls; "+sizeHelp)
	f.runBytes = sizeValue{text: "32MiB", bytes: activations.DefaultMaxInFlightBytes}
	fl.Var(&f.runBytes, "async-in-flight-bytes", "the args of the asynchronous calls running at once, at most (in memory while they run; a larger call runs alone); "+sizeHelp)
	fl.IntVar(&f.maxLabels, "metrics-max-functions", activations.DefaultFunctionLabels, "functions with their own per-function metric series; the rest are labelled _other")
	fl.StringSliceVar(&f.callbackHost, "callback-allow-host", nil, "host completion callbacks may be POSTed to (host, host:port, *.domain, * for any public host); default none")
	fl.StringSliceVar(&f.callbackNet, "callback-allow-net", nil, "internal network completion callbacks may reach, CIDR (default none)")
}

func (f *activationFlags) config() (core.ActivationsConfig, error) {
	var nets []netip.Prefix
	for _, n := range f.callbackNet {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return core.ActivationsConfig{}, fmt.Errorf("--callback-allow-net %q: %w", n, err)
		}
		nets = append(nets, p)
	}
	var noSync bool
	switch f.records {
	case "all", "":
	case "async":
		noSync = true
	default:
		return core.ActivationsConfig{}, fmt.Errorf("--activation-records %q: want all or async", f.records)
	}
	policy := egress.New(egress.Config{AllowedHosts: f.callbackHost, AllowedNetworks: nets})
	return core.ActivationsConfig{
		NoSyncRecords: noSync, Retention: f.retention, MaxBytes: f.maxBytes, PruneEvery: f.pruneEvery, MaxFunctionLabels: f.maxLabels,
		Queue: activations.QueueConfig{
			MaxQueued: f.maxQueued, MaxInFlight: f.maxInFlight, PerFunction: f.perFunction, PerSubject: f.perSubject,
			MaxQueuedBytes: f.queuedBytes.bytes, PerSubjectQueuedBytes: f.subjectBytes.bytes, MaxInFlightBytes: f.runBytes.bytes,
		},
		Callback: func(ctx context.Context, url string, body []byte) error {
			resp := policy.Do(ctx, &outbound.Request{Function: "callback", Method: http.MethodPost, URL: url,
				Header: http.Header{"Content-Type": {"application/json"}}, Body: body})
			if resp.Err != nil {
				return resp.Err
			}
			if resp.Status < 200 || resp.Status > 299 {
				return errors.New("callback answered " + http.StatusText(resp.Status))
			}
			return nil
		},
	}, nil
}
