package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// quotaFlags are the core's default per-subject quota: what a subject the
// operator set no quota for may keep ('admin subject quota' sets one).
type quotaFlags struct {
	functions, cronTriggers, sinksPerFunction, sinks int64
	minCronPeriod                                    time.Duration
	codeBytes, queuedBytes, recordsBytes             sizeValue
}

func (f *quotaFlags) register(cmd *cobra.Command) {
	d := storage.DefaultQuota
	fl := cmd.Flags()
	fl.Int64Var(&f.functions, "quota-functions", d.Functions, "default quota: the most functions a subject may own")
	f.codeBytes = sizeValue{text: "256MiB", bytes: d.CodeBytes}
	fl.Var(&f.codeBytes, "quota-code-bytes", "default quota: the most bytes of code a subject's functions may hold in all; "+sizeHelp)
	fl.Int64Var(&f.cronTriggers, "quota-cron-triggers", d.CronTriggers, "default quota: the most cron triggers a subject's functions may have in all")
	fl.DurationVar(&f.minCronPeriod, "quota-min-cron-period", time.Duration(d.MinCronPeriodSeconds)*time.Second, "default quota: the shortest period a subject's cron trigger may tick at, whole seconds (0: none)")
	fl.Int64Var(&f.sinksPerFunction, "quota-sinks-per-function", d.SinksPerFunction, "default quota: the most sinks one function may have")
	fl.Int64Var(&f.sinks, "quota-sinks", d.Sinks, "default quota: the most sinks a subject's functions may have in all")
	f.queuedBytes = sizeValue{text: "256MiB", bytes: d.QueuedBytes}
	fl.Var(&f.queuedBytes, "quota-queued-bytes", "default quota: the args of a subject's asynchronous calls queued or running, at most (more are refused with 429; --async-subject-bytes bounds every subject, admins too); "+sizeHelp)
	f.recordsBytes = sizeValue{text: "16MiB", bytes: d.RecordsBytes}
	fl.Var(&f.recordsBytes, "quota-records-bytes", "default quota: the bytes of a subject's finished activation records; retention deletes its oldest beyond it; "+sizeHelp)
}

// quota is the default quota the flags give.
func (f *quotaFlags) quota() (storage.Quota, error) {
	if f.minCronPeriod < 0 || f.minCronPeriod%time.Second != 0 {
		return storage.Quota{}, fmt.Errorf("--quota-min-cron-period %s: give whole seconds, 0 or more", f.minCronPeriod)
	}
	q := storage.Quota{
		Functions: f.functions, CodeBytes: f.codeBytes.bytes, CronTriggers: f.cronTriggers,
		MinCronPeriodSeconds: int64(f.minCronPeriod / time.Second), SinksPerFunction: f.sinksPerFunction, Sinks: f.sinks,
		QueuedBytes: f.queuedBytes.bytes, RecordsBytes: f.recordsBytes.bytes,
	}
	if err := q.Check(); err != nil {
		return storage.Quota{}, fmt.Errorf("--quota-*: %w", err)
	}
	return q, nil
}
