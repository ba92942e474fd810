//go:build !linux

package wasm

// mapping falls back to the Go heap where mmap is not wired up (edgefaas
// runs on Linux; this keeps other platforms building for development).
type mapping struct{ mem []byte }

func newMapping(n uint64) (mapping, error) { return mapping{mem: make([]byte, 0, n)}, nil }

func (m *mapping) len() uint64 { return uint64(cap(m.mem)) }

func (m *mapping) commit(n uint64) error {
	if n > uint64(len(m.mem)) {
		m.mem = m.mem[:n]
	}
	return nil
}

func (m *mapping) bytes(n uint64) []byte { return m.mem[:n:n] }

func (m *mapping) free() { m.mem = nil }

// mapImage: no copy-on-write images here; wazero copies the data.
func (m *mapping) mapImage(*dataImage) bool { return false }
