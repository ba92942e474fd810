// Package nodes assembles edgefaas's ergo nodes: the core node (API-facing
// scheduler, registry, invokers), the worker node (cache, runner, reporter,
// HTTP client) and the single-box node that runs both applications, so an
// invocation crosses no network hop.
//
// Every node: the anonymous metrics ergo sends by default are disabled, no
// name service is started (static routes and a no-op registrar instead),
// nodes authenticate with a cookie and talk over TLS only.
package nodes

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ergo-services/ergo"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"
	"github.com/ergo-services/ergo/proto/dist"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/ergonode"
	"github.com/edgefaas/edgefaas/internal/syncfile"
)

// NodeConfig is what every node needs.
type NodeConfig struct {
	// Name is the node's name, "role@host"; default role@ListenHost.
	Name string
	// ListenHost and ListenPort are the node's address for other nodes
	// (default 127.0.0.1 and a free port).
	ListenHost string
	ListenPort uint16
	// Cookie authenticates nodes to each other. Required.
	Cookie string
	// TLS material. Without CertFile/KeyFile the node's certificate is
	// signed by a CA derived from the cookie (clusterca.go), and peers must
	// present one naming the node they claim; with CAFile, peers must
	// present a certificate signed by that CA, naming the node they claim.
	TLS TLSFiles
	// DataDir keeps the node's certificate: a worker's issued one
	// (DATA_DIR/node-tls, enroll.go), a core's CA (DATA_DIR/node-ca).
	DataDir string
	Log     *slog.Logger

	auth *nodeAuth // set by StartCore / StartWorker: a core CA's identity
}

// linkTLS is the node's TLS configuration and whether peers are pinned.
func (cfg *NodeConfig) linkTLS(name string) (*tls.Config, bool, error) {
	if cfg.auth != nil {
		return cfg.auth.tlsConfig(), true, nil
	}
	return nodeTLS(cfg.DataDir, cfg.TLS, name, cfg.Cookie)
}

// ErrNoCookie is returned when a node has no cookie.
var ErrNoCookie = errors.New("no node cookie: set --cookie (EDGEFAAS_COOKIE) to the same secret on the core and its workers")

// start starts an ergo node with apps. cfg is completed in place: name
// and port are chosen when not given.
func start(cfg *NodeConfig, role string, apps ...gen.ApplicationBehavior) (node.Node, error) {
	if cfg.Cookie == "" {
		return nil, ErrNoCookie
	}
	if err := wire.Register(); err != nil {
		return nil, err
	}
	routeErgoLogs(cfg.Log)
	if cfg.ListenHost == "" {
		cfg.ListenHost = "127.0.0.1"
	}
	if cfg.Name == "" {
		cfg.Name = role + "@" + cfg.ListenHost
	}
	port := cfg.ListenPort
	if port == 0 {
		p, err := freePort(cfg.ListenHost)
		if err != nil {
			return nil, err
		}
		port = p
		cfg.ListenPort = p
	}
	tlsCfg, pinned, err := cfg.linkTLS(cfg.Name)
	if err != nil {
		return nil, err
	}
	var handshake node.HandshakeInterface
	if pinned {
		h := pinnedHandshake{HandshakeInterface: dist.CreateHandshake(dist.HandshakeOptions{})}
		if cfg.auth != nil {
			h.check = cfg.auth.check
		}
		if l := cfg.Log; l != nil {
			h.log = func(name string, err error) { l.Warn("node link refused", "peer", name, "err", err) }
		}
		handshake = h
	} else if cfg.Log != nil {
		cfg.Log.Warn("node TLS: an operator certificate without --tls-ca only encrypts; the cookie is the sole authentication of peers")
	}
	opts := node.Options{
		Handshake:        handshake,
		Applications:     apps,
		Listeners:        []node.Listener{{Hostname: cfg.ListenHost, Listen: port, ListenBegin: port, ListenEnd: port}},
		TLS:              tlsCfg,
		StaticRoutesOnly: true,
		Registrar:        ergonode.NoRegistrar{},
		System:           node.System{DisableAnonMetrics: true},
	}
	n, err := ergo.StartNode(cfg.Name, cfg.Cookie, opts)
	if err != nil {
		return nil, fmt.Errorf("start node %s on %s:%d: %w", cfg.Name, cfg.ListenHost, port, err)
	}
	return n, nil
}

func freePort(host string) (uint16, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", host, err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port), nil
}

// Peer is another node to reach: its name and node address.
type Peer struct {
	Name string
	Host string
	Port uint16
}

// ParsePeer reads "HOST:PORT" (the name is then role@HOST) or
// "NAME@HOST:PORT".
func ParsePeer(s, role string) (Peer, error) {
	name := ""
	if at := strings.LastIndex(s, "@"); at >= 0 {
		if i := strings.LastIndex(s, ":"); i > at {
			name, s = s[:i], s[at+1:]
		}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Peer{}, fmt.Errorf("node address %q: want HOST:PORT or NAME@HOST:PORT", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return Peer{}, fmt.Errorf("node address %q: bad port", s)
	}
	if name == "" {
		name = role + "@" + host
	}
	return Peer{Name: name, Host: host, Port: uint16(p)}, nil
}

// addRoute lets n reach peer without a name service.
func addRoute(n node.Node, cfg NodeConfig, p Peer) error {
	tlsCfg, _, err := cfg.linkTLS(n.Name())
	if err != nil {
		return err
	}
	n.RemoveStaticRoute(p.Name)
	return n.AddStaticRoute(p.Name, p.Host, p.Port, node.RouteOptions{Cookie: cfg.Cookie, TLS: tlsCfg, IsErgo: true})
}

// routeErgoLogs sends ergo's standard-library log lines to slog: warnings
// at Warn, the rest at Debug, so nodes are quiet by default.
func routeErgoLogs(l *slog.Logger) {
	if l == nil {
		l = slog.Default()
	}
	log.SetFlags(0)
	log.SetOutput(ergoLog{l})
}

type ergoLog struct{ l *slog.Logger }

func (w ergoLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(strings.ToLower(msg), "handshake") {
		// ergo's words for a refused peer ("malformed handshake", "Can't
		// handshake with ...") never say why; say what it usually means.
		w.l.Warn("node link refused: handshake failed (wrong cookie, no TLS, or a certificate from another CA)", "detail", msg)
		return len(p), nil
	}
	if strings.Contains(msg, "WARNING") || strings.Contains(msg, "Error") || strings.Contains(msg, "error") {
		w.l.Warn("ergo", "msg", msg)
	} else {
		w.l.Debug("ergo", "msg", msg)
	}
	return len(p), nil
}

// LoadOrCreateCookie returns the cookie kept in dir/cookie, creating a
// random one (0600, written crash-safely) on first boot, or when the file
// is empty (what a crash during a non-atomic first write left); created
// reports that it did.
func LoadOrCreateCookie(dir string) (cookie string, created bool, err error) {
	path := filepath.Join(dir, "cookie")
	if b, err := os.ReadFile(path); err == nil {
		if c := strings.TrimSpace(string(b)); c != "" {
			return c, false, nil
		}
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", false, err
	}
	cookie = hex.EncodeToString(buf)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, err
	}
	if err := syncfile.Write(path, []byte(cookie+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write cookie: %w", err)
	}
	return cookie, true, nil
}

// MinCookieLen is the shortest cookie a node accepts: 32 characters, the
// 128 bits of `openssl rand -hex 16` (generated cookies have 48).
const MinCookieLen = 32

// placeholders are words of the cookies deployment examples ship, which
// an operator who forgot to replace them would otherwise run with.
var placeholders = []string{"change-me", "changeme", "change_me", "replace-me", "replaceme", "placeholder", "example", "secret", "password", "cookie"}

// CheckCookie refuses a cookie that is short or a placeholder: the cookie
// lets a node into the cluster and derives its CA (clusterca.go), so a
// guessable one gives the cluster away.
func CheckCookie(cookie string) error {
	lower := strings.ToLower(cookie)
	for _, p := range placeholders {
		if strings.Contains(lower, p) {
			return fmt.Errorf("%w: it contains %q, the word of a placeholder; make one with `openssl rand -hex 32`", ErrWeakCookie, p)
		}
	}
	if len(cookie) < MinCookieLen {
		return fmt.Errorf("%w: %d characters, fewer than %d; make one with `openssl rand -hex 32`", ErrWeakCookie, len(cookie), MinCookieLen)
	}
	return nil
}

// ErrWeakCookie is CheckCookie's error.
var ErrWeakCookie = errors.New("node cookie refused")
