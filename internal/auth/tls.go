// Package auth secures Vispyr's listeners: TLS for every port, and (auth.go)
// the credentials, scopes and tenant of every request.
package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
)

// TLSConfig is the `tls:` section, in the format of Prometheus's web config
// (`tls_server_config`): cert_file, key_file, client_ca_file, client_auth_type,
// min_version, max_version, cipher_suites, curve_preferences,
// client_allowed_sans. A client_ca_file without client_auth_type means
// RequireAndVerifyClientCert (mutual TLS).
type TLSConfig = web.TLSConfig

// TLSEnabled reports whether the section asks for TLS.
func TLSEnabled(c TLSConfig) bool { return c.IsEnabled() }

// ValidateTLS checks the section without reading files.
func ValidateTLS(c TLSConfig) error {
	if !c.IsEnabled() {
		return nil
	}
	if c.TLSCert != "" || c.TLSKey != "" || c.ClientCAsText != "" {
		return errors.New("inline cert, key and client_ca are not supported: use cert_file, key_file and client_ca_file")
	}
	if (c.TLSCertPath == "") != (c.TLSKeyPath == "") {
		return errors.New("cert_file and key_file must be set together")
	}
	if _, err := clientAuth(c); err != nil {
		return err
	}
	return nil
}

// CertSource gives the server certificate for each handshake. Files on disk
// (NewFileCertSource) are one source; an ACME client's GetCertificate (for
// instance golang.org/x/crypto/acme/autocert.Manager) is another.
type CertSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// recheck is how often the files are stat'ed for changes: often enough that a
// renewed certificate is served within seconds, rare enough to cost nothing.
const recheck = time.Second

// fileStamp identifies a version of a file cheaply.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// FileCertSource serves a certificate and key read from files, and reads them
// again when either file changes (a renewal by certbot or a Kubernetes secret
// update). A pair that does not load (say the certificate was replaced but
// not yet its key) is logged and the previous one kept until it does.
type FileCertSource struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamps  [2]fileStamp
	checked time.Time
}

// NewFileCertSource loads the pair once, so a bad file fails start-up.
func NewFileCertSource(certFile, keyFile string, logger *slog.Logger) (*FileCertSource, error) {
	s := &FileCertSource{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.checked = time.Now()
	return s, nil
}

func (s *FileCertSource) load() error {
	var stamps [2]fileStamp
	for i, p := range []string{s.certFile, s.keyFile} {
		st, err := stampOf(p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		stamps[i] = st
	}
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("load certificate %s and key %s: %w", s.certFile, s.keyFile, err)
	}
	s.cert, s.stamps = &cert, stamps
	return nil
}

// GetCertificate returns the current certificate, re-reading the files first
// when they changed.
func (s *FileCertSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.checked) >= recheck {
		s.checked = time.Now()
		c, errC := stampOf(s.certFile)
		k, errK := stampOf(s.keyFile)
		if errC == nil && errK == nil && (c != s.stamps[0] || k != s.stamps[1]) {
			if err := s.load(); err != nil {
				s.logger.Warn("reload TLS certificate; serving the previous one", "err", err)
			} else {
				s.logger.Info("reloaded TLS certificate", "cert_file", s.certFile)
			}
		}
	}
	return s.cert, nil
}

// ServerTLS builds the tls.Config of every listener from one `tls:` section:
// versions, ciphers and client verification from the section, the certificate
// from a CertSource. The client CA file is read again when it changes.
type ServerTLS struct {
	cfg    TLSConfig
	certs  CertSource
	logger *slog.Logger

	mu      sync.Mutex
	base    *tls.Config
	caStamp fileStamp
	checked time.Time
}

// NewServerTLS returns nil when the section does not enable TLS. With certs
// nil the certificate comes from cert_file and key_file.
func NewServerTLS(cfg TLSConfig, certs CertSource, logger *slog.Logger) (*ServerTLS, error) {
	if certs == nil && !cfg.IsEnabled() {
		return nil, nil
	}
	if err := ValidateTLS(cfg); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if certs == nil {
		if cfg.TLSCertPath == "" {
			return nil, errors.New("tls: cert_file and key_file are required")
		}
		fc, err := NewFileCertSource(cfg.TLSCertPath, cfg.TLSKeyPath, logger)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		certs = fc
	}
	s := &ServerTLS{cfg: cfg, certs: certs, logger: logger}
	base, stamp, err := s.build()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	s.base, s.caStamp, s.checked = base, stamp, time.Now()
	return s, nil
}

// Config returns a tls.Config for one listener that offers nextProtos by ALPN
// ("h2", "http/1.1" for HTTP; "h2" for gRPC).
func (s *ServerTLS) Config(nextProtos ...string) *tls.Config {
	return &tls.Config{
		// The server only reads GetConfigForClient's answer; GetCertificate is
		// set so that net/http knows a certificate is configured.
		GetCertificate: s.certs.GetCertificate,
		NextProtos:     nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := s.current().Clone()
			c.NextProtos = nextProtos
			return c, nil
		},
	}
}

func (s *ServerTLS) current() *tls.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.ClientCAs != "" && time.Since(s.checked) >= recheck {
		s.checked = time.Now()
		if st, err := stampOf(s.cfg.ClientCAs); err == nil && st != s.caStamp {
			if base, stamp, err := s.build(); err != nil {
				s.logger.Warn("reload TLS client CA; keeping the previous one", "err", err)
			} else {
				s.base, s.caStamp = base, stamp
				s.logger.Info("reloaded TLS client CA", "client_ca_file", s.cfg.ClientCAs)
			}
		}
	}
	return s.base
}

// build turns the section into a tls.Config (without NextProtos), reading the
// client CA file.
func (s *ServerTLS) build() (*tls.Config, fileStamp, error) {
	c := s.cfg
	cfg := &tls.Config{
		MinVersion:     uint16(c.MinVersion),
		MaxVersion:     uint16(c.MaxVersion),
		GetCertificate: s.certs.GetCertificate,
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12 // Prometheus's web config default
	}
	for _, cs := range c.CipherSuites {
		cfg.CipherSuites = append(cfg.CipherSuites, uint16(cs))
	}
	for _, cp := range c.CurvePreferences {
		cfg.CurvePreferences = append(cfg.CurvePreferences, tls.CurveID(cp))
	}
	ca, err := clientAuth(c)
	if err != nil {
		return nil, fileStamp{}, err
	}
	cfg.ClientAuth = ca
	var stamp fileStamp
	if c.ClientCAs != "" {
		if stamp, err = stampOf(c.ClientCAs); err != nil {
			return nil, fileStamp{}, fmt.Errorf("stat client_ca_file: %w", err)
		}
		pem, err := os.ReadFile(c.ClientCAs)
		if err != nil {
			return nil, fileStamp{}, fmt.Errorf("read client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fileStamp{}, fmt.Errorf("client_ca_file %s: no PEM certificate found", c.ClientCAs)
		}
		cfg.ClientCAs = pool
	}
	if c.ClientAllowedSans != nil {
		cfg.VerifyPeerCertificate = c.VerifyPeerCertificate
	}
	return cfg, stamp, nil
}

// clientAuth maps client_auth_type as Prometheus's web config does, except
// that a client CA alone turns on verification (mutual TLS).
func clientAuth(c TLSConfig) (tls.ClientAuthType, error) {
	switch c.ClientAuth {
	case "":
		if c.ClientCAs != "" {
			return tls.RequireAndVerifyClientCert, nil
		}
		return tls.NoClientCert, nil
	case "NoClientCert":
		if c.ClientCAs != "" {
			return 0, errors.New("client_ca_file is set but client_auth_type is NoClientCert")
		}
		return tls.NoClientCert, nil
	case "RequestClientCert":
		return tls.RequestClientCert, nil
	case "RequireAnyClientCert", "RequireClientCert":
		return tls.RequireAnyClientCert, nil
	case "VerifyClientCertIfGiven":
		return tls.VerifyClientCertIfGiven, nil
	case "RequireAndVerifyClientCert":
		if c.ClientCAs == "" {
			return 0, errors.New("client_auth_type RequireAndVerifyClientCert needs client_ca_file")
		}
		return tls.RequireAndVerifyClientCert, nil
	default:
		return 0, fmt.Errorf("client_auth_type: unknown %q", c.ClientAuth)
	}
}
