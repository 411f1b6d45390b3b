package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// Scope is what a credential may do: write (ingest), read (query and the UI)
// or admin (/debug/pprof, the status page, /metrics, reloads). Scopes do not
// imply one another.
type Scope string

// The scopes a route may need.
const (
	ScopeWrite Scope = "write"
	ScopeRead  Scope = "read"
	ScopeAdmin Scope = "admin"
)

// Config is the `auth:` section. When it names any token or user, every
// listener but health asks for credentials.
type Config struct {
	// Tokens are bearer tokens (`Authorization: Bearer <token>`), stored as the
	// hex SHA-256 of the token (`vispyr auth hash-token`).
	Tokens []Token `yaml:"tokens"`
	// Users are basic-auth users; passwords are stored as bcrypt hashes
	// (`vispyr auth hash-password`), as in Prometheus's web config.
	Users []User `yaml:"users"`
	// SessionTTL is how long a UI login lasts (0: 12h).
	SessionTTL time.Duration `yaml:"session_ttl"`
	// MaxConcurrentPasswordChecks caps the bcrypt comparisons running at
	// once, so a flood of wrong passwords cannot take every core; a request
	// that waits too long for one gets 429 with Retry-After. 0: half the
	// CPUs, at least 1.
	MaxConcurrentPasswordChecks int `yaml:"max_concurrent_password_checks"`
}

// Token is one bearer token.
type Token struct {
	// Name identifies the token in logs and refusals.
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the token, never the token itself.
	SHA256 string `yaml:"sha256"`
	// Scopes are what the token may do: write, read, admin.
	Scopes []Scope `yaml:"scopes"`
	// Tenant is the only tenant the token writes or reads as (empty: the
	// default tenant, as requests without X-Scope-OrgID).
	Tenant string `yaml:"tenant"`
}

// User is one basic-auth user.
type User struct {
	// Name is the basic-auth user name.
	Name string `yaml:"name"`
	// Bcrypt is the bcrypt hash of the password.
	Bcrypt string `yaml:"bcrypt"`
	// Scopes are what the user may do: write, read, admin.
	Scopes []Scope `yaml:"scopes"`
	// Tenants are those the user may act as; X-Scope-OrgID picks one, the
	// first when absent (empty: the default tenant only).
	Tenants []string `yaml:"tenants"`
}

// Enabled reports whether the section asks for credentials.
func (c Config) Enabled() bool { return len(c.Tokens)+len(c.Users) > 0 }

// Validate names the first bad entry.
func (c Config) Validate() error {
	if c.SessionTTL < 0 || c.MaxConcurrentPasswordChecks < 0 {
		return errors.New("session_ttl, max_concurrent_password_checks: must not be negative")
	}
	names := map[string]bool{}
	for i, t := range c.Tokens {
		if t.Name == "" {
			return fmt.Errorf("tokens[%d].name: must not be empty", i)
		}
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("tokens[%d].sha256: want 64 hex digits (vispyr auth hash-token prints them)", i)
		}
		if err := validScopes(t.Scopes); err != nil {
			return fmt.Errorf("tokens[%d].scopes: %w", i, err)
		}
		if names[t.Name] {
			return fmt.Errorf("tokens[%d].name: %q is used twice", i, t.Name)
		}
		names[t.Name] = true
	}
	users := map[string]bool{}
	for i, u := range c.Users {
		if u.Name == "" || strings.Contains(u.Name, ":") {
			return fmt.Errorf("users[%d].name: must be set and hold no colon", i)
		}
		if _, err := bcrypt.Cost([]byte(u.Bcrypt)); err != nil {
			return fmt.Errorf("users[%d].bcrypt: not a bcrypt hash (vispyr auth hash-password prints one): %w", i, err)
		}
		if err := validScopes(u.Scopes); err != nil {
			return fmt.Errorf("users[%d].scopes: %w", i, err)
		}
		if users[u.Name] {
			return fmt.Errorf("users[%d].name: %q is used twice", i, u.Name)
		}
		users[u.Name] = true
	}
	return nil
}

func validScopes(s []Scope) error {
	if len(s) == 0 {
		return errors.New("name at least one of write, read, admin")
	}
	for _, v := range s {
		if v != ScopeWrite && v != ScopeRead && v != ScopeAdmin {
			return fmt.Errorf("%q is not one of write, read, admin", v)
		}
	}
	return nil
}

// Identity is who a request proved to be.
type Identity struct {
	Name    string
	Scopes  []Scope
	Tenants []string // first is the default; never empty
}

// Authenticator checks credentials against the `auth:` section.
type Authenticator struct {
	tokens []tokenEntry
	users  map[string]*User
	cache  *verified
	checks chan struct{} // one slot per bcrypt comparison allowed at once
}

type tokenEntry struct {
	sum [sha256.Size]byte
	id  Identity
}

// New builds the authenticator of c, or nil when c asks for no credentials.
func New(c Config) (*Authenticator, error) {
	if !c.Enabled() {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	n := c.MaxConcurrentPasswordChecks
	if n == 0 {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	a := &Authenticator{users: map[string]*User{}, cache: newVerified(4096), checks: make(chan struct{}, n)}
	for _, t := range c.Tokens {
		e := tokenEntry{id: Identity{Name: t.Name, Scopes: t.Scopes, Tenants: []string{tenantOrDefault(t.Tenant)}}}
		b, _ := hex.DecodeString(t.SHA256)
		copy(e.sum[:], b)
		a.tokens = append(a.tokens, e)
	}
	for i := range c.Users {
		a.users[c.Users[i].Name] = &c.Users[i]
	}
	return a, nil
}

func tenantOrDefault(t string) string {
	if t == "" {
		return pipeline.DefaultTenant
	}
	return t
}

// ErrUnauthenticated is returned for missing or wrong credentials.
var ErrUnauthenticated = errors.New("missing or wrong credentials")

// Authenticate checks an Authorization header value (Bearer or Basic).
func (a *Authenticator) Authenticate(authorization string) (*Identity, error) {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer") && cred != "":
		return a.token(cred)
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return nil, ErrUnauthenticated
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, ErrUnauthenticated
		}
		return a.basic(user, pass)
	}
	return nil, ErrUnauthenticated
}

// token compares the token's SHA-256 with every configured one in constant
// time, without stopping at a match, so timing tells nothing about which.
func (a *Authenticator) token(tok string) (*Identity, error) {
	sum := sha256.Sum256([]byte(tok))
	var found *Identity
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].sum[:]) == 1 {
			found = &a.tokens[i].id
		}
	}
	if found == nil {
		return nil, ErrUnauthenticated
	}
	return found, nil
}

// dummyHash keeps an unknown user as slow to refuse as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("vispyr"), bcrypt.DefaultCost)

// basic checks a user's password. bcrypt costs tens of milliseconds by design,
// too much for every request of a client that sends the same credentials each
// time, so verified results are remembered (keyed by a hash of user, password
// and stored hash, never the password itself), as exporter-toolkit does.
func (a *Authenticator) basic(user, pass string) (*Identity, error) {
	u := a.users[user]
	stored := dummyHash
	if u != nil {
		stored = []byte(u.Bcrypt)
	}
	key := cacheKey(user, pass, stored)
	ok, cached := a.cache.get(key)
	if !cached {
		if !a.acquireCheck() {
			return nil, ErrBusy
		}
		ok = bcrypt.CompareHashAndPassword(stored, []byte(pass)) == nil && u != nil
		<-a.checks
		a.cache.put(key, ok)
	}
	if !ok || u == nil {
		return nil, ErrUnauthenticated
	}
	tenants := u.Tenants
	if len(tenants) == 0 {
		tenants = []string{pipeline.DefaultTenant}
	}
	return &Identity{Name: u.Name, Scopes: u.Scopes, Tenants: tenants}, nil
}

// ErrBusy is returned when every password-check slot stayed taken for
// checkWait: answered 429 with Retry-After.
var ErrBusy = errors.New("too many password checks at once, retry later")

// checkWait is how long a password check waits for a slot: long enough for
// a burst of honest clients to queue through, short enough that a flood is
// refused instead of piling up.
const checkWait = 250 * time.Millisecond

func (a *Authenticator) acquireCheck() bool {
	select {
	case a.checks <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(checkWait)
	defer t.Stop()
	select {
	case a.checks <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func cacheKey(user, pass string, stored []byte) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range [][]byte{[]byte(user), []byte(pass), stored} {
		// Length prefixes keep ("ab","c") and ("a","bc") apart.
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// Denied is a refusal of an authenticated request: the scope or tenant it
// asked for is not the credential's.
type Denied struct{ msg string }

func (d *Denied) Error() string { return d.msg }

// Authorize checks that id holds scope and may act as the tenant the request
// names (empty: id's first tenant), and returns the tenant to use.
func (id *Identity) Authorize(scope Scope, tenant string) (string, error) {
	if !slices.Contains(id.Scopes, scope) {
		return "", &Denied{fmt.Sprintf("%q lacks the %s scope", id.Name, scope)}
	}
	if tenant == "" {
		return id.Tenants[0], nil
	}
	if !slices.Contains(id.Tenants, tenant) {
		return "", &Denied{fmt.Sprintf("%q may not act as tenant %q (X-Scope-OrgID)", id.Name, tenant)}
	}
	return tenant, nil
}
