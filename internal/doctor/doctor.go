// Package doctor turns what `edgefaas doctor` gathered about a site (the
// core's answers, the local toolchains) into findings, each with the fix.
// It is plain Go: the command gathers Facts over the API and from PATH,
// Diagnose judges them, and tests drive Diagnose with any facts they like.
package doctor

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/membudget"
	"github.com/edgefaas/edgefaas/internal/version"
)

// Level is how much a finding matters.
type Level string

const (
	// OK: nothing to do.
	OK Level = "ok"
	// Warn: works now, but the fix is advised.
	Warn Level = "warn"
	// Fail: something does not work; the command exits non-zero.
	Fail Level = "fail"
	// Skip: the check could not run (e.g. it needs an admin token).
	Skip Level = "skip"
)

// Finding is one check's outcome.
type Finding struct {
	Check  string `json:"check"`
	Level  Level  `json:"level"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Report is every check's finding, in the order they ran.
type Report []Finding

// add appends a finding.
func (r *Report) add(check string, l Level, fix, format string, a ...any) {
	*r = append(*r, Finding{Check: check, Level: l, Detail: fmt.Sprintf(format, a...), Fix: fix})
}

// Failed reports whether a check failed.
func (r Report) Failed() bool {
	for _, f := range r {
		if f.Level == Fail {
			return true
		}
	}
	return false
}

// Toolchain is one compiler `fn build` can use, found on PATH or not.
type Toolchain struct {
	// Name is the language ("go", "c", "rust").
	Name string
	// Found is what was found (a version line), "" if nothing.
	Found string
	// Problem says why what was found cannot build functions, "" if it can.
	Problem string
	// Install is how to get it.
	Install string
}

// Facts is what the command gathered.
type Facts struct {
	// Host is the core's address the client uses.
	Host string
	// Client is this binary's version.
	Client string
	// Core is the core's version, if it answered; CoreErr why not.
	Core    *client.CoreVersion
	CoreErr error
	// Status is the core's state, if the token is an admin's; StatusErr
	// why not (a 403 means the token is a user's).
	Status    *client.AdminStatus
	StatusErr error
	// Asked and Answered bracket the status request on the client's clock.
	Asked, Answered time.Time
	// Nodes are the workers (nil with NodesErr when not readable).
	Nodes    []client.Node
	NodesErr error
	// Toolchains are the local compilers.
	Toolchains []Toolchain
}

// Thresholds of the checks.
const (
	// MaxClockSkew is the skew between client and core beyond which
	// records' times and join tokens' expiry mislead.
	MaxClockSkew = 5 * time.Second
	// StaleReport is how old a worker's last report may be: workers report
	// every second or so.
	StaleReport = 30 * time.Second
	// LowDiskFraction of the core's disk free is low.
	LowDiskFraction = 0.10
	// OldQueue is the age of the oldest queued call that means calls are
	// not being run.
	OldQueue = 5 * time.Minute
)

// Diagnose judges facts; now is the client's clock.
func Diagnose(f Facts, now time.Time) Report {
	var r Report
	// Reachability, TLS and the token all show in the first answer.
	var ue *client.UnreachableError
	var ae *client.Error
	switch err := f.CoreErr; {
	case err == nil && f.Core != nil:
		r.add("core", OK, "", "%s answers, version %s", f.Host, f.Core.Version)
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		r.add("core", OK, "", "%s answers", f.Host)
		r.add("token", Fail, "get a token from an admin ('edgefaas admin subject rotate NAME') and save it: 'edgefaas config set token TOKEN'",
			"the core refused the token: %s", ae.Detail)
	case isTLS(err):
		r.add("core", Fail, "pin the core's certificate: 'edgefaas config set tls-fingerprint SHA256' (the core logs it at start), or trust its CA with --ca-file",
			"%s: TLS: %v", f.Host, err)
	case errors.As(err, &ue):
		r.add("core", Fail, "start a core ('make run', 'edgefaas dev') or point the context at one: 'edgefaas config set host URL'",
			"%s does not answer: %v", f.Host, err)
	default:
		r.add("core", Fail, "see the core's log for the error", "%s: %v", f.Host, err)
	}
	if f.Core == nil {
		r = append(r, toolchains(f.Toolchains)...)
		return r
	}
	r.add("token", OK, "", "accepted")
	if err := version.Compatible(f.Core.Version, f.Client); err != nil {
		r.add("client version", Warn, "use the client of the core's version", "client %s, core %s: %v", f.Client, f.Core.Version, err)
	} else {
		r.add("client version", OK, "", "client %s, core %s", f.Client, f.Core.Version)
	}

	// The role, and what only an admin can read.
	var adminOnly bool
	switch err := f.StatusErr; {
	case err == nil && f.Status != nil:
		r.add("role", OK, "", "admin")
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		r.add("role", OK, "", "user (the checks of disk, queue and node joins need an admin token)")
		adminOnly = true
	default:
		r.add("role", Warn, "see the core's log for the error", "the core's status could not be read: %v", err)
		adminOnly = true
	}
	if !adminOnly {
		r = append(r, status(*f.Status, f.Asked, f.Answered)...)
	}
	r = append(r, nodes(f.Core.Version, f.Nodes, f.NodesErr, now)...)
	r = append(r, toolchains(f.Toolchains)...)
	return r
}

// status judges the core's own state.
func status(s client.AdminStatus, asked, answered time.Time) Report {
	var r Report
	// The core's clock against the client's, at the middle of the request.
	if !s.Time.IsZero() && !asked.IsZero() {
		mid := asked.Add(answered.Sub(asked) / 2)
		skew := s.Time.Sub(mid)
		slack := answered.Sub(asked) / 2
		if abs(skew) > MaxClockSkew+slack {
			r.add("clock", Warn, "synchronise the clocks (NTP: systemd-timesyncd or chrony) on the core and this machine",
				"the core's clock is %s %s this machine's", abs(skew).Round(time.Second), map[bool]string{true: "ahead of", false: "behind"}[skew > 0])
		} else {
			r.add("clock", OK, "", "within %s of this machine's", MaxClockSkew)
		}
	}
	switch {
	case s.DiskTotalBytes <= 0:
		r.add("disk", Skip, "", "the core cannot tell its disk space")
	case float64(s.DiskFreeBytes) < LowDiskFraction*float64(s.DiskTotalBytes):
		r.add("disk", Warn, "free space on the core's data directory, or delete functions and old activation records (--activation-max-bytes)",
			"%s free of %s", membudget.FormatSize(s.DiskFreeBytes), membudget.FormatSize(s.DiskTotalBytes))
	default:
		r.add("disk", OK, "", "%s free of %s", membudget.FormatSize(s.DiskFreeBytes), membudget.FormatSize(s.DiskTotalBytes))
	}
	switch age := time.Duration(s.QueueOldestAgeSeconds * float64(time.Second)); {
	case s.QueueLength < 0:
		r.add("async queue", Skip, "", "the core runs no asynchronous queue")
	case s.QueueLength > 0 && age > OldQueue:
		r.add("async queue", Warn, "check that a worker can run the queued functions (their tags, capacity): 'edgefaas node list', 'edgefaas activation list --status queued'",
			"%d calls waiting, the oldest for %s", s.QueueLength, age.Round(time.Second))
	default:
		r.add("async queue", OK, "", "%d calls waiting", s.QueueLength)
	}
	switch s.NodeJoinMode {
	case "any", "cookie":
		r.add("node joins", Warn, "once every worker has joined with a token ('edgefaas node token create'), start the core without --node-join any (EDGEFAAS_NODE_JOIN): then revoking a worker shuts it out",
			"%q: any node holding the cluster cookie may join", s.NodeJoinMode)
	default:
		r.add("node joins", OK, "", "%q", s.NodeJoinMode)
	}
	return r
}

// nodes judges the workers the core lists.
func nodes(core string, ns []client.Node, err error, now time.Time) Report {
	var r Report
	if err != nil {
		r.add("workers", Skip, "", "not readable with this token: %v", err)
		return r
	}
	if len(ns) == 0 {
		r.add("workers", Fail, "join one: 'edgefaas node token create' on the core's machine, then 'edgefaas worker --join-token TOKEN --join-api URL'",
			"no worker has joined: no function can run")
		return r
	}
	r.add("workers", OK, "", "%d joined", len(ns))
	for _, n := range ns {
		if err := version.Compatible(core, n.Version); err != nil && n.Version != "" {
			r.add("worker "+n.Name, Warn, "run the core's version on the worker", "version %s: %v", n.Version, err)
			continue
		}
		if skew := time.Duration(n.ClockSkewMS) * time.Millisecond; abs(skew) > MaxClockSkew {
			r.add("worker "+n.Name, Warn, "synchronise the clocks (NTP: systemd-timesyncd or chrony) on the worker and the core",
				"its clock is %s %s the core's", abs(skew).Round(time.Second), map[bool]string{true: "ahead of", false: "behind"}[skew > 0])
			continue
		}
		if age := now.Sub(n.LastReport); !n.LastReport.IsZero() && age > StaleReport {
			r.add("worker "+n.Name, Warn, "check the worker's process and its link to the core",
				"last report %s ago", age.Round(time.Second))
			continue
		}
		r.add("worker "+n.Name, OK, "", "version %s, %s/%s, load %.2f", orDash(n.Version), n.OS, n.Arch, n.Load)
	}
	return r
}

// toolchains reports which languages `fn build` can build here.
func toolchains(ts []Toolchain) Report {
	var r Report
	for _, t := range ts {
		switch {
		case t.Found == "":
			r = append(r, Finding{Check: "toolchain " + t.Name, Level: Skip, Detail: "not found: 'fn build' cannot build " + t.Name + " functions here", Fix: t.Install})
		case t.Problem != "":
			r = append(r, Finding{Check: "toolchain " + t.Name, Level: Warn, Detail: t.Found + ": " + t.Problem, Fix: t.Install})
		default:
			r = append(r, Finding{Check: "toolchain " + t.Name, Level: OK, Detail: t.Found})
		}
	}
	return r
}

// isTLS reports whether err is a failed TLS handshake or verification.
func isTLS(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "x509:") || strings.Contains(s, "tls:") || strings.Contains(s, "certificate")
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
