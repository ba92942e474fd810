package inspectproc

// LimitCPU lets the external test's child apply the CPU bound and spin.
var LimitCPU = limitCPU
