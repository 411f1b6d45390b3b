package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// uiGate is the UI port as server.go builds it: the shell open, the rest read.
func uiGate(t *testing.T, secure bool) (*Sessions, http.Handler) {
	t.Helper()
	s := NewSessions(testAuth(t), time.Hour, secure)
	rule := func(r *http.Request) Scope {
		if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/prom/") {
			return Open
		}
		return ScopeRead
	}
	h := s.HTTP(rule, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What the backend sees: the tenant, never the cookie.
		w.Header().Set("X-Seen-Tenant", r.Header.Get(TenantHeader))
		w.Header().Set("X-Seen-Cookie", r.Header.Get("Cookie"))
		w.Header().Set("X-Seen-Query", r.URL.RawQuery)
	}))
	return s, h
}

func serve(h http.Handler, method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://vispyr.test"+path, strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// login returns the session cookie ("name=value") and the CSRF token.
func login(t *testing.T, h http.Handler) (string, string) {
	t.Helper()
	w := serve(h, "POST", LoginPath, `{"user":"alice","password":"s3cret"}`, map[string]string{"Origin": "http://vispyr.test", "Sec-Fetch-Site": "same-origin"})
	if w.Code != 200 {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	var info SessionInfo
	if err := json.Unmarshal(w.Body.Bytes(), &info); err != nil || info.CSRF == "" || info.User != "alice" || len(info.Tenants) != 2 {
		t.Fatalf("login answer %s: %v", w.Body, err)
	}
	c := w.Result().Cookies()[0]
	return c.Name + "=" + c.Value, info.CSRF
}

func TestSessionCookieAndLogin(t *testing.T) {
	for _, secure := range []bool{false, true} {
		_, h := uiGate(t, secure)
		w := serve(h, "POST", LoginPath, `{"user":"alice","password":"s3cret"}`, nil)
		cs := w.Result().Cookies()
		if w.Code != 200 || len(cs) != 1 {
			t.Fatalf("login: %d %v", w.Code, cs)
		}
		c := cs[0]
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != secure || c.MaxAge <= 0 || c.Path != "/" {
			t.Errorf("TLS %v: cookie %+v, want HttpOnly SameSite=Strict Secure=%v with Max-Age", secure, c, secure)
		}
	}
	_, h := uiGate(t, false)
	for _, tc := range []struct {
		body string
		hdr  map[string]string
		want int
	}{
		{`{"user":"alice","password":"wrong"}`, nil, 401},
		{`{"user":"mallory","password":"s3cret"}`, nil, 401},
		{`not json`, nil, 400},
		{`{"user":"alice","password":"s3cret"}`, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{`{"user":"alice","password":"s3cret"}`, map[string]string{"Origin": "https://evil.example"}, 403},
	} {
		w := serve(h, "POST", LoginPath, tc.body, tc.hdr)
		if w.Code != tc.want || len(w.Result().Cookies()) != 0 {
			t.Errorf("login %s %v: %d %s (cookies %v), want %d and no cookie", tc.body, tc.hdr, w.Code, w.Body, w.Result().Cookies(), tc.want)
		}
	}
	if w := serve(h, "GET", LoginPath, "", nil); w.Code != 405 {
		t.Errorf("GET login: %d, want 405", w.Code)
	}
}

func TestSessionRequests(t *testing.T) {
	s, h := uiGate(t, false)
	cookie, csrf := login(t, h)
	get := func(hdr map[string]string) *httptest.ResponseRecorder {
		hdr["Cookie"] = cookie
		return serve(h, "GET", "/prom/api/v1/labels", "", hdr)
	}
	if w := serve(h, "GET", "/prom/api/v1/labels", "", nil); w.Code != 401 || strings.Contains(w.Header().Get("WWW-Authenticate"), "Basic") {
		t.Errorf("no session: %d %q, want 401 without a Basic challenge (the browser would prompt)", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := serve(h, "GET", "/", "", nil); w.Code != 200 {
		t.Errorf("the shell without a session: %d, want 200", w.Code)
	}
	w := get(map[string]string{})
	if w.Code != 200 || w.Header().Get("X-Seen-Tenant") != "team-a" || w.Header().Get("X-Seen-Cookie") != "" {
		t.Errorf("session GET: %d tenant %q cookie %q, want 200 as team-a and no cookie passed on", w.Code, w.Header().Get("X-Seen-Tenant"), w.Header().Get("X-Seen-Cookie"))
	}
	if w := get(map[string]string{TenantHeader: "team-b"}); w.Code != 200 || w.Header().Get("X-Seen-Tenant") != "team-b" {
		t.Errorf("switched tenant: %d %q, want team-b", w.Code, w.Header().Get("X-Seen-Tenant"))
	}
	if w := get(map[string]string{TenantHeader: "team-c"}); w.Code != 403 || !strings.Contains(w.Body.String(), "team-c") {
		t.Errorf("a tenant not the user's: %d %s, want 403 naming it", w.Code, w.Body)
	}
	// A websocket (the UI's live tail) cannot carry headers: the tenant comes in the URL,
	// checked the same way, and the backend sees it only as the header.
	ws := func(path string) *httptest.ResponseRecorder {
		w := serve(h, "GET", path, "", map[string]string{"Cookie": cookie, "Upgrade": "websocket", "Connection": "Upgrade"})
		return w
	}
	if w := ws("/prom/api/v1/tail?query=x&X-Scope-OrgID=team-b"); w.Code != 200 || w.Header().Get("X-Seen-Tenant") != "team-b" || w.Header().Get("X-Seen-Query") != "query=x" {
		t.Errorf("websocket with tenant parameter: %d %q (query %q), want team-b and the parameter removed", w.Code, w.Header().Get("X-Seen-Tenant"), w.Header().Get("X-Seen-Query"))
	}
	if w := ws("/prom/api/v1/tail?query=x&X-Scope-OrgID=team-c"); w.Code != 403 || !strings.Contains(w.Body.String(), "team-c") {
		t.Errorf("websocket as a tenant not the user's: %d %s, want 403 naming it", w.Code, w.Body)
	}
	if w := get(map[string]string{}); w.Header().Get("X-Seen-Tenant") != "team-a" {
		t.Errorf("plain GET after a websocket: tenant %q, want the default team-a", w.Header().Get("X-Seen-Tenant"))
	}
	if w := serve(h, "GET", "/prom/api/v1/labels?X-Scope-OrgID=team-b", "", map[string]string{"Cookie": cookie}); w.Header().Get("X-Seen-Tenant") != "team-a" {
		t.Errorf("tenant parameter on a plain GET: %q, want it ignored (team-a): only websockets need it", w.Header().Get("X-Seen-Tenant"))
	}

	post := func(hdr map[string]string) int {
		hdr["Cookie"] = cookie
		return serve(h, "POST", "/prom/api/v1/query", "query=up", hdr).Code
	}
	for _, tc := range []struct {
		hdr  map[string]string
		want int
	}{
		{map[string]string{CSRFHeader: csrf, "Sec-Fetch-Site": "same-origin", "Origin": "http://vispyr.test"}, 200},
		{map[string]string{CSRFHeader: csrf}, 200}, // an older browser sending neither
		{map[string]string{}, 403},
		{map[string]string{CSRFHeader: wrongFirst(csrf)}, 403},
		{map[string]string{CSRFHeader: csrf, "Sec-Fetch-Site": "cross-site"}, 403},
		{map[string]string{CSRFHeader: csrf, "Sec-Fetch-Site": "same-site"}, 403},
		{map[string]string{CSRFHeader: csrf, "Origin": "http://evil.example"}, 403},
	} {
		if got := post(tc.hdr); got != tc.want {
			t.Errorf("POST with %v: %d, want %d", tc.hdr, got, tc.want)
		}
	}

	// Logout needs the token too, then the cookie is dead everywhere.
	if w := serve(h, "POST", LogoutPath, "", map[string]string{"Cookie": cookie}); w.Code != 403 {
		t.Errorf("logout without token: %d, want 403", w.Code)
	}
	w = serve(h, "POST", LogoutPath, "", map[string]string{"Cookie": cookie, CSRFHeader: csrf})
	if w.Code != 204 || len(w.Result().Cookies()) != 1 || w.Result().Cookies()[0].MaxAge >= 0 {
		t.Errorf("logout: %d %v, want 204 clearing the cookie", w.Code, w.Result().Cookies())
	}
	if w := get(map[string]string{}); w.Code != 401 {
		t.Errorf("old cookie after logout: %d, want 401", w.Code)
	}

	// A session ends at its expiry.
	cookie, _ = login(t, h)
	s.now = func() time.Time { return time.Now().Add(time.Hour + time.Second) }
	if w := get(map[string]string{}); w.Code != 401 {
		t.Errorf("expired session: %d, want 401", w.Code)
	}
	if w := serve(h, "GET", SessionPath, "", map[string]string{"Cookie": cookie}); w.Code != 401 {
		t.Errorf("expired session info: %d, want 401", w.Code)
	}
}

// A flood of distinct wrong passwords gets 429 with Retry-After once the
// password-check slots are taken, instead of one bcrypt per request on every
// core; a client whose password was checked before is not slowed.
func TestPasswordChecksAreCapped(t *testing.T) {
	pw, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Users: []User{{Name: "alice", Bcrypt: string(pw), Scopes: []Scope{ScopeRead}}}, MaxConcurrentPasswordChecks: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := a.HTTP(func(*http.Request) Scope { return ScopeRead }, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	if w := serve(h, "GET", "/", "", map[string]string{"Authorization": basic("alice", "s3cret")}); w.Code != 200 {
		t.Fatalf("good password: %d", w.Code)
	}
	const n = 24
	codes := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			codes[i] = serve(h, "GET", "/", "", map[string]string{"Authorization": basic("alice", "guess-"+string(rune('a'+i)))})
		})
	}
	// Meanwhile the known client gets through from the cache.
	if w := serve(h, "GET", "/", "", map[string]string{"Authorization": basic("alice", "s3cret")}); w.Code != 200 {
		t.Errorf("good password during the flood: %d, want 200", w.Code)
	}
	wg.Wait()
	var busy, refused int
	for _, w := range codes {
		switch w.Code {
		case 429:
			busy++
			if w.Header().Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		case 401:
			refused++
		default:
			t.Errorf("wrong password: %d", w.Code)
		}
	}
	t.Logf("%d wrong passwords at once with 1 check slot: %d checked (401), %d refused busy (429)", n, refused, busy)
	if busy == 0 || refused == 0 {
		t.Errorf("want some 401 and some 429, got %d and %d", refused, busy)
	}
}

// With every password-check slot taken, gRPC callers get RESOURCE_EXHAUSTED
// (which OTLP exporters retry) rather than Unauthenticated.
func TestPasswordChecksBusyOverGRPC(t *testing.T) {
	a := testAuth(t)
	for range cap(a.checks) {
		a.checks <- struct{}{}
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", basic("alice", "a new guess")))
	if _, err := a.authorizeGRPC(ctx, ScopeRead); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("busy over gRPC: %v, want ResourceExhausted", err)
	}
	<-a.checks
	if _, err := a.authorizeGRPC(ctx, ScopeRead); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a slot free again: %v, want Unauthenticated", err)
	}
}

// wrongFirst is token with its first character changed: prefixing "0" left a
// token that starts with "0" (one in sixteen) as it was.
func wrongFirst(token string) string {
	if strings.HasPrefix(token, "0") {
		return "1" + token[1:]
	}
	return "0" + token[1:]
}
