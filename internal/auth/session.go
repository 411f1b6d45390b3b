package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The UI's session endpoints and cookie. A browser logs in once with a user's
// name and password and then carries an opaque session cookie, instead of
// the basic-auth prompt a browser would otherwise show for every tab.
const (
	LoginPath   = "/auth/login"
	LogoutPath  = "/auth/logout"
	SessionPath = "/auth/session"
	// CSRFHeader carries the session's anti-forgery token on every request
	// that is not a GET or HEAD: a page of another site can make the browser
	// send the cookie but cannot read the token.
	CSRFHeader = "X-CSRF-Token"
	cookieName = "vispyr_session"
)

// DefaultSessionTTL is how long a UI session lasts when auth.session_ttl is unset.
const DefaultSessionTTL = 12 * time.Hour

// maxSessions bounds the session table; beyond it the oldest session is
// dropped, so a flood of logins cannot grow memory.
const maxSessions = 10000

// Sessions keeps the UI's logged-in browsers, in memory: a restart logs
// everyone out, which is the safe direction.
type Sessions struct {
	a      *Authenticator
	ttl    time.Duration
	secure bool // the UI port serves TLS: the cookie is Secure
	now    func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]*session // by SHA-256 of the cookie value
}

type session struct {
	id      Identity
	csrf    string
	expires time.Time
}

// NewSessions returns the session table of a; secure marks the cookie
// Secure (the UI port serves TLS).
func NewSessions(a *Authenticator, ttl time.Duration, secure bool) *Sessions {
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	return &Sessions{a: a, ttl: ttl, secure: secure, now: time.Now, m: map[[sha256.Size]byte]*session{}}
}

// SessionInfo is what the UI learns about its session: who is logged in, the
// tenants the user may switch between (the first is the default) and the
// token to send in X-CSRF-Token.
type SessionInfo struct {
	User    string   `json:"user"`
	Tenants []string `json:"tenants"`
	CSRF    string   `json:"csrfToken"`
	Expires string   `json:"expires"`
}

// HTTP serves the session endpoints and lets a request through with a valid
// session cookie (scope and tenant checked as for credentials, and the CSRF
// token on state-changing methods). Requests with an Authorization header,
// or without a session, are judged by the Authenticator as on every other
// port, so API clients of the UI port work as before.
func (s *Sessions) HTTP(rule Rule, next http.Handler) http.Handler {
	creds := s.a.HTTP(rule, next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case LoginPath:
			s.login(w, r)
			return
		case LogoutPath:
			s.logout(w, r)
			return
		case SessionPath:
			s.info(w, r)
			return
		}
		sess := s.lookup(r)
		if sess == nil || r.Header.Get("Authorization") != "" {
			if r.Header.Get("Authorization") == "" && rule(r) != Open {
				// No Basic challenge here: it would make the browser prompt
				// instead of letting the UI show its login page.
				w.Header().Set("WWW-Authenticate", `Bearer realm="vispyr"`)
				writeJSONError(w, http.StatusUnauthorized, "Unauthorized: log in first (or send credentials)")
				return
			}
			creds.ServeHTTP(w, r)
			return
		}
		scope := rule(r)
		if scope == Open {
			next.ServeHTTP(w, r)
			return
		}
		if !safeMethod(r.Method) {
			if err := checkCSRF(r, sess.csrf); err != nil {
				writeJSONError(w, http.StatusForbidden, "Forbidden: "+err.Error())
				return
			}
		}
		r = r.Clone(r.Context())
		tenant, err := sess.id.Authorize(scope, requestedTenant(r))
		if err != nil {
			writeJSONError(w, http.StatusForbidden, "Forbidden: "+err.Error())
			return
		}
		setTenant(r.Header, tenant)
		// The cookie stops here too: backends never see it.
		r.Header.Del("Cookie")
		next.ServeHTTP(w, r)
	})
}

// TenantParam names the tenant of a websocket upgrade (the UI's live tail):
// a browser cannot set headers on a WebSocket, so the page sends the tenant
// it switched to in the URL, checked against the user's tenants as the header is.
const TenantParam = "X-Scope-OrgID"

// requestedTenant is the tenant a session request asks for: the header, or
// on a websocket upgrade without it the URL parameter, which it removes so
// backends see the tenant only where they look for it.
func requestedTenant(r *http.Request) string {
	if t := r.Header.Get(TenantHeader); t != "" || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return t
	}
	q := r.URL.Query()
	t := q.Get(TenantParam)
	if q.Has(TenantParam) {
		q.Del(TenantParam)
		r.URL.RawQuery = q.Encode()
	}
	return t
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF refuses a state-changing request that a page of another site
// could have made: the token must match (double submit: the page got it from
// /auth/session, which another site cannot read), and what the browser says
// of the request's origin must be this site.
func checkCSRF(r *http.Request, want string) error {
	if err := sameSite(r); err != nil {
		return err
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errors.New("missing or wrong " + CSRFHeader + " (reload the page)")
	}
	return nil
}

// sameSite uses the headers browsers set and pages cannot forge:
// Sec-Fetch-Site, and Origin where older browsers send only that.
func sameSite(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return errors.New("cross-site request refused")
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return errors.New("cross-origin request refused")
		}
	}
	return nil
}

type loginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// login checks a user's name and password as basic auth does and starts a
// session. It answers JSON (the UI posts JSON), and refuses cross-site posts
// so another site cannot log a browser into an account of its choosing.
func (s *Sessions) login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if err := sameSite(r); err != nil {
		writeJSONError(w, http.StatusForbidden, "Forbidden: "+err.Error())
		return
	}
	var req loginRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeJSONError(w, http.StatusBadRequest, "want a JSON body {\"user\": …, \"password\": …}")
		return
	}
	id, err := s.a.basic(req.User, req.Password)
	if err != nil {
		if errors.Is(err, ErrBusy) {
			writeBusy(w)
			return
		}
		writeJSONError(w, http.StatusUnauthorized, "wrong user name or password")
		return
	}
	if !slices.Contains(id.Scopes, ScopeRead) {
		writeJSONError(w, http.StatusForbidden, "Forbidden: "+id.Name+" lacks the read scope the UI needs")
		return
	}
	cookie, sess := s.create(*id)
	http.SetCookie(w, s.cookie(cookie, sess.expires))
	writeJSON(w, http.StatusOK, sess.info())
}

// logout ends the session on the server (its cookie is refused from then on,
// wherever a copy of it went) and clears the browser's cookie.
func (s *Sessions) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	sess := s.lookup(r)
	if sess == nil {
		writeJSONError(w, http.StatusUnauthorized, "Unauthorized: no session")
		return
	}
	if err := checkCSRF(r, sess.csrf); err != nil {
		writeJSONError(w, http.StatusForbidden, "Forbidden: "+err.Error())
		return
	}
	if c, err := r.Cookie(cookieName); err == nil {
		s.mu.Lock()
		delete(s.m, sha256.Sum256([]byte(c.Value)))
		s.mu.Unlock()
	}
	http.SetCookie(w, s.cookie("", time.Unix(0, 0)))
	w.WriteHeader(http.StatusNoContent)
}

// info tells the UI whether it is logged in: 200 with the session, or 401.
func (s *Sessions) info(w http.ResponseWriter, r *http.Request) {
	sess := s.lookup(r)
	if sess == nil {
		writeJSONError(w, http.StatusUnauthorized, "Unauthorized: log in first")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, sess.info())
}

func (ss *session) info() SessionInfo {
	return SessionInfo{User: ss.id.Name, Tenants: ss.id.Tenants, CSRF: ss.csrf, Expires: ss.expires.UTC().Format(time.RFC3339)}
}

func (s *Sessions) cookie(value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: cookieName, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secure, Expires: expires}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(time.Until(expires).Seconds())
	}
	return c
}

func (s *Sessions) create(id Identity) (string, *session) {
	cookie, csrf := randomToken(), randomToken()
	now := s.now()
	sess := &session{id: id, csrf: csrf, expires: now.Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		s.evict(now)
	}
	s.m[sha256.Sum256([]byte(cookie))] = sess
	return cookie, sess
}

// evict drops expired sessions, and the one closest to expiry when none
// has expired. Called with mu held.
func (s *Sessions) evict(now time.Time) {
	var oldest [sha256.Size]byte
	var oldestAt time.Time
	for k, v := range s.m {
		if !v.expires.After(now) {
			delete(s.m, k)
			continue
		}
		if oldestAt.IsZero() || v.expires.Before(oldestAt) {
			oldest, oldestAt = k, v.expires
		}
	}
	if len(s.m) >= maxSessions {
		delete(s.m, oldest)
	}
}

// lookup returns the request's live session, or nil.
func (s *Sessions) lookup(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	k := sha256.Sum256([]byte(c.Value))
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.m[k]
	if sess == nil {
		return nil
	}
	if !sess.expires.After(s.now()) {
		delete(s.m, k)
		return nil
	}
	return sess
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONError answers in the shape the UI's API client already reads
// (Prometheus's envelope), so its error text shows as it is.
func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"status": "error", "error": msg})
}
