package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
)

// subjectQuotaCommand builds `edgefaas admin subject quota`: what one
// subject's functions may hold in the core.
func subjectQuotaCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Bound what one subject may keep: functions, code, cron triggers, sinks, queued calls, records (set, show, clear)",
		Long: `A subject's quota bounds the functions it owns, the sum of their code sizes,
their cron triggers and the shortest period one may tick at, and their sinks
(per function and in all). A write beyond one is refused with 403 naming the
quota and its value, before anything is stored. The args of its queued
asynchronous calls are bounded too (beyond: 429, the calls drain), and its
finished activation records (retention deletes its oldest beyond the bound,
not other subjects'). A subject without a quota of its own has the default
(the core's --quota-* flags); admins are exempt. 'set' changes only the flags
given; 'clear' restores the default.`,
		Example: "  edgefaas admin subject quota set alice --functions 20 --min-cron-period 1m\n  edgefaas admin subject quota show alice\n  edgefaas admin subject quota clear alice",
	}
	print := func(cmd *cobra.Command, v client.SubjectQuota) error {
		if jsonOutput() {
			return printJSON(cmd.OutOrStdout(), v)
		}
		w := cmd.OutOrStdout()
		src := "set"
		switch {
		case v.Exempt:
			src = "exempt (admin)"
		case v.Default:
			src = "default"
		}
		fmt.Fprintf(w, "%s: quota %s\n", v.Subject, src)
		q, u := v.Quota, v.Usage
		fmt.Fprintf(w, "  functions           %d of %d\n", u.Functions, q.Functions)
		fmt.Fprintf(w, "  code bytes          %d of %d\n", u.CodeBytes, q.CodeBytes)
		fmt.Fprintf(w, "  cron triggers       %d of %d\n", u.CronTriggers, q.CronTriggers)
		fmt.Fprintf(w, "  min cron period     %s\n", time.Duration(q.MinCronPeriodSeconds)*time.Second)
		fmt.Fprintf(w, "  sinks per function  %d of %d (most)\n", u.MaxSinksPerFunction, q.SinksPerFunction)
		fmt.Fprintf(w, "  sinks               %d of %d\n", u.Sinks, q.Sinks)
		fmt.Fprintf(w, "  queued bytes        %d\n", q.QueuedBytes)
		fmt.Fprintf(w, "  records bytes       %d\n", q.RecordsBytes)
		return nil
	}
	var functions, codeBytes, cronTriggers, sinksPerFunction, sinks, queuedBytes, recordsBytes int64
	var minPeriod time.Duration
	set := &cobra.Command{
		Use:     "set NAME",
		Short:   "Change a subject's quota (only the flags given)",
		Example: "  edgefaas admin subject quota set alice --functions 20 --code-bytes 67108864\n  edgefaas admin subject quota set alice --cron-triggers 2 --min-cron-period 5m",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch client.QuotaChange
			f := cmd.Flags()
			for _, o := range []struct {
				name string
				v    *int64
				dst  **int64
			}{
				{"functions", &functions, &ch.Functions}, {"code-bytes", &codeBytes, &ch.CodeBytes},
				{"cron-triggers", &cronTriggers, &ch.CronTriggers}, {"sinks-per-function", &sinksPerFunction, &ch.SinksPerFunction},
				{"sinks", &sinks, &ch.Sinks}, {"queued-bytes", &queuedBytes, &ch.QueuedBytes},
				{"records-bytes", &recordsBytes, &ch.RecordsBytes},
			} {
				if f.Changed(o.name) {
					*o.dst = o.v
				}
			}
			if f.Changed("min-cron-period") {
				if minPeriod < 0 || minPeriod%time.Second != 0 {
					return fmt.Errorf("--min-cron-period %s: give whole seconds, 0 or more", minPeriod)
				}
				secs := int64(minPeriod / time.Second)
				ch.MinCronPeriodSeconds = &secs
			}
			if ch == (client.QuotaChange{}) {
				return fmt.Errorf("nothing to set: give at least one of --functions, --code-bytes, --cron-triggers, --min-cron-period, --sinks-per-function, --sinks, --queued-bytes, --records-bytes")
			}
			v, err := fetch(cmd, true, func(c *client.Client, ctx context.Context) (client.SubjectQuota, error) {
				return c.SetSubjectQuota(ctx, args[0], ch)
			})
			if err != nil {
				return apiError(err)
			}
			return print(cmd, v)
		},
	}
	set.Flags().Int64Var(&functions, "functions", 0, "the most functions the subject may own")
	set.Flags().Int64Var(&codeBytes, "code-bytes", 0, "the most bytes of code its functions may hold in all")
	set.Flags().Int64Var(&cronTriggers, "cron-triggers", 0, "the most cron triggers its functions may have in all")
	set.Flags().DurationVar(&minPeriod, "min-cron-period", 0, "the shortest period a cron trigger may tick at, whole seconds (0: none)")
	set.Flags().Int64Var(&sinksPerFunction, "sinks-per-function", 0, "the most sinks one function may have")
	set.Flags().Int64Var(&sinks, "sinks", 0, "the most sinks its functions may have in all")
	set.Flags().Int64Var(&queuedBytes, "queued-bytes", 0, "the most bytes of args its asynchronous calls queued or running may hold")
	set.Flags().Int64Var(&recordsBytes, "records-bytes", 0, "the most bytes its finished activation records may take (its oldest are deleted beyond)")
	show := &cobra.Command{
		Use:     "show NAME",
		Aliases: []string{"get"},
		Short:   "Show a subject's quota and what it holds against it",
		Example: "  edgefaas admin subject quota show alice\n  edgefaas admin subject quota show alice -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := fetchName(cmd, true, (*client.Client).SubjectQuota, args[0])
			if err != nil {
				return apiError(err)
			}
			return print(cmd, v)
		},
	}
	clear := &cobra.Command{
		Use:     "clear NAME",
		Aliases: []string{"unset"},
		Short:   "Remove a subject's quota (the default applies again)",
		Example: "  edgefaas admin subject quota clear alice",
		Args:    cobra.ExactArgs(1),
		RunE:    runOnName(true, (*client.Client).ClearSubjectQuota, apiError, "%s: quota cleared, the default applies"),
	}
	return group(cmd, set, show, clear)
}
