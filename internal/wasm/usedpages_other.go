//go:build !linux

package wasm

import "errors"

// usedPages: no page map to read here; every page is written.
func usedPages([]byte) ([]bool, error) { return nil, errors.ErrUnsupported }
