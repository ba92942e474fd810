package api

import (
	"net/http"
	"time"
)

// Nodes is implemented by clusters that can list their workers and attach
// one by address (`edgefaas node list|connect`).
type Nodes interface {
	NodeList() []NodeInfo
	// Connect attaches a worker by node address, "NAME@HOST:PORT".
	Connect(addr string) error
}

// NodeInfo is a worker as GET /v1/nodes shows it.
type NodeInfo struct {
	Name        string   `json:"name"`
	Arch        string   `json:"arch"`
	OS          string   `json:"os"`
	Tags        []string `json:"tags"`
	TotalMemory int      `json:"total_memory"`
	FreeMemory  int      `json:"free_memory"`
	// MemoryBudget is the worker node's whole budget (--memory, else its
	// cgroup limit, else a share of MemAvailable); MemoryInUse its resident
	// set; MemoryReserved what its guests and compiled code hold. Bytes.
	MemoryBudget   int       `json:"memory_budget"`
	MemoryInUse    int       `json:"memory_in_use"`
	MemoryReserved int       `json:"memory_reserved"`
	Load           float64   `json:"load"` // (running + queued) / concurrency limit
	Running        int       `json:"running"`
	Queued         int       `json:"queued"`
	MaxRunning     int       `json:"max_running"`
	Functions      []string  `json:"functions"`   // code hashes compiled there; empty for non-admins
	Invocations    int       `json:"invocations"` // started there since the worker started
	LastReport     time.Time `json:"last_report"`
}

func (s *Server) listNodes(c *call) error {
	out := []NodeInfo{}
	if s.cfg.Nodes != nil {
		out = append(out, s.cfg.Nodes.NodeList()...)
	}
	if !c.subject.Admin {
		// Code hashes tell one tenant which code another runs (identical
		// uploads share a hash): only admins see them.
		for i := range out {
			out[i].Functions = []string{}
		}
	}
	writeJSON(c.w, http.StatusOK, data(out))
	return nil
}

func (s *Server) connectNode(c *call) error {
	raw, err := readBody(c, maxJSONBodyBytes)
	if err != nil {
		return err
	}
	var body struct {
		Node *struct {
			Address string `json:"address"`
		} `json:"node"`
	}
	if err := decodeStrict(raw, &body, "request body"); err != nil {
		return err
	}
	if body.Node == nil || body.Node.Address == "" {
		return errorf(http.StatusBadRequest, `Bad Request: expected {"node":{"address":"NAME@HOST:PORT"}}`)
	}
	if s.cfg.Nodes == nil {
		return errorf(http.StatusServiceUnavailable, "Service Unavailable: this core runs without a cluster")
	}
	if err := s.cfg.Nodes.Connect(body.Node.Address); err != nil {
		return errorf(http.StatusBadGateway, "Bad Gateway: connect to %s: %s", body.Node.Address, err.Error())
	}
	s.log.Info("worker attached by request", "address", body.Node.Address, "subject", c.subject.Name)
	writeJSON(c.w, http.StatusOK, data(map[string]string{"address": body.Node.Address}))
	return nil
}
