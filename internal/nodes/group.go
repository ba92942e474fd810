package nodes

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
)

// groupPrefix names a core group's member in its certificate's URI SAN
// (edgefaas-node://group:ID): a node link's certificate never does, so a
// worker's certificate is refused by the group's transport.
const groupPrefix = "group:"

// GroupTLS is the mutual TLS of a core group's transport
// (internal/core/replication): a certificate for member id signed by the
// CA derived from the cookie, as node links are (every core of the group
// holds the same cookie, so there is no new secret to distribute), and
// the check that a peer's certificate names a group member.
func GroupTLS(cookie, id string) (*tls.Config, func(*x509.Certificate) error, error) {
	if err := CheckCookie(cookie); err != nil {
		return nil, nil, err
	}
	cert, pool, err := clusterCert(cookie, groupPrefix+id)
	if err != nil {
		return nil, nil, fmt.Errorf("group certificate: %w", err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		RootCAs:      pool,
		// Members are dialled by address, not by a name in their
		// certificate: the chain is verified here, the name by the check.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verifyChain(pool),
	}
	check := func(c *x509.Certificate) error {
		for _, u := range c.URIs {
			if u.Scheme == "edgefaas-node" && strings.HasPrefix(u.Opaque, groupPrefix) {
				return nil
			}
		}
		return fmt.Errorf("certificate %q does not name a core group member", c.Subject.CommonName)
	}
	return cfg, check, nil
}
