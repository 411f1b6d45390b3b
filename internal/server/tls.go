package server

import (
	"log/slog"

	"github.com/vispyr/vispyr/internal/acme"
	"github.com/vispyr/vispyr/internal/auth"
	"github.com/vispyr/vispyr/internal/config"
)

// listenerTLS builds the TLS of every listener but health: the certificate
// from tls.cert_file, or from an ACME CA when acme.domains is set (then the
// manager is returned too, to obtain the certificate once listening). Both
// nil: plain HTTP.
func listenerTLS(cfg config.Config, logger *slog.Logger) (*auth.ServerTLS, *acme.Manager, error) {
	var m *acme.Manager
	var certs auth.CertSource
	if cfg.ACME.Enabled() {
		var err error
		if m, err = acme.New(cfg.ACME, cfg.DataDir, logger.With("component", "acme")); err != nil {
			return nil, nil, err
		}
		certs = m
	}
	s, err := auth.NewServerTLS(cfg.TLS, certs, logger.With("component", "tls"))
	if err != nil {
		return nil, nil, err
	}
	return s, m, nil
}

// httpProtos are what an HTTP listener offers by ALPN; with ACME also the
// TLS-ALPN-01 challenge's protocol, so the CA can validate on any of them
// (on 443, the UI, for Let's Encrypt).
func httpProtos(cfg config.Config) []string {
	if cfg.ACME.Enabled() {
		return []string{"h2", "http/1.1", acme.ALPNProto}
	}
	return []string{"h2", "http/1.1"}
}
