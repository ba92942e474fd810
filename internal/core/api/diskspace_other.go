//go:build !(linux || darwin || freebsd)

package api

import "errors"

// diskSpace is unknown on this platform.
func diskSpace(string) (free, total int64, err error) {
	return 0, 0, errors.New("disk space is not known on this platform")
}
