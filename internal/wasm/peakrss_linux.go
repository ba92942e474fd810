package wasm

import (
	"os"
	"syscall"
)

// peakRSS is an exited child's peak resident size, bytes (Linux reports
// it in KiB).
func peakRSS(st *os.ProcessState) int64 {
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		return int64(ru.Maxrss) << 10
	}
	return 0
}
