package nodes

import (
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"
	"github.com/ergo-services/ergo/proto/dist"
)

// The ergo that edgefaas builds with carries its own patches
// (patches/github.com/ergo-services/ergo@v1.999.224/). Referring to what
// they add makes a build against the pristine module, or one missing a
// patch, fail here at compile time (run `make deps`) instead of at node
// start on a 32-bit ARM board ("unaligned 64-bit atomic operation", 0001)
// or as a timer wake-up per message on every link (0002), and so that
// runners and invokers take their messages on the routing goroutine (0003),
// and so that idle connections to the node port cannot keep peers out (0004),
// and so that a peer cannot send as another node's process (0005).
var (
	_ = node.EdgefaasAlignedAtomics
	_ = dist.EdgefaasFlushWhenIdle
	_ = gen.EdgefaasReceiver
	_ = node.EdgefaasConcurrentAccept
	_ = &gen.EdgefaasForeignSenders
)
