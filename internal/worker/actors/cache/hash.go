package cache

import "errors"

// ErrBadHash means a hash from the wire is not a sha256 in lowercase hex:
// it is refused before it can become part of a file name (a hash such as
// "../../x" would otherwise name a file outside the code directory).
var ErrBadHash = errors.New("invalid code hash (want 64 lowercase hex digits)")

// ValidHash reports whether h is 64 lowercase hexadecimal digits, the only
// form wasm.Hash produces. Every hash a peer sends is checked with it
// before any file operation.
func ValidHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
