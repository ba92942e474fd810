package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// debVersion turns a release version (git describe: v1.2.3,
// v1.2.3-4-gabc1234-dirty, or a bare commit abc1234) into a Debian
// version that sorts after the release it follows: 1.2.3,
// 1.2.3+4.gabc1234.dirty, 0+abc1234.
func debVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	if v == "" || v[0] < '0' || v[0] > '9' {
		v = "0+" + v
	} else if i := strings.IndexByte(v, '-'); i >= 0 {
		v = v[:i] + "+" + v[i+1:]
	}
	v = strings.ReplaceAll(v, "-", ".")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', strings.ContainsRune(".+~", r):
			return r
		}
		return '.'
	}, v)
}

// sourceDate is the time stamped on everything the artifacts hold:
// SOURCE_DATE_EPOCH when set (scripts/dist.sh sets the commit's time, so
// that two builds of a commit are the same bytes), else now.
func sourceDate() time.Time {
	if s, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		return time.Unix(s, 0).UTC()
	}
	return time.Now().UTC().Truncate(time.Second)
}
