// Package version says what this build of edgefaas is: its version, the
// commit it was built from, and the Go toolchain and platform that built
// it. A release stamps the version with
//
//	-ldflags "-X github.com/edgefaas/edgefaas/internal/version.version=v1.2.3"
//
// (scripts/dist.sh does); an unstamped build falls back on what the Go
// toolchain recorded (the main module's version, a pseudo-version derived
// from the VCS, and the commit), and finally on "dev".
package version

import (
	"runtime"
	"runtime/debug"
)

// version is stamped at build time; empty: not stamped.
var version = ""

// Dev is the version of a build that knows none.
const Dev = "dev"

// Info is this build.
type Info struct {
	// Version is the release (v1.2.3), a Go pseudo-version for an
	// unstamped build from a VCS checkout, or Dev.
	Version string `json:"version"`
	// Commit is the VCS revision, with "-dirty" when the tree had
	// uncommitted changes; empty when unknown.
	Commit string `json:"commit"`
	// GoVersion is the toolchain that built the binary (go1.26.8).
	GoVersion string `json:"go"`
	// OS and Arch are GOOS and GOARCH.
	OS   string `json:"os"`
	Arch string `json:"arch"`
}

// Get returns this build's Info.
func Get() Info {
	info := Info{Version: version, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		var rev string
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" && modified {
			rev += "-dirty"
		}
		info.Commit = rev
	}
	if info.Version == "" {
		info.Version = Dev
	}
	return info
}

// String is the version alone.
func (i Info) String() string { return i.Version }
