package auth_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/auth"
	"github.com/vispyr/vispyr/internal/auth/authtest"
)

// serveTLS runs an HTTPS server with the given section on 127.0.0.1:0.
func serveTLS(t *testing.T, cfg auth.TLSConfig) string {
	t.Helper()
	st, err := auth.NewServerTLS(cfg, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.Proto) }),
		TLSConfig: st.Config("h2", "http/1.1"),
		ErrorLog:  nil,
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// handshake connects with the client config and returns the server's leaf.
func handshake(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func TestTLSServesAndReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t, "test CA")
	certFile, keyFile := ca.IssueFiles(t, dir, "first")
	addr := serveTLS(t, auth.TLSConfig{TLSCertPath: certFile, TLSKeyPath: keyFile})

	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	leaf, err := handshake(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != "first" {
		t.Fatalf("served %q, want first", leaf.Subject.CommonName)
	}
	// HTTP/2 is offered by ALPN, as net/http does for its own certificates.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: client.Clone(), ForceAttemptHTTP2: true}}
	resp, err := hc.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "HTTP/2.0" {
		t.Errorf("protocol %q, want HTTP/2.0", body)
	}

	// A renewal rewrites both files: the new certificate is served within
	// seconds, without a restart.
	c2, k2 := ca.Issue(t, "renewed")
	authtest.WriteFile(t, keyFile, k2)
	authtest.WriteFile(t, certFile, c2)
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaf, err := handshake(addr, client)
		if err != nil {
			t.Fatal(err)
		}
		if leaf.Subject.CommonName == "renewed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %q 5s after the files changed", leaf.Subject.CommonName)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A broken file keeps the last good certificate.
	authtest.WriteFile(t, certFile, []byte("not a certificate"))
	time.Sleep(1200 * time.Millisecond)
	leaf, err = handshake(addr, client)
	if err != nil {
		t.Fatalf("handshake after a broken renewal: %v", err)
	}
	if leaf.Subject.CommonName != "renewed" {
		t.Fatalf("served %q after a broken renewal, want the previous one", leaf.Subject.CommonName)
	}
}

func TestTLSClientCAAndMinVersion(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t, "server CA")
	clientCA := authtest.NewCA(t, "client CA")
	certFile, keyFile := ca.IssueFiles(t, dir, "server")
	caFile := filepath.Join(dir, "clients.pem")
	authtest.WriteFile(t, caFile, clientCA.CertPEM)
	var cfg auth.TLSConfig
	cfg.TLSCertPath, cfg.TLSKeyPath, cfg.ClientCAs = certFile, keyFile, caFile
	cfg.MinVersion = tls.VersionTLS13
	addr := serveTLS(t, cfg)

	base := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	// In TLS 1.3 a refused client certificate shows on the first read.
	try := func(c *tls.Config) error {
		conn, err := tls.Dial("tcp", addr, c)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	if err := try(base); err == nil {
		t.Error("a client without a certificate was served")
	}
	stranger := base.Clone()
	stranger.Certificates = []tls.Certificate{authtest.NewCA(t, "other").ClientCert(t, "stranger")}
	if err := try(stranger); err == nil {
		t.Error("a client with a certificate from another CA was served")
	}
	good := base.Clone()
	good.Certificates = []tls.Certificate{clientCA.ClientCert(t, "agent")}
	if err := try(good); err != nil {
		t.Errorf("a client with a certificate from client_ca_file: %v", err)
	}
	old := good.Clone()
	old.MaxVersion = tls.VersionTLS12
	if err := try(old); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.2 client with min_version TLS13: err = %v, want a protocol version alert", err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t, "ca")
	certFile, keyFile := ca.IssueFiles(t, dir, "s")
	f := func(cfg auth.TLSConfig, want string) {
		t.Helper()
		_, err := auth.NewServerTLS(cfg, nil, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
	f(auth.TLSConfig{TLSCertPath: certFile}, "cert_file and key_file must be set together")
	f(auth.TLSConfig{TLSCertPath: certFile, TLSKeyPath: filepath.Join(dir, "missing.key")}, "missing.key")
	f(auth.TLSConfig{TLSCertPath: certFile, TLSKeyPath: keyFile, ClientAuth: "RequireAndVerifyClientCert"}, "needs client_ca_file")
	if err := os.WriteFile(filepath.Join(dir, "empty.pem"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f(auth.TLSConfig{TLSCertPath: certFile, TLSKeyPath: keyFile, ClientCAs: filepath.Join(dir, "empty.pem")}, "no PEM certificate")
	if st, err := auth.NewServerTLS(auth.TLSConfig{}, nil, nil); st != nil || err != nil {
		t.Errorf("empty section = %v, %v; want TLS off", st, err)
	}
}
