package api

import (
	"net/http"

	"github.com/edgefaas/edgefaas/internal/version"
)

// versionView is GET /v1/version: the core's build.
type versionView struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func (s *Server) version(c *call) error {
	v := version.Get()
	return reply(c, http.StatusOK, versionView{Version: v.Version, Commit: v.Commit, Go: v.GoVersion, OS: v.OS, Arch: v.Arch})
}
