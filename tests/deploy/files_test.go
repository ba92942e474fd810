package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// exportedMetrics starts a real core, makes an invocation (so the request
// metrics have the invocation route) and returns the metric names its
// /metrics serves, histogram series (_bucket, _sum, _count) included.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	// A single box, so that one real invocation makes the per-function
	// series (activation metrics) exist too.
	core := testcluster.StartCore(t, "--with-worker")
	cl := core.Client(core.Guest)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl.Invoke(ctx, "_", "missing", nil) // 404: the route's series exist
	if _, err := cl.CreateFunction(ctx, "_", client.Upload{Name: "echo", Code: testmodules.Read(t, "test/echo")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Invoke(ctx, "_", "echo", nil); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, core.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+core.Guest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s %s", resp.Status, b)
	}
	names := map[string]bool{"up": true} // Prometheus's own, per target
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	if !names["edgefaas_http_requests_total"] {
		t.Fatalf("the core's /metrics has no edgefaas_http_requests_total: %v", names)
	}
	return names
}

var (
	// metricRE finds metric names in PromQL: identifiers followed by { or [
	// or standing alone, minus functions, keywords and label names.
	metricRE   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlWord = map[string]bool{
		"sum": true, "by": true, "without": true, "rate": true, "irate": true, "increase": true, "histogram_quantile": true,
		"clamp_min": true, "clamp_max": true, "absent": true, "or": true, "and": true, "unless": true, "on": true,
		"ignoring": true, "group_left": true, "group_right": true, "max": true, "min": true, "avg": true, "count": true,
		"le": true, "job": true, "instance": true, "code": true, "route": true, "method": true, "bool": true, "offset": true,
		"label_values": true, "e": true, "topk": true, "module": true, "function": true, "status": true,
		"type": true, "result": true,
	}
)

// queryMetrics returns the metric names an expression reads.
func queryMetrics(expr string) []string {
	// Drop label matchers' values, durations and Grafana variables.
	expr = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(expr, `""`)
	expr = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(expr, "")
	expr = regexp.MustCompile(`\$\w+`).ReplaceAllString(expr, "")
	var out []string
	for _, w := range metricRE.FindAllString(expr, -1) {
		if !promqlWord[w] && !regexp.MustCompile(`^[0-9]`).MatchString(w) {
			out = append(out, w)
		}
	}
	return out
}

func balanced(expr string) bool {
	n := 0
	for _, r := range regexp.MustCompile(`"[^"]*"`).ReplaceAllString(expr, "") {
		switch r {
		case '(', '{', '[':
			n++
		case ')', '}', ']':
			n--
		}
		if n < 0 {
			return false
		}
	}
	return n == 0
}

// TestDashboardAndAlerts: the Grafana dashboard is valid JSON whose every
// query reads metrics a real core exports; the alert rules parse strictly,
// have durations and descriptions, and read exported metrics too.
func TestDashboardAndAlerts(t *testing.T) {
	exported := exportedMetrics(t)
	checkExpr := func(where, expr string) {
		if strings.TrimSpace(expr) == "" || !balanced(expr) {
			t.Errorf("%s: empty or unbalanced expression %q", where, expr)
		}
		ms := queryMetrics(expr)
		if len(ms) == 0 {
			t.Errorf("%s: %q reads no metric", where, expr)
		}
		for _, m := range ms {
			if !exported[m] {
				t.Errorf("%s: metric %s is not exported by the core", where, m)
			}
		}
	}

	b, err := os.ReadFile(filepath.Join(deployDir(t), "grafana", "edgefaas-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int                      `json:"id"`
			Title   string                   `json:"title"`
			Type    string                   `json:"type"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard: no title, uid or panels")
	}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkExpr("panel "+p.Title, q.Expr)
		}
	}

	b, err = os.ReadFile(filepath.Join(deployDir(t), "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name     string `json:"name"`
			Interval string `json:"interval,omitempty"`
			Rules    []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &rules); err != nil {
		t.Fatalf("alert rules: %v", err)
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: want a severity label, a summary and a description", r.Alert)
			}
			checkExpr("alert "+r.Alert, r.Expr)
		}
	}
	for _, want := range []string{"EdgefaasCoreDown", "EdgefaasWorkersLost", "EdgefaasInvocationErrorRate"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// unit is a parsed systemd unit file: section -> key -> values.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[' && l[len(l)-1] == ']':
			section = l[1 : len(l)-1]
			u[section] = map[string][]string{}
		case section == "":
			t.Errorf("%s:%d: %q outside a section", path, i+1, l)
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || !regexp.MustCompile(`^[A-Za-z]+$`).MatchString(k) {
				t.Errorf("%s:%d: not KEY=VALUE: %q", path, i+1, l)
				continue
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// TestSystemdUnits: the units parse, run the right command as the
// dedicated user with the hardening options, read an env file whose every
// variable is a real flag; `systemd-analyze verify` accepts them where it
// is installed.
func TestSystemdUnits(t *testing.T) {
	dir := filepath.Join(deployDir(t), "systemd")
	for _, role := range []string{"core", "worker"} {
		path := filepath.Join(dir, "edgefaas-"+role+".service")
		u := parseUnit(t, path)
		for _, s := range []string{"Unit", "Service", "Install"} {
			if u[s] == nil {
				t.Fatalf("%s: no [%s] section", path, s)
			}
		}
		svc := u["Service"]
		want := map[string]string{
			"User": "edgefaas", "Group": "edgefaas", "ExecStart": "/usr/local/bin/edgefaas " + role,
			"EnvironmentFile": "/etc/edgefaas/" + role + ".env",
			"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
			"PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
			"ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
			"SystemCallArchitectures": "native", "UMask": "0077",
		}
		for k, v := range want {
			if got, ok := svc[k]; !ok || got[len(got)-1] != v {
				t.Errorf("%s: %s=%v, want %q", path, k, got, v)
			}
		}
		if !slices.Contains(svc["StateDirectory"], "edgefaas edgefaas/"+role) {
			t.Errorf("%s: StateDirectory should create /var/lib/edgefaas/%s", path, role)
		}
		if role == "worker" && svc["MemoryDenyWriteExecute"] != nil {
			t.Errorf("%s: MemoryDenyWriteExecute breaks wazero's compiler on the worker", path)
		}
		if u["Install"]["WantedBy"] == nil {
			t.Errorf("%s: no WantedBy", path)
		}
		// The env file: real flags only, and the data dir is the state dir.
		flags := commandFlags(t, role)
		vars := envFileVars(t, filepath.Join(dir, role+".env"))
		for k := range vars {
			if !flags[k] {
				t.Errorf("%s.env: %s is no flag of `edgefaas %s`", role, k, role)
			}
		}
		if vars["EDGEFAAS_DATA_DIR"] != "/var/lib/edgefaas/"+role {
			t.Errorf("%s.env: EDGEFAAS_DATA_DIR=%q, want the unit's state directory /var/lib/edgefaas/%s", role, vars["EDGEFAAS_DATA_DIR"], role)
		}
	}

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not installed: units checked by the parser only")
		return
	}
	// verify needs the ExecStart binary and the env files: rewrite the
	// paths to a temporary copy.
	tmp := t.TempDir()
	bin := testcluster.Binary(t)
	for _, role := range []string{"core", "worker"} {
		b, _ := os.ReadFile(filepath.Join(dir, "edgefaas-"+role+".service"))
		s := strings.ReplaceAll(string(b), "/usr/local/bin/edgefaas", bin)
		s = strings.ReplaceAll(s, "/etc/edgefaas/"+role+".env", filepath.Join(dir, role+".env"))
		os.WriteFile(filepath.Join(tmp, "edgefaas-"+role+".service"), []byte(s), 0o644)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no",
		filepath.Join(tmp, "edgefaas-core.service"), filepath.Join(tmp, "edgefaas-worker.service")).CombinedOutput()
	var problems []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// Without a running systemd (a container, CI) verify also reports
		// on the host's own units and its bus; keep the lines about ours.
		if strings.Contains(l, "edgefaas-") {
			problems = append(problems, l)
		}
	}
	if len(problems) > 0 {
		t.Errorf("systemd-analyze verify (%v):\n%s", err, strings.Join(problems, "\n"))
	} else {
		t.Logf("systemd-analyze verify: no complaint about the units (exit %v)", err)
	}
}

// TestInstallScript runs deploy/install.sh into a DESTDIR and checks what
// it placed: binary, units, env files with this machine's arch as tag.
func TestInstallScript(t *testing.T) {
	dest := t.TempDir()
	cookie := filepath.Join(t.TempDir(), "cookie")
	os.WriteFile(cookie, []byte("s3cret\n"), 0o600)
	cmd := exec.Command("bash", filepath.Join(deployDir(t), "install.sh"), "core", "worker",
		"--binary", testcluster.Binary(t), "--join", "10.1.2.3:4001", "--cookie-file", cookie, "--node-addr", "10.1.2.4:0")
	cmd.Env = append(os.Environ(), "DESTDIR="+dest)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	for _, f := range []string{"usr/local/bin/edgefaas", "etc/systemd/system/edgefaas-core.service",
		"etc/systemd/system/edgefaas-worker.service", "etc/edgefaas/core.env", "etc/edgefaas/worker.env", "etc/edgefaas/cookie"} {
		st, err := os.Stat(filepath.Join(dest, f))
		if err != nil {
			t.Errorf("install.sh did not place %s: %v", f, err)
			continue
		}
		if strings.HasSuffix(f, "cookie") && st.Mode().Perm()&0o007 != 0 {
			t.Errorf("%s is readable by others: %v", f, st.Mode())
		}
	}
	w := envFileVars(t, filepath.Join(dest, "etc/edgefaas/worker.env"))
	if w["EDGEFAAS_JOIN"] != "10.1.2.3:4001" || w["EDGEFAAS_NODE_ADDR"] != "10.1.2.4:0" || w["EDGEFAAS_TAG"] != runtime.GOARCH {
		t.Errorf("worker.env: JOIN=%q NODE_ADDR=%q TAG=%q; want 10.1.2.3:4001, 10.1.2.4:0, %s", w["EDGEFAAS_JOIN"], w["EDGEFAAS_NODE_ADDR"], w["EDGEFAAS_TAG"], runtime.GOARCH)
	}
	// Idempotent: a second run keeps the edited settings.
	env := filepath.Join(dest, "etc/edgefaas/worker.env")
	b, _ := os.ReadFile(env)
	os.WriteFile(env, append(b, []byte("EDGEFAAS_MAX_QUEUE=7\n")...), 0o640)
	cmd = exec.Command("bash", filepath.Join(deployDir(t), "install.sh"), "worker", "--binary", testcluster.Binary(t))
	cmd.Env = append(os.Environ(), "DESTDIR="+dest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install.sh again: %v\n%s", err, out)
	}
	if w := envFileVars(t, env); w["EDGEFAAS_MAX_QUEUE"] != "7" || w["EDGEFAAS_JOIN"] != "10.1.2.3:4001" {
		t.Errorf("a second install.sh overwrote worker.env: %v", w)
	}
}
