package functionmodel

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/anishathalye/porcupine"
)

// History records the operations of concurrent clients. A call and an
// answer are ticks of one clock, taken before the call is sent and after
// its answer came: porcupine needs only their order.
type History struct {
	clock atomic.Int64
	mu    sync.Mutex
	ops   []porcupine.Operation
}

// Call returns the tick of a call about to be sent.
func (h *History) Call() int64 { return h.clock.Add(1) }

// Add records client's operation in, called at call, whose answer out
// came now. An Unknown answer may take effect at any time after its call,
// however late: it returns at the end of time.
func (h *History) Add(client int, in Input, call int64, out Output) {
	ret := h.clock.Add(1)
	if out.Result == Unknown {
		ret = math.MaxInt64
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// Results counts the recorded operations by answer; writes that took
// effect are counted as "op ok" too.
func (h *History) Results() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	counts := map[string]int{}
	for _, o := range h.ops {
		out := o.Output.(Output)
		counts[out.Result]++
		if out.Result == OK {
			counts[o.Input.(Input).Op+" ok"]++
		}
	}
	return counts
}

// Check returns nil if the history is linearizable, else an error that
// lists, for each name whose operations no order explains, its
// operations in the order of their calls and how far the longest order
// found got.
func (h *History) Check() error {
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	model := Model.ToModel()
	var bad []string
	for _, part := range model.Partition(ops) {
		res, info := porcupine.CheckOperationsVerbose(model, part, 0)
		if res == porcupine.Ok {
			continue
		}
		bad = append(bad, describe(part, info))
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("the history of %d operations is not linearizable:\n%s", len(ops), strings.Join(bad, "\n"))
}

// describe lists a partition's operations by call, and the longest
// partial linearization the check found.
func describe(part []porcupine.Operation, info porcupine.LinearizationInfo) string {
	sorted := append([]porcupine.Operation(nil), part...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].Call < sorted[b].Call })
	var b strings.Builder
	fmt.Fprintf(&b, "function %q, %d operations:\n", part[0].Input.(Input).Name, len(part))
	for _, o := range sorted {
		ret := fmt.Sprint(o.Return)
		if o.Return == math.MaxInt64 {
			ret = "∞"
		}
		fmt.Fprintf(&b, "  client %d [%d, %s] %+v → %+v\n", o.ClientId, o.Call, ret, o.Input, o.Output)
	}
	var longest []porcupine.Operation
	for _, parts := range info.PartialLinearizationsOperations() {
		for _, lin := range parts {
			if len(lin) > len(longest) {
				longest = lin
			}
		}
	}
	fmt.Fprintf(&b, "  the longest order found explains %d of them, ending:", len(longest))
	for _, o := range longest[max(0, len(longest)-5):] {
		fmt.Fprintf(&b, "\n    [%d] %+v → %+v", o.Call, o.Input, o.Output)
	}
	return b.String()
}
