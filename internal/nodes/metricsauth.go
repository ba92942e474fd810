package nodes

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/netutil"

	"github.com/edgefaas/edgefaas/internal/syncfile"
)

// MetricsOptions protect a worker's metrics listener like the core's
// /metrics: a bearer token, and server timeouts so a slow client cannot
// hold connections open.
type MetricsOptions struct {
	// Token, if set, must be sent as "Authorization: Bearer <Token>".
	Token string
}

// MetricsTokenFile is the worker's generated metrics token, in its data
// directory.
const MetricsTokenFile = "metrics-token"

// maxMetricsConns bounds the metrics listener's connections at once.
const maxMetricsConns = 32

// LoadOrCreateMetricsToken returns dir/metrics-token, creating a random
// one (256 bits, mode 0600, written crash-safely) on first use or when the
// file is empty.
func LoadOrCreateMetricsToken(dir string) (token string, created bool, err error) {
	path := filepath.Join(dir, MetricsTokenFile)
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", false, err
	}
	token = base64.RawURLEncoding.EncodeToString(buf)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, err
	}
	if err := syncfile.Write(path, []byte(token+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write metrics token: %w", err)
	}
	return token, true, nil
}

func serveMetrics(addr string, h http.Handler, o MetricsOptions) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	// A scrape needs one connection: a few dozen are plenty, and beyond
	// them a client waits in the kernel's queue, not in the worker's
	// descriptors.
	go metricsServer(h, o).Serve(netutil.LimitListener(l, maxMetricsConns))
	return l.Addr(), nil
}

func metricsServer(h http.Handler, o MetricsOptions) *http.Server {
	mux := http.NewServeMux()
	if o.Token != "" {
		h = requireToken(o.Token, h)
	}
	mux.Handle("/metrics", h)
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

// requireToken answers 401 unless the request carries the token.
func requireToken(token string, h http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edgefaas-worker"`)
			http.Error(w, "Unauthorized: send 'Authorization: Bearer <token>' (the worker's DATA_DIR/metrics-token, or --metrics-token-file)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
