package storage

import (
	"sync"
	"sync/atomic"
)

// readCache holds copies of small values. gen counts commits: a value
// read from pebble is kept only if no commit happened since the read
// began, so a commit can never be hidden by a stale copy. Lookups take no
// lock: the current generation is an immutable snapshot pointer whose maps
// are sync.Maps (read-mostly: filled once per key, then only read), and a
// commit replaces the whole snapshot.
type readCache struct {
	cur atomic.Pointer[cacheGen]
}

// cacheGen is one generation of the cache: what was read since a commit.
type cacheGen struct {
	gen     uint64
	values  sync.Map     // string → []byte; nil value: known absent
	decoded sync.Map     // string → decoded Function and Subject records
	entries atomic.Int64 // kept values + decoded, bounded by readCacheEntries
}

const (
	readCacheEntries  = 16384
	readCacheMaxValue = 16 << 10
)

func (c *readCache) current() *cacheGen {
	if g := c.cur.Load(); g != nil {
		return g
	}
	c.cur.CompareAndSwap(nil, &cacheGen{})
	return c.cur.Load()
}

func (c *readCache) lookup(key []byte) (v []byte, found bool, gen uint64) {
	g := c.current()
	x, found := g.values.Load(string(key))
	if found {
		v = x.([]byte)
	}
	return v, found, g.gen
}

func (c *readCache) keep(key, v []byte, gen uint64) {
	if len(v) > readCacheMaxValue {
		return
	}
	g := c.current()
	// A commit since the read began replaced the generation: the value may
	// be stale, so it is not kept. A commit racing this store replaces g,
	// which is then dropped with whatever it holds.
	if g.gen != gen || g.entries.Add(1) > readCacheEntries {
		return
	}
	g.values.Store(string(key), v)
}

// invalidate runs after every commit.
func (c *readCache) invalidate() {
	for {
		old := c.current()
		if c.cur.CompareAndSwap(old, &cacheGen{gen: old.gen + 1}) {
			return
		}
	}
}

func (c *readCache) lookupDecoded(key []byte) (v any, found bool, gen uint64) {
	g := c.current()
	v, found = g.decoded.Load(string(key))
	return v, found, g.gen
}

func (c *readCache) keepDecoded(key []byte, v any, gen uint64) {
	g := c.current()
	if g.gen != gen || g.entries.Add(1) > readCacheEntries {
		return
	}
	g.decoded.Store(string(key), v)
}
