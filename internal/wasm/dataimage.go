package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/edgefaas/edgefaas/internal/syncfile"
)

// dataImage is a module's linear memory as its active data segments leave
// it, in an unlinked file. The engine compiles the module without its data
// section (splitData) and each instance's memory starts as a private
// copy-on-write mapping of the image (mapping.mapImage), or, where the
// kernel refuses the mapping, as a copy read from it. The pages an
// instance only reads (a Go guest's read-only data, type information and
// function tables: most of its data) stay one clean file-backed copy
// shared by every instance, which the kernel may drop and read back; only
// the pages an instance writes become its own; and wazero keeps no
// decoded copy of the segments for as long as the module is loaded.
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

// splitData returns code without its data section and the section's
// segments, or code itself and nil when the module's data is not all an
// image can hold: a segment that is passive (memory.init may copy it at
// any time) or at a non-constant offset, a data count section, a memory
// that is imported or shared, a segment past the memory's declared
// minimum (instantiating must fail as before), or less than minImageBytes
// of data. Without its data section the module is the same to its code:
// no instruction names an active segment once it has been applied.
func splitData(code []byte) (rest []byte, segs []segment) {
	if len(code) < 8 || !bytes.Equal(code[:4], []byte("\x00asm")) {
		return code, nil
	}
	r := &reader{b: code[8:]}
	var start, end int // the data section, id byte to end
	var minBytes uint64
	memories := 0
	for r.more() {
		at := len(code) - len(r.b)
		id := r.byte()
		body := r.take(r.u32())
		if r.err != nil {
			return code, nil
		}
		switch id {
		case 5: // memories: one, not shared
			m := &reader{b: body}
			memories = int(m.u32())
			flags := m.u32()
			minBytes = uint64(m.u32()) * PageSize
			if m.err != nil || flags&^1 != 0 {
				return code, nil
			}
		case 11:
			start, end = at, len(code)-len(r.b)
		case 12: // a data count section: segments may be named
			return code, nil
		}
	}
	if start == 0 || memories != 1 {
		return code, nil
	}
	segs = activeSegments(code)
	var data uint64
	for _, s := range segs {
		if uint64(s.offset)+uint64(len(s.init)) > minBytes {
			return code, nil
		}
		data += uint64(len(s.init))
	}
	cnt := &reader{b: code[start+1:]}
	cnt.u32()
	if data < minImageBytes || cnt.u32() != uint32(len(segs)) {
		return code, nil // little data, or a passive segment
	}
	rest = make([]byte, 0, len(code)-(end-start))
	rest = append(rest, code[:start]...)
	return append(rest, code[end:]...), segs
}

// newDataImage writes the memory segs leave to an unlinked file in dir
// (the OS's temporary folder if empty), paced and synced, so its pages
// are clean.
func newDataImage(dir string, segs []segment) (*dataImage, error) {
	var end uint64
	for _, s := range segs {
		end = max(end, uint64(s.offset)+uint64(len(s.init)))
	}
	size := (end + imagePage - 1) &^ (imagePage - 1)
	img := make([]byte, size)
	for _, s := range segs {
		copy(img[s.offset:], s.init)
	}
	// A unique name, written paced (syncfile.WritePaced: it is written as
	// a compile's working set peaks), opened, and unlinked.
	tmp, err := os.CreateTemp(dir, ".data-image-*")
	if err != nil {
		return nil, fmt.Errorf("data image: %w", err)
	}
	name := tmp.Name()
	tmp.Close()
	defer os.Remove(name)
	if err := syncfile.WritePaced(name, img, 0o600); err != nil {
		return nil, fmt.Errorf("data image: %w", err)
	}
	f, err := os.Open(name)
	if err != nil {
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

// readInto copies the image's bytes from offset from on to the same place
// in mem, as far as mem reaches: a memory smaller than its image reads
// the rest as it grows.
func (d *dataImage) readInto(mem []byte, from uint64) error {
	end := min(d.size, uint64(len(mem)))
	if from >= end {
		return nil
	}
	_, err := d.f.ReadAt(mem[from:end], int64(from))
	return err
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
