// Package discovery finds cores without configuration. Cores announce
// themselves on a LAN with a UDP multicast beacon (FunLess's port, 45892);
// workers that hear a beacon signed with their own cookie join that core.
// In Kubernetes, workers resolve the core's headless service instead.
//
// Beacon is the plain-Go part (encoding and authentication); Actor is the
// node's discovery process.
package discovery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// Port and Group are where beacons travel (FunLess's gossip port).
const Port = 45892

// Group is the multicast group of beacons (organisation-local scope).
var Group = net.IPv4(239, 255, 45, 92)

// Beacon is a core's announcement.
type Beacon struct {
	Node string    `json:"node"` // core@host
	Host string    `json:"host"` // node address workers dial
	Port int       `json:"port"`
	Time time.Time `json:"time"`
}

// ErrBadBeacon means a datagram is not a beacon signed with our cookie
// (another cluster, a stale replay, or noise).
var ErrBadBeacon = errors.New("not a beacon of this cluster")

// maxAge bounds how old a beacon may be, against replays.
const maxAge = time.Minute

// Seal encodes b and appends an HMAC keyed by the cluster's cookie, so the
// cookie itself never travels and workers follow only their own cores.
func Seal(b Beacon, cookie string) []byte {
	body, _ := json.Marshal(b)
	mac := hmac.New(sha256.New, []byte(cookie))
	mac.Write(body)
	return append(append(body, '\n'), hex.EncodeToString(mac.Sum(nil))...)
}

// Open checks and decodes a sealed beacon.
func Open(data []byte, cookie string, now time.Time) (Beacon, error) {
	i := len(data) - 65
	if i < 1 || data[i] != '\n' {
		return Beacon{}, ErrBadBeacon
	}
	body, sig := data[:i], data[i+1:]
	mac := hmac.New(sha256.New, []byte(cookie))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), sig) {
		return Beacon{}, ErrBadBeacon
	}
	var b Beacon
	if err := json.Unmarshal(body, &b); err != nil {
		return Beacon{}, fmt.Errorf("%w: %v", ErrBadBeacon, err)
	}
	if d := now.Sub(b.Time); d > maxAge || d < -maxAge || b.Node == "" || b.Host == "" || b.Port <= 0 || b.Port > 65535 {
		return Beacon{}, ErrBadBeacon
	}
	return b, nil
}
