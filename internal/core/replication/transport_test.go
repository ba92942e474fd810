package replication

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// testCA is a node CA as the core keeps one: it signs certificates that
// name a node in a URI SAN edgefaas-node://ROLE@HOST.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test node CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert: cert, key: key}
}

// tlsFor returns the mutual-TLS configuration of the node name, with its
// certificate from ca, verifying peers against trust (as node links do:
// the chain, not a host name).
func (ca testCA) tlsFor(t *testing.T, name string, trust testCA) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{{Scheme: "edgefaas-node", Opaque: name}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(trust.cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS13, ClientAuth: tls.RequireAnyClientCert, InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			c, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			_, err = c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			return err
		},
	}
}

// onlyCores accepts a peer whose certificate names a core.
func onlyCores(c *x509.Certificate) error {
	for _, u := range c.URIs {
		if u.Scheme == "edgefaas-node" && strings.HasPrefix(u.Opaque, "core@") {
			return nil
		}
	}
	return errors.New("the certificate names no core")
}

// TestGroupOverMutualTLS: three members on loopback TCP, every link mutual
// TLS with certificates of one node CA, elect a leader and replicate.
func TestGroupOverMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	type member struct {
		m     *Member
		store *storage.Store
	}
	var members []member
	var servers []raft.Server
	for i := 0; i < 3; i++ {
		id := raft.ServerID(fmt.Sprintf("core@10.0.0.%d", i+1))
		tr, err := NewTLSTransport(TransportConfig{Bind: "127.0.0.1:0", TLS: ca.tlsFor(t, string(id), ca), Peer: onlyCores})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		store, err := storage.Open(filepath.Join(dir, "db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Start(Config{ID: id, Dir: filepath.Join(dir, "raft"), Store: store, Transport: tr, Tune: fastElections})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			m.Close()
			tr.Close()
			store.Close()
		})
		members = append(members, member{m, store})
		servers = append(servers, raft.Server{ID: id, Address: tr.LocalAddr()})
	}
	if err := members[0].m.Bootstrap(servers...); err != nil {
		t.Fatal(err)
	}
	var f storage.Function
	wait.For(t, limit, "a leader to take a write over TLS", func() bool {
		for _, mb := range members {
			if mb.m.Raft().State() != raft.Leader {
				continue
			}
			v, err := mb.m.Apply(CreateFunction{In: storage.Module{Name: storage.DefaultModule},
				New: newFunction("f", "code"), Stamp: stamp(t, mb.store)}, limit)
			if err != nil {
				t.Logf("apply: %v", err)
				return false
			}
			f = v.(storage.Function)
			return true
		}
		return false
	})
	for i, mb := range members {
		wait.For(t, limit, fmt.Sprintf("member %d to hold the function", i), func() bool {
			got, err := mb.store.GetFunction(storage.DefaultModule, "f")
			return err == nil && got.ID == f.ID
		})
	}
}

// TestGroupTransportRefusesOtherPeers: a member answers Raft only to a
// core with a certificate of its node CA. A worker's certificate from the
// same CA, and a core's from another CA, get no answer; a core's from the
// CA does (the control).
func TestGroupTransportRefusesOtherPeers(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	const id = "core@10.0.0.1"
	tr, err := NewTLSTransport(TransportConfig{Bind: "127.0.0.1:0", TLS: ca.tlsFor(t, id, ca), Peer: onlyCores})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := storage.Open(filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Start(Config{ID: id, Dir: filepath.Join(dir, "raft"), Store: store, Transport: tr, Tune: fastElections})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		m.Close()
		tr.Close()
		store.Close()
	}()
	if err := m.Bootstrap(raft.Server{ID: id, Address: tr.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, limit, "the member to lead", func() bool { return m.Raft().State() == raft.Leader })
	vote := func(name string, tlsCfg *tls.Config) error {
		// The intruder's own side accepts any peer: only the member's
		// refusal is tested.
		in, err := NewTLSTransport(TransportConfig{Bind: "127.0.0.1:0", TLS: tlsCfg,
			Peer: func(*x509.Certificate) error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		req := &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax,
			ID: []byte(name), Addr: []byte(in.LocalAddr())}, Term: 1000}
		var resp raft.RequestVoteResponse
		return in.RequestVote(raft.ServerID(id), tr.LocalAddr(), req, &resp)
	}
	for _, c := range []struct {
		what string
		cfg  *tls.Config
	}{
		{"a worker's certificate of the node CA", ca.tlsFor(t, "worker@10.0.0.9", ca)},
		{"a core's certificate of another CA", other.tlsFor(t, "core@10.0.0.9", ca)},
	} {
		if err := vote("intruder", c.cfg); err == nil {
			t.Errorf("%s: the member answered", c.what)
		}
	}
	if err := vote("core@10.0.0.2", ca.tlsFor(t, "core@10.0.0.2", ca)); err != nil {
		t.Errorf("a core's certificate of the node CA: %v", err)
	}
	if term := m.Raft().Stats()["term"]; term == "1000" {
		t.Errorf("a vote request changed the member's term to %s", term)
	}
}
