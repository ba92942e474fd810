// Package broker is the MQTT broker a core can embed (mochi-mqtt) for
// single-box sites that have none: `edgefaas core --mqtt-broker
// 127.0.0.1:1883`. Sessions, subscriptions and messages in flight are kept
// in a bolt file in the core's data directory, so a persistent session
// (an MQTT trigger's) and the messages the broker has acknowledged to
// publishers survive a core restart.
package broker

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/listeners"
	"go.etcd.io/bbolt"
)

// Config configures the embedded broker.
type Config struct {
	// Addr is the TCP listen address, e.g. 127.0.0.1:1883.
	Addr string
	// UsersFile holds "username:password" lines; with it every client
	// must authenticate. Without it only a loopback Addr is accepted and
	// any local client may connect (a single box's own publishers).
	UsersFile string
	// StatePath is the bolt file for sessions and messages in flight;
	// empty keeps them in memory.
	StatePath string
	// Admin says whether a subject is an admin, whose triggers may use
	// every topic; nil: none is.
	Admin func(subject string) bool
	Log   *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	srv  *mqtt.Server
	addr string
	acl  *acl
}

// Start listens on cfg.Addr and serves until Close.
func Start(cfg Config) (*Broker, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("--mqtt-broker %q: want HOST:PORT: %w", cfg.Addr, err)
	}
	ip, perr := netip.ParseAddr(host)
	loopback := perr == nil && ip.IsLoopback() || host == "localhost"
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Logger: cfg.Log.With("component", "mqtt-broker")})
	h := &acl{triggerKey: make([]byte, 32), admin: cfg.Admin}
	if _, err := rand.Read(h.triggerKey); err != nil {
		return nil, fmt.Errorf("mqtt broker: %w", err)
	}
	if cfg.UsersFile != "" {
		users, err := readUsers(cfg.UsersFile)
		if err != nil {
			return nil, err
		}
		h.users = users
	} else {
		if !loopback {
			return nil, fmt.Errorf("--mqtt-broker %s is not a loopback address: give --mqtt-broker-users FILE (username:password lines) so clients must authenticate", cfg.Addr)
		}
		h.anonymous = true
	}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("mqtt broker auth: %w", err)
	}
	if cfg.StatePath != "" {
		if err := srv.AddHook(&boltState{Hook: new(bolt.Hook)}, &bolt.Options{Path: cfg.StatePath, Options: &bbolt.Options{Timeout: 0}}); err != nil {
			return nil, fmt.Errorf("mqtt broker state %s: %w", cfg.StatePath, err)
		}
	}
	ln := listeners.NewTCP(listeners.Config{ID: "tcp", Address: cfg.Addr})
	if err := srv.AddListener(ln); err != nil {
		srv.Close()
		return nil, fmt.Errorf("mqtt broker listen on %s: %w", cfg.Addr, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("mqtt broker: %w", err)
	}
	cfg.Log.Info("embedded MQTT broker listening", "addr", ln.Address(), "authenticated", cfg.UsersFile != "")
	return &Broker{srv: srv, addr: ln.Address(), acl: h}, nil
}

// TriggerLogin is the username and password a trigger of subject's
// functions connects with: the broker then gives it subject's topics
// (every topic for an admin's). The password is an HMAC under a key made
// at each start, so only this core's triggers have it.
func (b *Broker) TriggerLogin(subject string) (username, password string) {
	return TriggerUserPrefix + subject, triggerPassword(b.acl.triggerKey, subject)
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker (clients are disconnected; persisted sessions
// remain for the next start).
func (b *Broker) Close() error { return b.srv.Close() }

func readUsers(path string) (map[string]user, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--mqtt-broker-users: %w", err)
	}
	users := map[string]user{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, p, ok := strings.Cut(line, ":")
		if !ok || u == "" || p == "" {
			return nil, fmt.Errorf("--mqtt-broker-users %s line %d: want username:password", path, n)
		}
		if strings.HasPrefix(u, TriggerUserPrefix) || strings.ContainsAny(u, "/+#") {
			return nil, fmt.Errorf("--mqtt-broker-users %s line %d: user %q: a name may not start with %q or hold / + #", path, n, u, TriggerUserPrefix)
		}
		users[u] = user{password: p, grants: []string{u + "/"}}
	}
	if len(users) == 0 {
		return nil, errors.New("--mqtt-broker-users " + path + ": no users")
	}
	return users, nil
}

// boltState is mochi's bolt storage hook with the packet id of restored
// in-flight messages put back: v2.7.9's hook stores in-flight messages
// without it (only in their key, "if_CLIENT:ID"), and a restored message
// without an id breaks its session ("protocol violation: missing packet
// id" on every reconnect).
type boltState struct {
	*bolt.Hook
}

// StoredInflightMessages returns the stored in-flight messages with their
// packet ids.
func (h *boltState) StoredInflightMessages() ([]storage.Message, error) {
	v, err := h.Hook.StoredInflightMessages()
	for i := range v {
		if v[i].PacketID != 0 {
			continue
		}
		if j := strings.LastIndexByte(v[i].ID, ':'); j >= 0 {
			if id, perr := strconv.ParseUint(v[i].ID[j+1:], 10, 16); perr == nil {
				v[i].PacketID = uint16(id)
			}
		}
	}
	return v, err
}
