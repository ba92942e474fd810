package inspectproc

// LimitCPU lets the external test's child apply the CPU bound and spin.
var LimitCPU = limitCPU

// SetNoCgroup makes every child watched by the watchdog, not bound by a
// cgroup, and returns the previous setting.
func SetNoCgroup(v bool) bool { old := noCgroup; noCgroup = v; return old }
