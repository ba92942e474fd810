package wasm

import (
	"math/bits"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// allocator gives one instance its linear memory, off the Go heap where
// the platform allows (see mapping): memory a guest commits is returned to
// the OS when the instance closes, not when the garbage collector next
// runs, and GOGC never doubles it. Every byte committed is first reserved
// from the instance's account, so a guest can never grow past what
// admission granted it.
type allocator struct {
	acct      *account
	committed *atomic.Int64 // the engine's total of committed linear memory
	mem       *linearMemory // the memory Allocate made, freed by instance.close
	image     *dataImage    // the module's data image, or nil
}

// Allocate implements experimental.MemoryAllocator.
func (a *allocator) Allocate(_, max uint64) experimental.LinearMemory {
	a.mem = &linearMemory{acct: a.acct, committed: a.committed, max: max, image: a.image}
	return a.mem
}

// linearMemory is one instance's memory: a reserved mapping whose first
// len(buf) bytes are committed (readable and writable).
type linearMemory struct {
	acct      *account
	committed *atomic.Int64 // nil: not counted
	max       uint64
	m         mapping
	buf       []byte
	image     *dataImage // the memory's first bytes: mapped, or read where mapping fails
	mapped    bool       // image is mapped: nothing of it is left to read
}

// reserveAll reports whether a mapping may reserve the memory's whole
// maximum up front (so it never moves). On 32-bit platforms the address
// space is too small for that (64 instances × 128 MiB is more than the
// 3 GiB a process has), so the mapping grows by doubling and moves.
const reserveAll = bits.UintSize == 64

// Reallocate implements experimental.LinearMemory: it commits size bytes,
// or returns nil (the guest's memory.grow fails) when the account cannot
// cover them or the OS refuses.
func (l *linearMemory) Reallocate(size uint64) []byte {
	if size > l.max {
		return nil
	}
	if l.acct != nil && !l.acct.grow(int64(size)) {
		return nil
	}
	first := len(l.buf) == 0 && l.m.len() == 0
	if size > l.m.len() {
		want := l.max
		if !reserveAll {
			want = min(l.max, max(size, 2*l.m.len(), 1<<20))
		}
		m, err := newMapping(want)
		if err != nil {
			return nil
		}
		if first && reserveAll {
			// An image may be larger than the memory's first size (a
			// JavaScript template): the rest is mapped, to be committed by
			// the growth that reaches it.
			l.mapped = m.mapImage(l.image)
		}
		if n := uint64(len(l.buf)); n > 0 {
			if err := m.commit(n); err != nil {
				m.free()
				return nil
			}
			copy(m.bytes(n), l.buf)
		}
		l.m.free()
		l.m = m
	}
	if err := l.m.commit(size); err != nil {
		return nil
	}
	if l.image != nil && !l.mapped && uint64(len(l.buf)) < l.image.len() {
		if err := l.image.readInto(l.m.bytes(size), uint64(len(l.buf))); err != nil {
			return nil
		}
	}
	l.count(int64(size) - int64(len(l.buf)))
	l.buf = l.m.bytes(size)
	return l.buf
}

// Free implements experimental.LinearMemory; wazero calls it when the
// instance closes. The account is released by the engine, which knows
// when the instance is gone for good.
func (l *linearMemory) Free() {
	l.count(-int64(len(l.buf)))
	l.m.free()
	l.m = mapping{}
	l.buf = nil
}

// count adds n bytes to the engine's committed total.
func (l *linearMemory) count(n int64) {
	if l.committed != nil {
		l.committed.Add(n)
	}
}
