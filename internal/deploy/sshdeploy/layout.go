package sshdeploy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path"
	"strings"
)

// layout is where an installation lives on the host, under an optional root
// prefix (tests install under a directory so the real /etc and /usr stay untouched).
type layout struct {
	root string
}

func (l layout) p(abs string) string { return path.Join(l.root, abs) }

func (l layout) binary() string   { return l.p("/usr/local/bin/vispyr") }
func (l layout) etc() string      { return l.p("/etc/vispyr") }
func (l layout) config() string   { return l.p("/etc/vispyr/vispyr.yaml") }
func (l layout) cert() string     { return l.p("/etc/vispyr/tls/cert.pem") }
func (l layout) key() string      { return l.p("/etc/vispyr/tls/key.pem") }
func (l layout) nft() string      { return l.p("/etc/vispyr/nftables.conf") }
func (l layout) manifest() string { return l.p("/etc/vispyr/deploy.json") }
func (l layout) unit() string     { return l.p("/etc/systemd/system/vispyr.service") }
func (l layout) data() string     { return l.p("/var/lib/vispyr") }
func (l layout) pidFile() string  { return l.p("/run/vispyr.pid") }
func (l layout) logFile() string  { return l.p("/var/log/vispyr.log") }

// manifest records on the host what deploy installed, so a re-run upgrades the
// same installation and destroy removes exactly that.
type manifest struct {
	Version     int      `json:"version"`
	User        string   `json:"user"`         // the service's user
	UserCreated bool     `json:"user_created"` // deploy created it, destroy removes it
	Service     string   `json:"service"`      // "systemd" or "process"
	Firewall    string   `json:"firewall"`     // "ufw", "nftables" or ""
	UFWRules    []string `json:"ufw_rules,omitempty"`
	Domain      string   `json:"domain,omitempty"`
	Hosts       []string `json:"hosts"`
	TokenSHA256 string   `json:"token_sha256,omitempty"`
	AdminUser   string   `json:"admin_user,omitempty"`
	Bcrypt      string   `json:"bcrypt,omitempty"`
}

// facts are what the read-only probe learned about the host.
type facts struct {
	arch        string // uname -m
	systemd     bool
	ufwActive   bool
	nft         bool
	binarySum   string // sha256 of the installed binary, "" when none
	userExists  bool
	certPresent bool
	manifest    *manifest
}

func (c *conn) probe(l layout, user string) (facts, error) {
	script := fmt.Sprintf(`
echo "arch=$(uname -m)"
[ -d /run/systemd/system ] && echo systemd=yes
command -v ufw >/dev/null 2>&1 && ufw status 2>/dev/null | head -n1 | grep -q 'Status: active' && echo ufw=yes
command -v nft >/dev/null 2>&1 && echo nft=yes
[ -f %[1]s ] && echo "binary=$(sha256sum %[1]s | cut -d' ' -f1)"
id -u %[2]s >/dev/null 2>&1 && echo user=yes
[ -f %[3]s ] && echo cert=yes
[ -f %[4]s ] && echo "manifest=$(base64 -w0 %[4]s)"
true`, quote(l.binary()), quote(user), quote(l.cert()), quote(l.manifest()))
	out, err := c.run(script, nil)
	if err != nil {
		return facts{}, fmt.Errorf("probe host: %w", err)
	}
	var f facts
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "arch":
			f.arch = v
		case "systemd":
			f.systemd = true
		case "ufw":
			f.ufwActive = true
		case "nft":
			f.nft = true
		case "binary":
			f.binarySum = v
		case "user":
			f.userExists = true
		case "cert":
			f.certPresent = true
		case "manifest":
			m, err := decodeManifest(v)
			if err != nil {
				return facts{}, err
			}
			f.manifest = m
		}
	}
	return f, nil
}

func decodeManifest(b64 string) (*manifest, error) {
	var m manifest
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("read deploy manifest: %w", err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parse deploy manifest: %w", err)
	}
	return &m, nil
}
