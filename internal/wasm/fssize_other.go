//go:build !(linux || darwin || freebsd)

package wasm

import "errors"

// fsSize is not known here: the compile cache takes its default bound.
func fsSize(string) (int64, error) { return 0, errors.New("file system size unknown on this platform") }
