//go:build forgery

package nodes

import "github.com/ergo-services/ergo/node"

// Built only with the forgery tag, by the test that plays a hostile worker
// (tests/cluster/forger): the release binary has neither accessor.

// ForgeryNode is the worker's ergo node, to spawn a hostile process on.
func (w *Worker) ForgeryNode() node.Node { return w.node }

// ForgeryRoute adds a route from n (configured as cfg) to peer
// ("NAME@HOST:PORT"), as the worker adds one to its cores: with the
// identity it joined with (DATA_DIR/node-tls), else the cookie's.
func ForgeryRoute(n node.Node, cfg NodeConfig, peer string) error {
	p, err := ParsePeer(peer, "worker")
	if err != nil {
		return err
	}
	if cfg.TLS.CertFile == "" && cfg.auth == nil {
		if cfg.auth, err = loadEnrollment(cfg.DataDir, n.Name()); err != nil {
			return err
		}
	}
	return addRoute(n, cfg, p)
}
