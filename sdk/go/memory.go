package edgefaas

// The guest's heap policy. A Go guest's heap lives in its linear memory,
// which wasm can grow but never shrink, and a warm instance serves many
// calls: with Go's defaults (GOGC=100, no limit) the heap goal of even a
// tiny function is 4 MiB, and every page the heap has touched once stays
// resident for the instance's life. Built for wasip1, the SDK sets both
// at start, before the function's own init runs. A function that needs
// another policy sets it in its own init or in main (debug.SetGCPercent,
// debug.SetMemoryLimit), which run after the SDK's; GOGC or GOMEMLIMIT in
// the instance's environment, which the Go runtime has already applied,
// are left alone.
const (
	// GCPercent is the SDK's GOGC: a collection when the heap has grown a
	// quarter past what was live after the last one.
	GCPercent = 25
	// MemoryLimit is the SDK's soft limit on the Go runtime's memory
	// (GOMEMLIMIT), bytes: near it the collector works harder rather than
	// grow the heap.
	MemoryLimit = 16 << 20
)
