package main

import (
	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/internal/core/api"
)

// apiTLSFlags configure HTTPS for the core's API (the node links have their
// own --tls-cert/--tls-key/--tls-ca).
type apiTLSFlags struct {
	mode, cert, key string
}

func (f *apiTLSFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.mode, "http-tls", string(api.TLSAuto), "HTTPS for the API: auto (on unless --http-addr is a loopback address), on, or off (behind a TLS-terminating proxy)")
	fl.StringVar(&f.cert, "http-tls-cert", "", "API certificate (PEM); default: self-signed, made on first boot in DATA_DIR/http-tls, its SHA-256 logged for clients to pin")
	fl.StringVar(&f.key, "http-tls-key", "", "API private key (PEM)")
}
