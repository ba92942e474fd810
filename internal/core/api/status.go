package api

import (
	"net/http"
	"path/filepath"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
)

// statusView is GET /v1/admin/status: what an operator checks before
// trouble (`edgefaas doctor`). Disk figures are of the file system
// holding the core's database; -1 when unknown (no data directory, or
// the platform cannot tell). Queue figures are -1 when the core runs no
// asynchronous queue.
type statusView struct {
	DiskFreeBytes         int64   `json:"disk_free_bytes"`
	DiskTotalBytes        int64   `json:"disk_total_bytes"`
	QueueLength           int     `json:"queue_length"`
	QueueOldestAgeSeconds float64 `json:"queue_oldest_age_seconds"`
	NodeJoinMode          string  `json:"node_join_mode"`
	// Time is the core's clock when it answered, for the client to tell
	// the skew between the two.
	Time time.Time `json:"time"`
}

func (s *Server) adminStatus(c *call) error {
	out := statusView{DiskFreeBytes: -1, DiskTotalBytes: -1, QueueLength: -1, QueueOldestAgeSeconds: -1, NodeJoinMode: "none", Time: time.Now().UTC()}
	if s.cfg.DataDir != "" {
		free, total, err := diskSpace(filepath.Clean(s.cfg.DataDir))
		if err != nil {
			s.log.Warn("admin status: disk space unknown", "dir", s.cfg.DataDir, "err", err)
		} else {
			out.DiskFreeBytes, out.DiskTotalBytes = free, total
		}
	}
	if n, age, ok := s.inv.QueueStatus(); ok {
		out.QueueLength, out.QueueOldestAgeSeconds = n, age.Seconds()
	}
	if p, ok := s.cfg.Nodes.(cluster.JoinPolicy); ok && p != nil {
		out.NodeJoinMode = p.JoinMode()
	}
	return reply(c, http.StatusOK, out)
}
