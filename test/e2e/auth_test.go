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
