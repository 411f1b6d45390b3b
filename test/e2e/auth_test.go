package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vispyr/vispyr/internal/auth"
	"github.com/vispyr/vispyr/internal/auth/authtest"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// authSetup is a Vispyr running with TLS and an auth: section.
type authSetup struct {
	v      *harness.Vispyr
	tls    *tls.Config
	caFile string
}

// Credentials of the auth setup. Every single-scope token and every
// "all but one scope" token acts as team-a; alice may act as team-a (her
// first tenant) and team-b.
const (
	alicePassword = "alice-pw"
	writerToken   = "tok-write"
	readerToken   = "tok-read"
	adminToken    = "tok-admin"
)

// butTokens hold every scope but the one named.
var butTokens = map[auth.Scope]string{auth.ScopeWrite: "tok-no-write", auth.ScopeRead: "tok-no-read", auth.ScopeAdmin: "tok-no-admin"}

// onlyTokens hold only the scope named.
var onlyTokens = map[auth.Scope]string{auth.ScopeWrite: writerToken, auth.ScopeRead: readerToken, auth.ScopeAdmin: adminToken}

func startAuth(t *testing.T) *authSetup {
	t.Helper()
	dir := t.TempDir()
	ca := authtest.NewCA(t, "e2e CA")
	certFile, keyFile := ca.IssueFiles(t, dir, "vispyr")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	pw, err := bcrypt.GenerateFromPassword([]byte(alicePassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "tls:\n  cert_file: %s\n  key_file: %s\nauth:\n  tokens:\n", certFile, keyFile)
	token := func(name, tok, scopes string) {
		fmt.Fprintf(&cfg, "    - {name: %s, sha256: %s, scopes: [%s], tenant: team-a}\n", name, auth.HashToken(tok), scopes)
	}
	token("writer", writerToken, "write")
	token("reader", readerToken, "read")
	token("admin", adminToken, "admin")
	token("no-write", butTokens[auth.ScopeWrite], "read, admin")
	token("no-read", butTokens[auth.ScopeRead], "write, admin")
	token("no-admin", butTokens[auth.ScopeAdmin], "write, read")
	fmt.Fprintf(&cfg, "  users:\n    - {name: alice, bcrypt: %q, scopes: [read, write], tenants: [team-a, team-b]}\n", pw)
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	v := harness.Start(t, harness.Options{Config: cfg.String(), TLS: client})
	return &authSetup{v: v, tls: client, caFile: caFile}
}

func bearer(tok string) string { return "Bearer " + tok }

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// authTransport adds credentials (and a tenant, when set) to every request.
type authTransport struct {
	base          http.RoundTripper
	authorization string
	tenant        string
}

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", a.authorization)
	if a.tenant != "" {
		r.Header.Set("X-Scope-OrgID", a.tenant)
	}
	return a.base.RoundTrip(r)
}

// client is an HTTPS client of the setup sending authorization.
func (s *authSetup) client(authorization, tenant string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: authTransport{
		base:          &http.Transport{TLSClientConfig: s.tls.Clone(), ForceAttemptHTTP2: true},
		authorization: authorization, tenant: tenant,
	}}
}

// answer is one request's outcome in the scan.
type answer struct {
	code int
	body string
}

func do(t *testing.T, c *http.Client, method, url, authorization, tenant string) answer {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = bytes.NewReader([]byte("x"))
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return answer{resp.StatusCode, string(b)}
}

// TestNoAuthWarnsAndRefusesSimpleWrites: without an auth: section Vispyr
// starts as before and logs one warning naming the open ports; even so the
// UI port takes no writes, and remote write and Pyroscope /ingest refuse the
// requests a web page could send cross-origin without a preflight.
func TestNoAuthWarnsAndRefusesSimpleWrites(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{})
	log := v.Tail(64 << 10)
	if n := strings.Count(log, "no auth: section"); n != 1 || !strings.Contains(log, v.UIAddr) || !strings.Contains(log, v.MetricsAddr) {
		t.Errorf("want one warning naming the open ports, got %d in:\n%s", n, log)
	}
	c := v.HTTPClient()
	post := func(url, ct string) int {
		t.Helper()
		resp, err := c.Post(url, ct, strings.NewReader("main;work 1\n"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/prom/api/v1/write", "/prom/api/v1/otlp/v1/metrics", "/loki/api/v1/push"} {
		if code := post(v.URL(v.UIAddr, p), "application/x-protobuf"); code != http.StatusNotFound {
			t.Errorf("UI port %s: %d, want 404", p, code)
		}
	}
	for _, ct := range []string{"", "text/plain"} {
		if code := post(v.MetricsURL("/api/v1/write"), ct); code != http.StatusUnsupportedMediaType {
			t.Errorf("remote write with Content-Type %q: %d, want 415", ct, code)
		}
		if code := post(v.URL(v.PyroscopeIngestAddr, "/ingest?name=x"), ct); code != http.StatusUnsupportedMediaType {
			t.Errorf("/ingest with Content-Type %q: %d, want 415", ct, code)
		}
	}
	if code := post(v.URL(v.PyroscopeIngestAddr, "/ingest?name=x"), "binary/octet-stream"); code != http.StatusOK {
		t.Errorf("/ingest folded lines as binary/octet-stream: %d, want 200", code)
	}
}
