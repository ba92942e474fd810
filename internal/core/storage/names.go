package storage

import (
	"fmt"
	"regexp"
)

// MaxNameLen is the longest module, function or subject name FunLess accepts.
const MaxNameLen = 160

var nameRE = regexp.MustCompile(`^[_a-zA-Z0-9]+$`)

// ValidName reports whether s can name a module, function or subject. The
// rule is FunLess's, and it also guarantees that names never contain the
// key separator "/".
func ValidName(s string) bool {
	return len(s) >= 1 && len(s) <= MaxNameLen && nameRE.MatchString(s)
}

// CheckName returns an ErrInvalidName error explaining what is wrong with s,
// or nil. kind ("module", "function", "subject") goes into the message.
func CheckName(kind, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s name is empty", ErrInvalidName, kind)
	case len(s) > MaxNameLen:
		return fmt.Errorf("%w: %s name is %d characters long, the limit is %d", ErrInvalidName, kind, len(s), MaxNameLen)
	case !nameRE.MatchString(s):
		return fmt.Errorf("%w: %s name %q may contain only letters, digits and _", ErrInvalidName, kind, s)
	}
	return nil
}
