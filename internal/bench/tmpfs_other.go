//go:build !linux

package bench

import "errors"

// mountTmpfs needs Linux.
func mountTmpfs(string, int64) error { return errors.New("a tmpfs needs Linux") }

func unmount(string) {}
