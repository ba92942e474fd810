package cli_test

import (
	"regexp"
	"strings"
	"testing"
)

// finding matches one line of doctor's table: LEVEL, check, detail.
func finding(level, check, detail string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + level + ` +` + regexp.QuoteMeta(check) + `\S* +.*` + detail)
}

// TestDoctor runs `edgefaas doctor` against the real core with each kind
// of token: an admin's sees every check, a user's the ones it may read,
// and a wrong token fails, naming the token and its fix, with exit 1.
func TestDoctor(t *testing.T) {
	out := admin(t).ok("doctor")
	for _, re := range []*regexp.Regexp{
		finding("OK", "core", "answers, version "),
		finding("OK", "token", "accepted"),
		finding("OK", "role", "admin"),
		finding("OK", "clock", "within"),
		finding("(OK|WARN)", "disk", "free of"), // WARN on a nearly full build machine
		finding("OK", "async queue", "calls waiting"),
		finding("(OK|WARN)", "node joins", `"`),
		finding("OK", "workers", "1 joined"),
		finding("OK", "worker core@", "version "),
		finding("(OK|WARN|SKIP)", "toolchain go", ""),
	} {
		if !re.MatchString(out) {
			t.Errorf("doctor as admin: no line matching %s in:\n%s", re, out)
		}
	}

	out = guest(t).ok("doctor")
	if !finding("OK", "role", "user").MatchString(out) || finding("OK", "async queue", "").MatchString(out) {
		t.Errorf("doctor as a user: want role user and no admin checks:\n%s", out)
	}

	bad := newUser(t, "EDGEFAAS_HOST="+core.url, "EDGEFAAS_TOKEN=not-a-token")
	r := bad.run("doctor")
	if r.code == 0 || !finding("FAIL", "token", "refused").MatchString(r.stdout) || !strings.Contains(r.stdout, "fix: ") {
		t.Errorf("doctor with a wrong token: want exit non-zero and the token's failure with its fix:\n%s", r)
	}
}
