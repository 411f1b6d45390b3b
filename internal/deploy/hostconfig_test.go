package deploy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vispyr/vispyr/internal/config"
)

// The file deploy writes must be one that the deployed binary starts with: the
// real loader, with unknown keys refused, then validation.
func TestRenderedHostConfigLoads(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	creds, err := NewCredentials("admin")
	if err != nil {
		t.Fatal(err)
	}
	h := HostConfig{DataDir: filepath.Join(dir, "data"), CertFile: cert, KeyFile: key,
		TokenSHA256: creds.TokenSHA256, User: creds.User, Bcrypt: creds.Bcrypt}
	body, err := h.Render()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vispyr.yaml")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	if err := cfg.LoadFile(path); err != nil {
		t.Fatalf("rendered config:\n%s\nload: %v", body, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("rendered config:\n%s\nvalidate: %v", body, err)
	}
	if cfg.TLS.TLSCertPath != cert || cfg.TLS.TLSKeyPath != key {
		t.Fatalf("tls section not loaded: %+v", cfg.TLS)
	}
	if len(cfg.Auth.Tokens) != 1 || cfg.Auth.Tokens[0].SHA256 != creds.TokenSHA256 || len(cfg.Auth.Users) != 1 {
		t.Fatalf("auth section not loaded: %+v", cfg.Auth)
	}
}

// With a domain, the host's config asks for ACME instead of certificate files.
func TestRenderedHostConfigWithACMELoads(t *testing.T) {
	dir := t.TempDir()
	h := HostConfig{DataDir: filepath.Join(dir, "data"),
		ACME: &ACME{Domains: []string{"vispyr.example.com"}, Email: "ops@example.com", CacheDir: filepath.Join(dir, "data/acme")}}
	body, err := h.Render()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vispyr.yaml")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	if err := cfg.LoadFile(path); err != nil {
		t.Fatalf("rendered config:\n%s\nload: %v", body, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("rendered config:\n%s\nvalidate: %v", body, err)
	}
	if !cfg.ACME.Enabled() || cfg.ACME.Domains[0] != "vispyr.example.com" || cfg.TLS.TLSCertPath != "" {
		t.Fatalf("acme section not loaded: %+v, tls %+v", cfg.ACME, cfg.TLS)
	}
}
