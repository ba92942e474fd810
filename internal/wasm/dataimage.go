package wasm

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
)

// dataImage is a module's linear memory as its active data segments leave
// it, in an unlinked file: each instance maps it copy-on-write as the start
// of its memory (mapping.mapImage), and wazero, finding the segments'
// bytes already there, writes none of them (wazero patch 0302). The pages
// an instance only reads (a Go guest's read-only data, type information
// and function tables: most of its segments) stay one clean file-backed
// copy shared by every instance, which the kernel may drop and read back;
// only the pages an instance writes become its own.
type dataImage struct {
	f    *os.File
	size uint64 // bytes, a multiple of imagePage
}

// imagePage is the granularity of an image: Linux's page size on the
// platforms edgefaas runs on, and a divisor of the wasm page (64 KiB).
const imagePage = 4096

// minImageBytes: below this, mapping a file costs more than copying.
const minImageBytes = 64 << 10

// segment is an active data segment of memory 0 at a constant offset.
type segment struct {
	offset uint32
	init   []byte
}

// newDataImage writes code's data image to an unlinked file in dir (the
// OS's temporary folder if empty) and syncs it, so its pages are clean.
// It returns nil, nil when the module has no image worth mapping: too
// little data, or a segment whose offset is not a constant (an imported
// global); the instance then starts as wazero makes it.
func newDataImage(dir string, code []byte) (*dataImage, error) {
	segs := activeSegments(code)
	if len(segs) == 0 {
		return nil, nil
	}
	var end, data uint64
	for _, s := range segs {
		end = max(end, uint64(s.offset)+uint64(len(s.init)))
		data += uint64(len(s.init))
	}
	if data < minImageBytes {
		return nil, nil
	}
	size := (end + imagePage - 1) &^ (imagePage - 1)
	img := make([]byte, size)
	for _, s := range segs {
		copy(img[s.offset:], s.init)
	}
	f, err := os.CreateTemp(dir, ".data-image-*")
	if err != nil {
		return nil, fmt.Errorf("data image: %w", err)
	}
	os.Remove(f.Name())
	if _, err := f.Write(img); err != nil {
		f.Close()
		return nil, fmt.Errorf("data image: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("data image: %w", err)
	}
	return &dataImage{f: f, size: size}, nil
}

// len is the image's size in bytes, 0 for no image.
func (d *dataImage) len() uint64 {
	if d == nil {
		return 0
	}
	return d.size
}

// close releases the file; instances that mapped it keep their mappings.
func (d *dataImage) close() {
	if d != nil {
		d.f.Close()
	}
}

// activeSegments reads the active data segments of memory 0 from a wasm
// binary already validated by wazero. A segment at a non-constant offset
// (an imported global) or anything unexpected means no image (nil).
func activeSegments(code []byte) []segment {
	if len(code) < 8 || !bytes.Equal(code[:4], []byte("\x00asm")) {
		return nil
	}
	r := &reader{b: code[8:]}
	for r.more() {
		id := r.byte()
		n := r.u32()
		body := r.take(n)
		if r.err != nil {
			return nil
		}
		if id != 11 { // the data section
			continue
		}
		s := &reader{b: body}
		count := s.u32()
		var segs []segment
		for i := uint32(0); i < count && s.err == nil; i++ {
			switch s.u32() {
			case 0:
			case 1: // passive: not in the image
				s.take(s.u32())
				continue
			case 2:
				if s.u32() != 0 {
					return nil
				}
			default:
				return nil
			}
			if s.byte() != 0x41 { // i32.const
				return nil
			}
			off := s.s32()
			if s.byte() != 0x0b { // end
				return nil
			}
			init := s.take(s.u32())
			if off < 0 {
				return nil
			}
			segs = append(segs, segment{offset: uint32(off), init: init})
		}
		if s.err != nil {
			return nil
		}
		return segs
	}
	return nil
}

// reader decodes the few wasm encodings activeSegments needs.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *reader) more() bool { return r.err == nil && len(r.b) > 0 }

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) take(n uint32) []byte {
	if r.err != nil || uint64(n) > uint64(len(r.b)) {
		r.err = errShort
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32() uint32 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n > 5 || v > 1<<32-1 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return uint32(v)
}

// s32 decodes a signed LEB128 of at most 5 bytes.
func (r *reader) s32() int32 {
	var v int64
	var shift uint
	for i := 0; i < 5; i++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return int32(v)
		}
	}
	r.err = errShort
	return 0
}

// mergeGap is the widest run of zeros between two data segments that
// coalesceData fills to make one segment of them: each segment wazero
// decodes costs the worker about 100 bytes of Go heap (its struct, its
// offset expression and its own allocation of bytes), more than the zeros.
const mergeGap = 64

// coalesceData returns code with its data segments merged where only a
// few zeros lie between them, or code itself when that would not be the
// same module. A Go guest's linker writes tens of thousands of small
// segments (36,660 for the Go hello, 906 KB in all), which wazero decodes
// and keeps for as long as the module is loaded; merged there are about
// ten. The memory an instance starts with is the same: a module's own
// memory starts zeroed, and the segments are applied in order only when
// they overlap, which is left alone. Only a module with no data count
// section is rewritten (without one, no instruction may name a segment),
// whose segments are all active in memory 0 at constant offsets.
func coalesceData(code []byte) []byte {
	if len(code) < 8 {
		return code
	}
	r := &reader{b: code[8:]}
	var start, end int // the data section, id byte to end
	for r.more() {
		at := len(code) - len(r.b)
		id := r.byte()
		n := r.u32()
		r.take(n)
		if r.err != nil {
			return code
		}
		switch id {
		case 12: // a data count section: segments may be named
			return code
		case 11:
			start, end = at, len(code)-len(r.b)
		}
	}
	if start == 0 {
		return code
	}
	segs := activeSegments(code)
	s := &reader{b: code[start+1:]}
	s.u32()
	if s.u32() != uint32(len(segs)) || len(segs) < 2 {
		return code // a passive segment, or nothing to merge
	}
	slices.SortStableFunc(segs, func(a, b segment) int { return cmp.Compare(a.offset, b.offset) })
	// groups[i] is the index in segs of the first segment of merged segment i.
	var groups []int
	for i := range segs {
		if i > 0 {
			prevEnd := uint64(segs[i-1].offset) + uint64(len(segs[i-1].init))
			if uint64(segs[i].offset) < prevEnd {
				return code // overlapping: their order matters
			}
			if uint64(segs[i].offset)-prevEnd <= mergeGap {
				continue
			}
		}
		groups = append(groups, i)
	}
	if len(groups) == len(segs) {
		return code
	}
	body := binary.AppendUvarint(nil, uint64(len(groups)))
	for g, first := range groups {
		last := len(segs)
		if g+1 < len(groups) {
			last = groups[g+1]
		}
		from := segs[first].offset
		size := uint64(segs[last-1].offset) + uint64(len(segs[last-1].init)) - uint64(from)
		body = append(body, 0, 0x41)
		body = appendS32(body, int32(from))
		body = append(body, 0x0b)
		body = binary.AppendUvarint(body, size)
		at := len(body)
		body = append(body, make([]byte, size)...)
		for _, sg := range segs[first:last] {
			copy(body[at+int(sg.offset-from):], sg.init)
		}
	}
	out := make([]byte, 0, len(code)-(end-start)+len(body)+6)
	out = append(out, code[:start]...)
	out = append(out, 11)
	out = binary.AppendUvarint(out, uint64(len(body)))
	out = append(out, body...)
	return append(out, code[end:]...)
}

// appendS32 appends v as a signed LEB128.
func appendS32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
