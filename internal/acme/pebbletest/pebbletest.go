// Package pebbletest runs Pebble, Let's Encrypt's ACME test server, with
// pebble-challtestsrv as its DNS server, for tests that obtain real certificates.
package pebbletest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/deploy"
	"github.com/vispyr/vispyr/internal/testpeer"
)

// Pebble is a running ACME test CA.
type Pebble struct {
	// DirectoryURL is the ACME directory.
	DirectoryURL string
	// CAFile is the PEM certificate of Pebble's own HTTPS listener, to trust
	// for DirectoryURL (acme directory_ca_file).
	CAFile string
	mgmt   string
	client *http.Client
}

// Start runs Pebble; it validates TLS-ALPN-01 challenges by connecting to
// tlsIP:tlsPort for every domain (its DNS answers tlsIP for any name). Both
// processes stop when the test ends; without the binaries the test is skipped
// (failed under CI=true).
func Start(t testing.TB, tlsIP string, tlsPort int) *Pebble {
	t.Helper()
	return StartOn(t, "127.0.0.1", tlsIP, tlsPort)
}

// StartOn is Start with the ACME directory on listenIP instead of 127.0.0.1,
// for a client in another network namespace.
func StartOn(t testing.TB, listenIP, tlsIP string, tlsPort int) *Pebble {
	t.Helper()
	pebbleBin := testpeer.Binary(t, "pebble")
	dnsBin := testpeer.Binary(t, "pebble-challtestsrv")
	dir := t.TempDir()
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	start(t, dnsBin, nil, "-dnsserver", dnsAddr, "-defaultIPv4", tlsIP, "-defaultIPv6", "",
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-management", fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t)))
	waitDNS(t, dnsAddr, tlsIP)

	certPEM, keyPEM, err := deploy.SelfSigned([]string{"127.0.0.1", "localhost", listenIP}, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := &Pebble{CAFile: filepath.Join(dir, "pebble-https.pem")}
	keyFile := filepath.Join(dir, "pebble-https.key")
	write(t, p.CAFile, certPEM)
	write(t, keyFile, keyPEM)
	listen := net.JoinHostPort(listenIP, strconv.Itoa(testpeer.FreePort(t)))
	p.mgmt = fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": p.mgmt,
		"certificate": p.CAFile, "privateKey": keyFile,
		"httpPort": 5002, "tlsPort": tlsPort,
		"externalAccountBindingRequired": false,
		"keyAlgorithm":                   "ecdsa",
		"profiles":                       map[string]any{"default": map[string]any{"description": "default", "validityPeriod": 7776000}},
	}})
	cfgFile := filepath.Join(dir, "pebble.json")
	write(t, cfgFile, cfg)
	// No random nonce rejections or validation sleeps: the test checks issuance, not retries.
	start(t, pebbleBin, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"},
		"-config", cfgFile, "-dnsserver", dnsAddr)
	p.DirectoryURL = "https://" + listen + "/dir"
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	p.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := p.client.Get(p.DirectoryURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not answer %s: %v", p.DirectoryURL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Roots returns the CA certificates Pebble signs with (they change at every
// start), for clients verifying an issued certificate.
func (p *Pebble) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, path := range []string{"/roots/0", "/intermediates/0"} {
		resp, err := p.client.Get("https://" + p.mgmt + path)
		if err != nil {
			t.Fatalf("get pebble %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !pool.AppendCertsFromPEM(b) {
			t.Fatalf("pebble %s: no certificate in %q", path, b)
		}
	}
	return pool
}

// waitDNS waits until the DNS server answers, so Pebble's first lookup does not
// fail the first validation.
func waitDNS(t testing.TB, addr, want string) {
	t.Helper()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ips, err := r.LookupHost(ctx, "ready.test")
		cancel()
		if err == nil && len(ips) > 0 && ips[0] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble-challtestsrv DNS on %s did not answer: %v %v", addr, ips, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func start(t testing.TB, bin string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("--- %s log ---\n%s", filepath.Base(bin), log.String())
		}
	})
}

func write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
