package sshdeploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/vispyr/vispyr/internal/deploy"
)

// Options configure a deploy or destroy over SSH.
type Options struct {
	Target string // user@host[:port]
	SSH    SSHOptions
	// Domain, when set, makes Vispyr obtain its certificate through ACME (Let's
	// Encrypt unless ACMEDirectory says otherwise); without it a self-signed one is made.
	Domain, ACMEEmail, ACMEDirectory string
	// ACMEDirectoryCAFile is a CA on the host trusted for the ACME directory's HTTPS.
	ACMEDirectoryCAFile string
	// Binary is the local Vispyr binary to install (default: the running one).
	Binary string
	// Root prefixes every path on the host ("" is /).
	Root string
	// RunAs is the service's user ("vispyr" by default; created when missing).
	RunAs string
	// AllowCIDRs may reach the query and ingest ports; 443 is open to all.
	AllowCIDRs []string
	// Purge (destroy) also removes the data directory.
	Purge bool
	// Yes skips the confirmation; In and Out are the terminal.
	Yes bool
	In  io.Reader
	Out io.Writer
}

// Result is what a deploy prints at the end, returned for callers and tests.
type Result struct {
	Host        string
	URLs        map[string]string
	Credentials *deploy.Credentials // nil on an upgrade: the first deploy printed them
	CertPEM     []byte              // the self-signed certificate, nil with ACME
}

func (o *Options) defaults() error {
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find own binary: %w", err)
		}
		o.Binary = exe
	}
	if o.RunAs == "" {
		o.RunAs = "vispyr"
	}
	if o.Root == "" {
		o.Root = "/"
	}
	if o.In == nil {
		o.In = os.Stdin
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	for _, c := range o.AllowCIDRs {
		if _, _, err := net.ParseCIDR(c); err != nil {
			return fmt.Errorf("--allow %q is not a CIDR: %w", c, err)
		}
	}
	return nil
}

// Deploy installs or upgrades Vispyr on the host, after showing the plan and
// getting a yes.
func Deploy(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	fmt.Fprintf(o.Out, "Connecting to %s ...\n", o.Target)
	c, err := dial(o.Target, o.SSH)
	if err != nil {
		return nil, err
	}
	defer c.close()
	l := layout{root: o.Root}
	f, err := c.probe(l, o.RunAs)
	if err != nil {
		return nil, err
	}
	if err := deploy.CheckArch(bin, f.arch); err != nil {
		return nil, err
	}
	_, addr, _ := ParseTarget(o.Target)
	host, _, _ := net.SplitHostPort(addr)
	d := &deployment{o: o, c: c, l: l, f: f, bin: bin, host: host}
	plan, err := d.plan()
	if err != nil {
		return nil, err
	}
	plan.Print(o.Out)
	if err := deploy.Confirm(plan, o.In, o.Out, o.Yes); err != nil {
		return nil, err
	}
	if err := deploy.Execute(ctx, plan, o.Out); err != nil {
		return nil, err
	}
	res := d.result()
	printResult(o.Out, res, d)
	return res, nil
}

// deployment carries one deploy's decisions from planning to its steps.
type deployment struct {
	o     Options
	c     *conn
	l     layout
	f     facts
	bin   []byte
	host  string
	m     manifest
	creds *deploy.Credentials
	cert  []byte
}

func (d *deployment) plan() (deploy.Plan, error) {
	o, l, f := d.o, d.l, d.f
	upgrade := f.manifest != nil
	p := deploy.Plan{Action: "deploy", Target: o.Target}
	d.m = manifest{Version: 1, User: o.RunAs, Service: "process", Domain: o.Domain, Hosts: []string{d.host}}
	if f.systemd && o.Root == "/" {
		d.m.Service = "systemd"
	}
	if upgrade {
		old := f.manifest
		d.m.UserCreated, d.m.TokenSHA256, d.m.AdminUser, d.m.Bcrypt = old.UserCreated, old.TokenSHA256, old.AdminUser, old.Bcrypt
		p.Notes = append(p.Notes, "Vispyr is installed here: this upgrades it in place, keeping its data and credentials")
	} else {
		creds, err := deploy.NewCredentials("admin")
		if err != nil {
			return p, err
		}
		d.creds = &creds
		d.m.TokenSHA256, d.m.AdminUser, d.m.Bcrypt = creds.TokenSHA256, creds.User, creds.Bcrypt
	}
	run := func(script string) func(context.Context) error {
		return func(context.Context) error { _, err := d.c.run(script, nil); return err }
	}

	if o.RunAs != "root" && !f.userExists {
		d.m.UserCreated = true
		p.Steps = append(p.Steps, deploy.Step{
			Title: fmt.Sprintf("create system user %s", o.RunAs),
			Run:   run(fmt.Sprintf("useradd --system --no-create-home --home-dir %s --shell /usr/sbin/nologin %s", quote(l.data()), quote(o.RunAs))),
		})
	}
	p.Steps = append(p.Steps, deploy.Step{
		Title: fmt.Sprintf("create data directory %s (owner %s, mode 750)", l.data(), o.RunAs),
		Run:   run(fmt.Sprintf("set -e; mkdir -p %[1]s; chown %[2]s: %[1]s; chmod 750 %[1]s", quote(l.data()), quote(o.RunAs))),
	})
	sum := sha256.Sum256(d.bin)
	if hex.EncodeToString(sum[:]) != f.binarySum {
		verb := "install"
		if f.binarySum != "" {
			verb = "replace"
		}
		p.Steps = append(p.Steps, deploy.Step{
			Title: fmt.Sprintf("%s binary %s (%.1f MB)", verb, l.binary(), float64(len(d.bin))/1e6),
			Run: func(context.Context) error {
				return d.c.write(l.binary(), 0o755, "", bytes.NewReader(d.bin))
			},
		})
	} else {
		p.Notes = append(p.Notes, "the installed binary is already this one")
	}
	if o.Domain == "" && !f.certPresent {
		certPEM, keyPEM, err := deploy.SelfSigned([]string{d.host}, 5*365*24*time.Hour, time.Now())
		if err != nil {
			return p, err
		}
		d.cert = certPEM
		p.Steps = append(p.Steps, deploy.Step{
			Title: fmt.Sprintf("write a self-signed TLS certificate for %s to %s", d.host, l.cert()),
			Run: func(context.Context) error {
				if err := d.c.write(l.key(), 0o640, o.RunAs, bytes.NewReader(keyPEM)); err != nil {
					return err
				}
				return d.c.write(l.cert(), 0o644, "", bytes.NewReader(certPEM))
			},
		})
	}
	cfg, err := d.hostConfig().Render()
	if err != nil {
		return p, err
	}
	p.Steps = append(p.Steps, deploy.Step{
		Title: "write configuration " + l.config(),
		Run:   func(context.Context) error { return d.c.write(l.config(), 0o640, o.RunAs, bytes.NewReader(cfg)) },
	})
	fw, err := d.firewallSteps(&p)
	if err != nil {
		return p, err
	}
	p.Steps = append(p.Steps, fw...)
	p.Steps = append(p.Steps, d.serviceSteps(upgrade)...)
	p.Steps = append(p.Steps, deploy.Step{
		Title: "record the installation in " + l.manifest(),
		Run: func(context.Context) error {
			b, _ := json.MarshalIndent(d.m, "", "  ")
			return d.c.write(l.manifest(), 0o600, "", bytes.NewReader(b))
		},
	})
	if !deploy.Supports("auth") {
		p.Notes = append(p.Notes, "this Vispyr build has no auth section: the APIs answer whoever the firewall lets through")
	}
	return p, nil
}

func (d *deployment) hostConfig() deploy.HostConfig {
	h := deploy.HostConfig{
		DataDir: d.l.data(), CertFile: d.l.cert(), KeyFile: d.l.key(),
		TokenSHA256: d.m.TokenSHA256, User: d.m.AdminUser, Bcrypt: d.m.Bcrypt,
	}
	if d.o.Domain != "" {
		h.ACME = &deploy.ACME{
			Domains: []string{d.o.Domain}, Email: d.o.ACMEEmail, DirectoryURL: d.o.ACMEDirectory,
			DirectoryCAFile: d.o.ACMEDirectoryCAFile, CacheDir: d.l.data() + "/acme",
		}
	}
	return h
}

func (d *deployment) firewallSteps(p *deploy.Plan) ([]deploy.Step, error) {
	var old []string
	if d.f.manifest != nil {
		old = d.f.manifest.UFWRules
	}
	ports := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(restrictedPorts())), ", "), "[]")
	switch {
	case d.f.ufwActive:
		d.m.Firewall, d.m.UFWRules = "ufw", ufwRules(d.o.AllowCIDRs)
		return []deploy.Step{{
			Title: fmt.Sprintf("ufw: allow %d/tcp from anywhere, ports %s only from %s", deploy.UIPort, ports, cidrText(d.o.AllowCIDRs)),
			Run:   func(context.Context) error { _, err := d.c.run(ufwScript(d.m.UFWRules, old), nil); return err },
		}}, nil
	case d.f.nft:
		rules, err := nftRuleset(d.o.AllowCIDRs)
		if err != nil {
			return nil, err
		}
		d.m.Firewall = "nftables"
		p.Notes = append(p.Notes, "nftables: a table of Vispyr's own restricts its ports; it cannot open a port another table drops, so check that 443 is allowed")
		return []deploy.Step{{
			Title: fmt.Sprintf("nftables: table inet vispyr drops ports %s except from %s (%s)", ports, cidrText(d.o.AllowCIDRs), d.l.nft()),
			Run: func(context.Context) error {
				if err := d.c.write(d.l.nft(), 0o644, "", strings.NewReader(rules)); err != nil {
					return err
				}
				_, err := d.c.run("nft -f "+quote(d.l.nft()), nil)
				return err
			},
		}}, nil
	}
	p.Notes = append(p.Notes, fmt.Sprintf("no active firewall (ufw or nftables) on the host: ports %d and %s are reachable by whoever reaches the host; restrict them in your network", deploy.UIPort, ports))
	return nil, nil
}

func cidrText(cidrs []string) string {
	if len(cidrs) == 0 {
		return "nowhere (pass --allow CIDR)"
	}
	return strings.Join(cidrs, ", ")
}
