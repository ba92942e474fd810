package wire_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/lib"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
)

// encode returns the ETF encoding of a message, for seeds.
func encode(t testing.TB, term etf.Term) []byte {
	b := lib.TakeBuffer()
	defer lib.ReleaseBuffer(b)
	if err := etf.Encode(term, b, etf.EncodeOptions{}); err != nil {
		t.Fatalf("encode %T: %v", term, err)
	}
	return append([]byte(nil), b.B...)
}

// FuzzDecode feeds arbitrary bytes to ergo's decoder with edgefaas's wire
// types registered, the way a node decodes what a peer sends: it must
// never panic, and a decoded wire message must survive the helpers the
// actors apply to it and re-encode. Seeds are in testdata/fuzz/FuzzDecode
// (every message type, encoded, plus corrupted copies).
func FuzzDecode(f *testing.F) {
	if err := wire.Register(); err != nil {
		f.Fatal(err)
	}
	for _, m := range seeds() {
		f.Add(encode(f, m))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

// checkDecode is the fuzz body: it reports whether data reached the
// assertion (decoded into a wire message and re-encoded), so a test can
// prove the seeds get that far.
func checkDecode(t *testing.T, data []byte) (reached bool) {
	if preallocates(data) {
		t.Skip("known upstream issue: ergo's etf.Decode allocates a declared length before reading it (see docs/reliability.md)")
	}
	term, _, err := etf.Decode(data, nil, etf.DecodeOptions{})
	if err != nil {
		return false
	}
	switch m := term.(type) {
	case wire.Invoke:
		_ = wire.SplitList(m.AllowedHosts)
	case wire.Report:
		_ = wire.SplitList(m.Tags)
		_ = wire.SplitList(m.Cached)
	case wire.Result, wire.Cache, wire.Cached, wire.Evict, wire.Join, wire.Refused:
	default:
		return false
	}
	b := lib.TakeBuffer()
	defer lib.ReleaseBuffer(b)
	if err := etf.Encode(term, b, etf.EncodeOptions{}); err != nil {
		t.Fatalf("decoded %T does not re-encode: %v", term, err)
	}
	return true
}

// TestSeedsReachAssertion: every message type, encoded, gets past the
// preallocation guard and is decoded into its wire type and re-encoded.
// (The guard once skipped every input containing the byte 'u', and every
// registered type name contains "github": the fuzz target never reached
// its assertion.)
func TestSeedsReachAssertion(t *testing.T) {
	if err := wire.Register(); err != nil {
		t.Fatal(err)
	}
	for _, m := range seeds() {
		data := encode(t, m)
		if preallocates(data) {
			t.Errorf("%T: the guard skips a valid message", m)
			continue
		}
		t.Run(fmt.Sprintf("%T", m), func(t *testing.T) {
			if !checkDecode(t, data) {
				t.Errorf("%T does not decode into its wire type", m)
			}
		})
	}
}

// TestGuardCatchesBombs: the guard still refuses the declared-length bombs
// it exists for, wherever they sit in a message.
func TestGuardCatchesBombs(t *testing.T) {
	for name, data := range map[string][]byte{
		"list":       {'l', 0xff, 0xff, 0xff, 0xff, 'j'},
		"binary":     {'m', 0xff, 0xff, 0xff, 0xfc},
		"bit binary": {'M', 0xff, 0xff, 0xff, 0xff, 8},
		"tuple":      {'i', 0xff, 0xff, 0xff, 0xff},
		"large big":  {'o', 0xff, 0xff, 0xff, 0xff, 0},
		"fun":        append(append([]byte{'p'}, make([]byte, 25)...), 0xff, 0xff, 0xff, 0xff, 0, 0, 0),
		"nested":     {'h', 2, 'a', 1, 'l', 0x10, 0, 0, 0, 'j'},
		"in a map":   {'t', 0, 0, 0, 1, 'a', 1, 'M', 0x7f, 0, 0, 0, 1},
	} {
		if !preallocates(data) {
			t.Errorf("%s: not caught", name)
		}
	}
}

// seeds are every wire message type, with values in every field kind.
func seeds() []etf.Term {
	return []etf.Term{
		wire.Invoke{ID: 1, Function: "m/f", Hash: "abc", Args: []byte(`{}`), AllowedHosts: wire.JoinList([]string{"a", "b"})},
		wire.Result{ID: 2, Status: wire.StatusBusy, Output: []byte("null"), Node: "worker@h"},
		wire.Cache{ID: 3, Hash: "h", Code: []byte{0, 'a', 's', 'm'}},
		wire.Cached{ID: 4, Node: "n", Hash: "h", Error: []byte("x")},
		wire.Evict{Hash: "h"},
		wire.Report{Node: "w", Arch: "amd64", OS: "linux", Tags: []byte("gpu"), Cached: []byte("a\nb"), Version: "v1.2.3"},
		wire.Join{Node: "core@h"},
		wire.Refused{Core: "core@h", Reason: []byte("version skew")},
	}
}

// preallocates reports whether ergo's etf.Decode (v1.999.224) might make a
// slice of a length the data declares but does not hold: a list, large
// tuple, (bit) binary, large big integer or fun's free variables (the
// decoder allocates before reading any element; BIT_BINARY_EXT has no
// check, BINARY_EXT's overflows at n ≥ 2^32-4), so a 9-byte message could
// exhaust memory. It walks the terms the way the decoder does, looking at
// tags only where a term starts; where the walk stops (an unknown tag,
// truncated data) the decoder stops too, with an error. Only an
// authenticated peer (cookie + TLS) can send a node such bytes.
func preallocates(data []byte) bool {
	w := etfWalk{data: data}
	w.term(0)
	return w.bomb
}

type etfWalk struct {
	data []byte
	i    int
	bomb bool // a declared length exceeds the bytes left
	stop bool // the decoder would fail here
}

func (w *etfWalk) left() int { return len(w.data) - w.i }

// take skips n bytes (stopping the walk when they are missing).
func (w *etfWalk) take(n int) []byte {
	if n < 0 || w.left() < n {
		w.stop = true
		return nil
	}
	b := w.data[w.i : w.i+n]
	w.i += n
	return b
}

func (w *etfWalk) u16() int {
	if b := w.take(2); b != nil {
		return int(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (w *etfWalk) u32() uint64 {
	if b := w.take(4); b != nil {
		return uint64(binary.BigEndian.Uint32(b))
	}
	return 0
}

// declared checks a declared element count against the bytes left.
func (w *etfWalk) declared(n uint64) {
	if n > uint64(w.left()) {
		w.bomb, w.stop = true, true
	}
}

func (w *etfWalk) terms(n uint64, depth int) {
	for k := uint64(0); k < n && !w.stop; k++ {
		w.term(depth + 1)
	}
}

func (w *etfWalk) term(depth int) {
	if w.stop {
		return
	}
	if depth > 10000 {
		w.bomb, w.stop = true, true // deeper than any message: do not risk it
		return
	}
	tag := w.take(1)
	if tag == nil {
		return
	}
	switch tag[0] {
	case 'v', 'd': // atoms, 2-byte length
		w.take(w.u16())
	case 'w', 's': // small atoms
		if b := w.take(1); b != nil {
			w.take(int(b[0]))
		}
	case 'k': // STRING_EXT
		w.take(w.u16())
	case 'R', 'a': // atom cache ref, small integer
		w.take(1)
	case 'b':
		w.take(4)
	case 'F':
		w.take(8)
	case 'c':
		w.take(31)
	case 'n': // SMALL_BIG_EXT
		if b := w.take(1); b != nil {
			w.take(1 + int(b[0]))
		}
	case 'o': // LARGE_BIG_EXT
		n := w.u32()
		w.declared(n)
		w.take(1 + int(n))
	case 'l': // LIST_EXT: n elements and a tail
		n := w.u32()
		w.declared(n)
		w.terms(n+1, depth)
	case 'h':
		if b := w.take(1); b != nil {
			w.terms(uint64(b[0]), depth)
		}
	case 'i': // LARGE_TUPLE_EXT
		n := w.u32()
		w.declared(n)
		w.terms(n, depth)
	case 't': // MAP_EXT
		n := w.u32()
		w.declared(n)
		w.terms(2*n, depth)
	case 'm': // BINARY_EXT
		n := w.u32()
		w.declared(n)
		w.take(int(n))
	case 'M': // BIT_BINARY_EXT
		n := w.u32()
		w.declared(n)
		w.take(1 + int(n))
	case 'j': // NIL_EXT
	case 'g': // PID_EXT: node atom, id, serial, creation
		w.term(depth + 1)
		w.take(9)
	case 'X': // NEW_PID_EXT
		w.term(depth + 1)
		w.take(12)
	case 'f': // PORT_EXT
		w.term(depth + 1)
		w.take(5)
	case 'Y': // NEW_PORT_EXT
		w.term(depth + 1)
		w.take(8)
	case 'r', 'Z': // NEW_REFERENCE_EXT, NEWER_REFERENCE_EXT
		n := w.u16()
		w.term(depth + 1)
		if tag[0] == 'r' {
			w.take(1 + 4*n)
		} else {
			w.take(4 + 4*n)
		}
	case 'q': // EXPORT_EXT: module, function, arity
		w.terms(3, depth)
	case 'p': // NEW_FUN_EXT: size, arity, uniq, index, free-variable count
		if w.left() < 32 { // the decoder refuses fewer
			w.stop = true
			return
		}
		hdr := w.take(29)
		n := uint64(binary.BigEndian.Uint32(hdr[25:29]))
		w.declared(n)
		w.terms(4+n, depth)
	default: // the decoder refuses the tag (FUN_EXT 'u' included)
		w.stop = true
	}
}
