package nodes

import "github.com/ergo-services/ergo/node"

// The ergo that edgefaas builds with carries its own patches
// (patches/github.com/ergo-services/ergo@v1.999.224/). Referring to what
// they add makes a build against the pristine module fail here, at compile
// time, instead of at node start on a 32-bit ARM board ("unaligned 64-bit
// atomic operation"): run `make deps`.
var _ = node.EdgefaasAlignedAtomics
