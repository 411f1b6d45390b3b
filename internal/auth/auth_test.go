package auth

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func testAuth(t *testing.T) *Authenticator {
	t.Helper()
	pw, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{
		Tokens: []Token{
			{Name: "agent", SHA256: HashToken("write-tok"), Scopes: []Scope{ScopeWrite}, Tenant: "team-a"},
			{Name: "default", SHA256: HashToken("default-tok"), Scopes: []Scope{ScopeRead}},
		},
		Users: []User{{Name: "alice", Bcrypt: string(pw), Scopes: []Scope{ScopeRead}, Tenants: []string{"team-a", "team-b"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestHTTP checks the answers a client sees and the tenant a handler sees.
func TestHTTP(t *testing.T) {
	a := testAuth(t)
	rule := func(r *http.Request) Scope {
		switch r.URL.Path {
		case "/-/ready":
			return Open
		case "/write":
			return ScopeWrite
		}
		return ScopeRead
	}
	h := a.HTTP(rule, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("credentials reached the handler")
		}
		w.Write([]byte("tenant=" + r.Header.Get(TenantHeader)))
	}))
	f := func(path, authz, tenant string, wantCode int, wantBody string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		if tenant != "" {
			req.Header.Set(TenantHeader, tenant)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		// A 200's body is exactly the tenant the handler saw.
		if rec.Code != wantCode || !strings.Contains(rec.Body.String(), wantBody) || (wantCode == 200 && rec.Body.String() != wantBody) {
			t.Errorf("%s %q tenant %q: %d %q, want %d %q", path, authz, tenant, rec.Code, rec.Body.String(), wantCode, wantBody)
		}
		if wantCode == 401 && len(rec.Header().Values("WWW-Authenticate")) == 0 {
			t.Errorf("%s: 401 without WWW-Authenticate", path)
		}
	}
	f("/-/ready", "", "", 200, "tenant=")
	f("/query", "", "", 401, "Unauthorized")
	f("/query", "Bearer nope", "", 401, "Unauthorized")
	f("/query", basic("alice", "wrong"), "", 401, "Unauthorized")
	f("/query", basic("mallory", "s3cret"), "", 401, "Unauthorized")
	f("/query", "Basic !!!", "", 401, "Unauthorized")
	// Scopes.
	f("/write", "Bearer write-tok", "", 200, "tenant=team-a")
	f("/query", "Bearer write-tok", "", 403, `"agent" lacks the read scope`)
	f("/write", basic("alice", "s3cret"), "", 403, "lacks the write scope")
	// Tenants: the token's own, a user's first or the one named, never another.
	f("/write", "bearer write-tok", "team-a", 200, "tenant=team-a")
	f("/write", "Bearer write-tok", "team-b", 403, `tenant "team-b"`)
	f("/query", basic("alice", "s3cret"), "", 200, "tenant=team-a")
	f("/query", basic("alice", "s3cret"), "team-b", 200, "tenant=team-b")
	f("/query", basic("alice", "s3cret"), "team-c", 403, `tenant "team-c"`)
	f("/query", "Bearer default-tok", "", 200, "tenant=")
	f("/query", "Bearer default-tok", "team-a", 403, `tenant "team-a"`)
}

// TestBcryptCached checks that a client sending the same credentials on
// every request pays bcrypt once, and that a changed password is not
// served from the cache.
func TestBcryptCached(t *testing.T) {
	pw, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), 12) // ~250 ms a check
	a, err := New(Config{Users: []User{{Name: "bob", Bcrypt: string(pw), Scopes: []Scope{ScopeRead}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(basic("bob", "s3cret")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 100 {
		if _, err := a.Authenticate(basic("bob", "s3cret")); err != nil {
			t.Fatal(err)
		}
	}
	// 100 uncached checks would take 25 s; cached ones take microseconds.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("100 cached checks took %s", d)
	}
	if _, err := a.Authenticate(basic("bob", "s3cre")); err == nil {
		t.Error("a different password passed")
	}
}

func TestValidate(t *testing.T) {
	f := func(c Config, want string) {
		t.Helper()
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", c, err, want)
		}
	}
	good := HashToken("x")
	f(Config{Tokens: []Token{{Name: "a", SHA256: "abc", Scopes: []Scope{ScopeRead}}}}, "tokens[0].sha256")
	f(Config{Tokens: []Token{{Name: "a", SHA256: good, Scopes: []Scope{"root"}}}}, `"root" is not one of`)
	f(Config{Tokens: []Token{{Name: "a", SHA256: good}}}, "at least one")
	f(Config{Tokens: []Token{{SHA256: good, Scopes: []Scope{ScopeRead}}}}, "tokens[0].name")
	f(Config{Users: []User{{Name: "u", Bcrypt: "plain", Scopes: []Scope{ScopeRead}}}}, "users[0].bcrypt")
}
