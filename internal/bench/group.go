package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// coreGroup is a running core group: three cores on 127.0.0.1–3, as
// tests/group starts them, the first of which made the group, and its
// workers, joined to every core. The first member's platform holds the
// workers (its stop stops them).
type coreGroup struct {
	members []*platform
	// groupAddrs are the members' --group-addr, which name them.
	groupAddrs []string
}

// groupHosts are the members' hosts.
var groupHosts = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}

// startGroup starts a group of three cores under dir and workers worker
// processes from 127.0.0.4 on, and returns once every core holds the
// group's tokens and lists every worker.
func startGroup(ctx context.Context, name, binary, dir string, workers int) (*coreGroup, error) {
	g := &coreGroup{}
	for i, host := range groupHosts {
		port, err := testcluster.FreePort(host)
		if err != nil {
			g.kill()
			return nil, err
		}
		addr := host + ":" + port
		args := []string{"--group-addr", addr}
		tokens := ""
		if i > 0 {
			first := g.members[0].core.dataDir
			args = append(args, "--join-group", g.groupAddrs[0], "--cookie-file", filepath.Join(first, "cookie"))
			tokens = first
		}
		m, err := startCore(nil, fmt.Sprintf("%s member %d", name, i+1), binary, filepath.Join(dir, fmt.Sprintf("member%d", i+1)), host, false, tokens, args)
		if err != nil {
			g.kill()
			return nil, err
		}
		g.members = append(g.members, m)
		g.groupAddrs = append(g.groupAddrs, addr)
	}
	// A joining core listens before the group has sent it the tokens.
	for _, m := range g.members {
		if err := wait.Until(ctx, 60*time.Second, m.name+" holds the group's tokens", func() bool {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, err := m.api.ListModules(c)
			return err == nil
		}); err != nil {
			g.kill()
			return nil, err
		}
	}
	first := g.members[0]
	for _, m := range g.members[1:] {
		first.joins = append(first.joins, m.nodeAddr)
	}
	if err := first.startWorkers(ctx, binary, dir, 4, workers, nil); err != nil {
		g.kill()
		return nil, err
	}
	for _, m := range g.members[1:] {
		if err := m.waitNodes(ctx, time.Now().Add(-time.Hour), workers); err != nil {
			g.kill()
			return nil, err
		}
	}
	return g, nil
}

// leader is the member the group's configuration names leader, asked of
// the members not in dead until one answers with a leader.
func (g *coreGroup) leader(ctx context.Context, dead *platform) (*platform, error) {
	var found *platform
	err := wait.Until(ctx, 30*time.Second, "a member leads", func() bool {
		for _, m := range g.members {
			if m == dead {
				continue
			}
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			ms, err := m.api.GroupMembers(c)
			cancel()
			if err != nil {
				continue
			}
			for _, gm := range ms {
				for i, addr := range g.groupAddrs {
					if gm.Role == "leader" && gm.ID == addr && g.members[i] != dead {
						found = g.members[i]
						return true
					}
				}
			}
		}
		return false
	})
	return found, err
}

// pids are every member's core and the workers.
func (g *coreGroup) pids() []int {
	var ps []int
	for _, m := range g.members {
		ps = append(ps, m.pids()...)
	}
	return ps
}

// kill kills every process of the group.
func (g *coreGroup) kill() {
	for _, m := range g.members {
		m.kill()
	}
}
