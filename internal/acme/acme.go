// Package acme obtains and renews Vispyr's TLS certificate from an ACME
// certificate authority (Let's Encrypt by default) while Vispyr runs, answering
// the TLS-ALPN-01 challenge on its own TLS port (443), so renewal needs no cron
// job and no port 80. It is a certificate source for the listeners' TLS
// (internal/auth): the same listeners, with their certificate from here.
package acme

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	xacme "golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// LetsEncrypt is the default directory.
const LetsEncrypt = xacme.LetsEncryptURL

// ALPNProto is the protocol a listener must offer for the TLS-ALPN-01 challenge.
const ALPNProto = xacme.ALPNProto

// Config is the `acme:` section.
type Config struct {
	// Domains are the DNS names the certificate is for; none turns ACME off.
	// The CA checks each by connecting to it on port 443, which must reach
	// Vispyr's UI listener.
	Domains []string `yaml:"domains"`
	// Email is given to the CA for expiry notices (optional).
	Email string `yaml:"email"`
	// DirectoryURL is the CA's directory (default Let's Encrypt production).
	DirectoryURL string `yaml:"directory_url"`
	// DirectoryCAFile trusts a private CA's HTTPS certificate (a test CA such as
	// Pebble, or step-ca); empty uses the system roots.
	DirectoryCAFile string `yaml:"directory_ca_file"`
	// CacheDir keeps the account key and certificates across restarts (default
	// <data_dir>/acme), so a restart does not ask the CA again.
	CacheDir string `yaml:"cache_dir"`
}

// Enabled reports whether the section asks for ACME.
func (c Config) Enabled() bool { return len(c.Domains) > 0 }

// Validate names the first bad field.
func (c Config) Validate() error {
	for _, d := range c.Domains {
		if d == "" {
			return errors.New("domains: must not hold an empty name")
		}
	}
	if !c.Enabled() && (c.Email != "" || c.DirectoryURL != "" || c.DirectoryCAFile != "") {
		return errors.New("domains: must be set to use ACME")
	}
	return nil
}

// Manager is a certificate source that asks the CA for a certificate on the
// first handshake for one of the domains and renews it 30 days before expiry,
// in the background.
type Manager struct {
	m       *autocert.Manager
	domains []string
	logger  *slog.Logger
}

// New builds the manager; dataDir is the default cache's parent.
func New(c Config, dataDir string, logger *slog.Logger) (*Manager, error) {
	dir := c.CacheDir
	if dir == "" {
		dir = filepath.Join(dataDir, "acme")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create acme cache: %w", err)
	}
	client := &xacme.Client{DirectoryURL: c.DirectoryURL, UserAgent: "vispyr"}
	if c.DirectoryURL == "" {
		client.DirectoryURL = LetsEncrypt
	}
	if c.DirectoryCAFile != "" {
		pem, err := os.ReadFile(c.DirectoryCAFile)
		if err != nil {
			return nil, fmt.Errorf("read acme directory_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme directory_ca_file %s: no PEM certificate found", c.DirectoryCAFile)
		}
		client.HTTPClient = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		}}
	}
	return &Manager{logger: logger, domains: c.Domains, m: &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(dir),
		HostPolicy: autocert.HostWhitelist(c.Domains...),
		Email:      c.Email,
		Client:     client,
	}}, nil
}

// GetCertificate serves the certificate for the handshake's server name,
// obtaining it first if needed, and answers TLS-ALPN-01 challenges. A
// handshake without a server name (an IP address) gets the first domain's.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		h := *hello
		h.ServerName = m.domains[0]
		hello = &h
	}
	cert, err := m.m.GetCertificate(hello)
	if err != nil {
		m.logger.Warn("obtain ACME certificate", "server_name", hello.ServerName, "err", err)
	}
	return cert, err
}

// Prefetch obtains the certificates now instead of at the first handshake, so
// start-up logs say whether issuance works. It runs in the background: the CA
// validates by connecting to the listener, which must already be serving.
func (m *Manager) Prefetch() {
	for _, d := range m.domains {
		hello := &tls.ClientHelloInfo{ServerName: d, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
		if _, err := m.m.GetCertificate(hello); err != nil {
			m.logger.Warn("obtain ACME certificate", "domain", d, "err", err)
			continue
		}
		m.logger.Info("ACME certificate ready", "domain", d)
	}
}
