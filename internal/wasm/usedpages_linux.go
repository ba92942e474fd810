package wasm

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"
)

// usedPages reports, for each OS page of mem (a slice of this process's
// memory), whether it may hold anything but zeros: it is resident or
// swapped out, by /proc/self/pagemap. A page of a private anonymous
// mapping that is neither was never written, and reads as zeros. Reading
// such a page to find out would not do: on Linux a read fault there gives
// the process a page of its own (measured: a JavaScript instance's 1.1 MiB
// of untouched linear memory became resident when its template was
// written from it).
func usedPages(mem []byte) ([]bool, error) {
	ps := os.Getpagesize()
	if len(mem) == 0 {
		return nil, nil
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	if addr%uintptr(ps) != 0 {
		return nil, fmt.Errorf("pagemap: %#x is not page-aligned", addr)
	}
	n := (len(mem) + ps - 1) / ps
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return nil, fmt.Errorf("pagemap: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 8*n)
	if _, err := f.ReadAt(buf, int64(addr/uintptr(ps))*8); err != nil {
		return nil, fmt.Errorf("pagemap: %w", err)
	}
	const present, swapped = 1 << 63, 1 << 62
	used := make([]bool, n)
	for i := range used {
		used[i] = binary.LittleEndian.Uint64(buf[8*i:])&(present|swapped) != 0
	}
	return used, nil
}
