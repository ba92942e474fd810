//go:build !unix

package api

// nofile is unknown here: the API holds at most maxConns connections.
func nofile() uint64 { return 0 }
