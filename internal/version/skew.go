package version

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrSkew is wrapped by Compatible's refusals.
var ErrSkew = errors.New("version skew")

// release matches a release version, v1.2.3 or v1.2.3-rc.1, with its
// major and minor; a leading "v" is optional (a stamp may omit it).
var release = regexp.MustCompile(`^v?(\d+)\.(\d+)\.\d+(?:-[0-9A-Za-z.-]+)?$`)

// pseudo matches the tail of a Go pseudo-version (a timestamp and a
// commit prefix), which names a commit, not a release.
var pseudo = regexp.MustCompile(`\d{14}-[0-9a-f]{12}$`)

// Release returns v's major.minor and whether v is a release version: not
// Dev, not a Go pseudo-version, no build suffix such as +dirty.
func Release(v string) (majorMinor string, ok bool) {
	m := release.FindStringSubmatch(v)
	if m == nil || pseudo.MatchString(v) {
		return "", false
	}
	return m[1] + "." + m[2], true
}

// Compatible says whether a worker built as worker may join a core built
// as core (docs/RATIONALE.md, "Why refuse a worker of another version?"): equal versions
// always may; two releases may when they share major.minor (a patch
// release changes no message between the nodes); anything else (a
// development build, a pseudo-version, a dirty tree, another minor) is
// refused, with an error naming both versions.
func Compatible(core, worker string) error {
	if core == worker {
		return nil
	}
	cm, cok := Release(core)
	wm, wok := Release(worker)
	switch {
	case cok && wok && cm == wm:
		return nil
	case cok && wok:
		return fmt.Errorf("%w: core %s, worker %s: releases must share major.minor (run a v%s.x worker)", ErrSkew, core, worker, strings.TrimPrefix(cm, "v"))
	default:
		return fmt.Errorf("%w: core %s, worker %s: a development build joins only a node of the very same build (run the core's binary on the worker)", ErrSkew, core, worker)
	}
}
