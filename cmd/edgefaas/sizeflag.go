package main

import (
	"fmt"

	"github.com/edgefaas/edgefaas/internal/membudget"
)

// sizeHelp describes the one grammar of every --memory flag
// (membudget.ParseSize).
const sizeHelp = "a size with a unit, e.g. 64MiB, 1.5GiB or 1G (K, M, G, T: powers of 1024, with or without i and B); a bare number is MiB"

// sizeValue is a --memory flag: a size as membudget.ParseSize reads it,
// checked when the flag (or its environment variable) is set.
type sizeValue struct {
	text  string
	bytes int64
	// wholeMiB refuses sizes that are not a whole number of MiB (a
	// function's memory is stored in MiB).
	wholeMiB bool
}

func (v *sizeValue) Set(s string) error {
	b, err := membudget.ParseSize(s)
	if err != nil {
		return err
	}
	if v.wholeMiB && b%membudget.MiB != 0 {
		return fmt.Errorf("%q is not a whole number of MiB", s)
	}
	v.text, v.bytes = s, b
	return nil
}

func (v *sizeValue) String() string { return v.text }

func (v *sizeValue) Type() string { return "size" }

// mib is the size in MiB.
func (v *sizeValue) mib() int64 { return v.bytes / membudget.MiB }
