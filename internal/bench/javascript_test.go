package bench

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repoRoot is the repository, two levels above this package.
func repoRoot(t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestNodeBaseline runs the Node.js baseline on the real example scripts
// and checks its answers, its error for bad input, and that it exits
// when the bench lets go of it.
func TestNodeBaseline(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skipf("no node here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := startNode(ctx, repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.stop()
	if !strings.HasPrefix(n.version, "v") {
		t.Errorf("node version %q", n.version)
	}
	tg := n.target()
	out, err := tg.invoke(ctx, jsSleep, []byte(`{"ms":1}`))
	if err != nil || string(out) != `{"data":{"slept":1}}` {
		t.Errorf("sleepjs: %s, %v", out, err)
	}
	out, err = tg.invoke(ctx, jsMatrix, []byte(`{"n":100,"seed":42}`))
	var got struct {
		Data struct {
			N        int     `json:"n"`
			Checksum float64 `json:"checksum"`
		} `json:"data"`
	}
	if err != nil || json.Unmarshal(out, &got) != nil || got.Data.N != 100 || got.Data.Checksum <= 0 {
		t.Errorf("matrixmultjs: %s, %v", out, err)
	}
	if out, err := tg.invoke(ctx, jsMatrix, []byte(`{"n":0}`)); err == nil || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "RangeError") {
		t.Errorf("matrixmultjs n=0: %s, %v", out, err)
	}
	if out, err := tg.invoke(ctx, "missing", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("an unknown function: %s, %v", out, err)
	}
	n.stop()
	select {
	case <-n.done:
	default:
		t.Error("the Node.js baseline still runs after stop")
	}
}

// TestNodeAbsent: without node the bench says why its Node.js rows are
// missing, in the error and in the report.
func TestNodeAbsent(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := startNode(context.Background(), repoRoot(t))
	if err == nil || !strings.Contains(err.Error(), "node (Node.js) is not installed") {
		t.Fatalf("startNode without node: %v", err)
	}
	js := &JavaScript{NodeSkipped: err.Error(), Sleep: []Summary{{Target: tEdgefaas, P50: 2500}}}
	md := js.markdown(Options{}.withDefaults())
	if !strings.Contains(md, "No Node.js rows: node (Node.js) is not installed") {
		t.Errorf("report lacks the reason:\n%s", md)
	}
	if strings.Contains(md, "− Node") {
		t.Errorf("report has a goal against a Node.js row it lacks:\n%s", md)
	}
}

// TestJavaScriptGoals: the goals' edges, from figures of a run.
func TestJavaScriptGoals(t *testing.T) {
	for _, c := range []struct {
		ratio, edgeP50, nodeP50 float64
		want                    []bool
	}{
		{0.5, 3000, 2000, []bool{true, true}},
		{0.49, 3001, 2000, []bool{false, false}},
		{0, 500, 2000, []bool{true}}, // no single box: only the sleep goal
	} {
		js := &JavaScript{HelloRatio: c.ratio, Sleep: []Summary{{Target: tEdgefaas, P50: c.edgeP50}, {Target: tNode, P50: c.nodeP50}}}
		g := js.goals()
		if len(g) != len(c.want) {
			t.Errorf("%+v: %d goals %+v, want %d", c, len(g), g, len(c.want))
			continue
		}
		for i, x := range g {
			if x.met != c.want[i] {
				t.Errorf("%+v: goal %q (%s) met=%v, want %v", c, x.figure, x.value, x.met, c.want[i])
			}
		}
	}
}
