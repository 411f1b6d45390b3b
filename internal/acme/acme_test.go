package acme_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/acme"
	"github.com/vispyr/vispyr/internal/acme/pebbletest"
)

// A TLS listener whose certificate comes from the Manager gets a certificate
// from a real ACME server (Pebble), which validates the domain by the
// TLS-ALPN-01 challenge on that same listener; a client that trusts only
// Pebble's roots then verifies it for the domain, and a restart reads it back
// from the cache instead of asking the CA again.
func TestManagerObtainsCertificateThroughTLSALPN01(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	pebble := pebbletest.Start(t, "127.0.0.1", port)
	cache := t.TempDir()
	cfg := acme.Config{Domains: []string{"vispyr.test"}, DirectoryURL: pebble.DirectoryURL, DirectoryCAFile: pebble.CAFile, CacheDir: cache}
	m, err := acme.New(cfg, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ln, m)

	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pebble.Roots(t), ServerName: "vispyr.test"},
	}}
	resp, err := client.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("https with a certificate from pebble: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("body %q", body)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if err := leaf.VerifyHostname("vispyr.test"); err != nil {
		t.Fatal(err)
	}

	// A second manager on the same cache serves the same certificate without a CA.
	m2, err := acme.New(acme.Config{Domains: cfg.Domains, DirectoryURL: "https://127.0.0.1:1/dir", CacheDir: cache}, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c, err := m2.GetCertificate(&tls.ClientHelloInfo{ServerName: "vispyr.test", CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
	if err != nil {
		t.Fatalf("certificate from the cache: %v", err)
	}
	cached, _ := x509.ParseCertificate(c.Certificate[0])
	if !cached.Equal(leaf) {
		t.Fatal("the cached certificate is not the one issued")
	}
}

func TestManagerRefusesOtherDomains(t *testing.T) {
	m, err := acme.New(acme.Config{Domains: []string{"vispyr.test"}, DirectoryURL: "https://127.0.0.1:1/dir"}, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "evil.test"}); err == nil {
		t.Fatal("a certificate was requested for a domain not configured")
	}
}

func serve(t *testing.T, ln net.Listener, m *acme.Manager) {
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		TLSConfig: &tls.Config{GetCertificate: m.GetCertificate, NextProtos: []string{"h2", "http/1.1", acme.ALPNProto}},
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
}
