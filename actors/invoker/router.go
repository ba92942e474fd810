package invoker

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/actors/wire"
)

// RouterName is the registered name of the i-th invoker process. The
// invocation path asks for one per request: the first names are made once.
func RouterName(i int) string {
	if i >= 0 && i < len(routerNames) {
		return routerNames[i]
	}
	return "invoker_" + strconv.Itoa(i)
}

var routerNames = func() (names [64]string) {
	for i := range names {
		names[i] = "invoker_" + strconv.Itoa(i)
	}
	return names
}()

// Router is an invoker process: workers answer to it, and it hands each
// answer to the goroutine that waits for it.
type Router struct {
	gen.Server
	Pending *Pending
	Log     *slog.Logger
}

// HandleInfo routes wire.Result.
func (r *Router) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	switch m := msg.(type) {
	case wire.Result:
		r.Pending.Deliver(m)
	default:
		r.Log.Warn("invoker: unexpected message", "type", fmt.Sprintf("%T", msg))
	}
	return gen.ServerStatusOK
}
