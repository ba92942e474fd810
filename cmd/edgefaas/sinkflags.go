package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/internal/core/sinks"
	"github.com/edgefaas/edgefaas/internal/egress"
)

// sinkFlags are the core's flags for delivering results to functions'
// sinks. Where sinks may connect is the operator's egress policy
// (--allow-host, --egress-allow, --allow-net), the same as functions'.
type sinkFlags struct {
	maxAttempts int
	retryFirst  time.Duration
	retryMax    time.Duration
	maxAge      time.Duration
	concurrency int
	maxPending  int64
	timeout     time.Duration
}

func (f *sinkFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.maxAttempts, "sink-max-attempts", sinks.DefaultMaxAttempts, "delivery attempts of a result to one sink before it is marked failed")
	fl.DurationVar(&f.retryFirst, "sink-retry-first", sinks.DefaultFirstBackoff, "wait after a sink delivery's first failure (doubled after each next one)")
	fl.DurationVar(&f.retryMax, "sink-retry-max", sinks.DefaultMaxBackoff, "longest wait between two attempts of a sink delivery")
	fl.DurationVar(&f.maxAge, "sink-max-age", sinks.DefaultMaxAge, "no sink delivery is attempted for a result older than this")
	fl.IntVar(&f.concurrency, "sink-concurrency", sinks.DefaultConcurrency, "sink deliveries in progress at once")
	fl.Int64Var(&f.maxPending, "sink-max-pending-bytes", sinks.DefaultMaxPendingBytes, "bytes of results waiting for sink delivery at most; beyond, a result's deliveries fail at once")
	fl.DurationVar(&f.timeout, "sink-timeout", sinks.DefaultTimeout, "bound of one sink delivery attempt")
}

// config returns the sinks' configuration under the egress policy eg.
func (f *sinkFlags) config(eg egress.Config) sinks.Config {
	eg.Timeout = f.timeout
	policy := egress.New(eg)
	return sinks.Config{
		HTTP:            policy.DoNoRedirect,
		Dial:            policy.DialContext,
		Policy:          sinks.Policy{MaxAttempts: f.maxAttempts, FirstBackoff: f.retryFirst, MaxBackoff: f.retryMax, MaxAge: f.maxAge},
		Concurrency:     f.concurrency,
		MaxPendingBytes: f.maxPending,
		Timeout:         f.timeout,
	}
}
