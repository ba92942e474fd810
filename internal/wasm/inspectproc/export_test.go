package inspectproc

// LimitCPU lets the external test's child apply the CPU bound and spin.
var LimitCPU = limitCPU

// SetNoCgroup makes every child watched by the watchdog, not bound by a
// cgroup, and returns the previous setting.
func SetNoCgroup(v bool) bool { old := noCgroup; noCgroup = v; return old }

// CgroupParent is where children's cgroups are made ("" none), found
// once.
func CgroupParent() string { cgOnce.Do(findParent); return cgParent }

// RemoveStale runs the stale cgroups' removal again.
var RemoveStale = removeStale
