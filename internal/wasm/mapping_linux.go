package wasm

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"
)

// mapping is address space reserved with mmap(PROT_NONE, MAP_NORESERVE):
// it costs no memory until committed (mprotect to read-write), and the
// pages a guest touched return to the OS at munmap.
type mapping struct {
	mem       []byte // the whole reservation
	committed uint64
}

func newMapping(n uint64) (mapping, error) {
	if n == 0 {
		return mapping{}, nil
	}
	if n != uint64(int(n)) {
		return mapping{}, fmt.Errorf("mmap %d bytes: too large for this platform", n)
	}
	mem, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		return mapping{}, fmt.Errorf("mmap %d bytes: %w", n, err)
	}
	return mapping{mem: mem}, nil
}

func (m *mapping) len() uint64 { return uint64(len(m.mem)) }

// commit makes the first n bytes usable (n ≤ len; never shrinks).
func (m *mapping) commit(n uint64) error {
	if n <= m.committed {
		return nil
	}
	// mprotect works on whole pages: round the end up to the OS page size
	// (wasm pages are 64 KiB, a multiple of every Linux page size).
	if err := syscall.Mprotect(m.mem[m.committed:n], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
		return fmt.Errorf("mprotect: %w", err)
	}
	m.committed = n
	return nil
}

func (m *mapping) bytes(n uint64) []byte { return m.mem[:n:n] }

func (m *mapping) free() {
	if m.mem != nil {
		syscall.Munmap(m.mem)
		m.mem, m.committed = nil, 0
	}
}

// mapImage maps the first img.size bytes of an uncommitted reservation
// from img's file, private and copy-on-write, readable and writable: they
// read as the file until the guest writes them. False if the reservation
// already holds committed memory or the kernel refuses.
func (m *mapping) mapImage(img *dataImage) bool {
	if img == nil || m.committed != 0 || img.size > m.len() {
		return false
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(m.mem)))
	_, _, errno := syscall.Syscall6(syscall.SYS_MMAP, addr, uintptr(img.size),
		syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_FIXED, img.f.Fd(), 0)
	runtime.KeepAlive(img.f)
	if errno != 0 {
		return false
	}
	m.committed = img.size
	return true
}
