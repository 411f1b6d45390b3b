package awsdeploy

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Options configure a deploy or destroy on AWS.
type Options struct {
	// Name tells deployments apart: resources are named vispyr-<Name> and the
	// state file is aws-<Name>.json.
	Name   string
	Region string
	// AllowCIDRs may reach the query and ingest ports; 443 is open to all.
	// Empty on a re-run keeps the deployment's.
	AllowCIDRs []string
	// Domain, when set, makes Vispyr obtain its certificate through ACME; its DNS
	// A record must point at the elastic IP. Without it a self-signed one is made.
	Domain, Email string
	InstanceType  string
	// DiskGB is the root volume's size: metrics, profiles and logs live there.
	DiskGB int32
	// Retention is how long traces are kept: the deployed config's
	// traces.retention and the bucket's lifecycle rule (0: the deployment's,
	// 30 days for a new one).
	Retention time.Duration
	// Binary is the Vispyr binary to install (default: the running one).
	Binary string
	// StateDir holds aws-<Name>.json (default ~/.config/vispyr).
	StateDir string
	// Purge (destroy) also empties and deletes the trace bucket.
	Purge bool
	// Yes skips the confirmation; In and Out are the terminal.
	Yes bool
	In  io.Reader
	Out io.Writer

	// AWS replaces the configuration loaded the standard way (tests).
	AWS       *aws.Config
	Endpoints Endpoints
	// Poll is how often instance states are read while waiting (default 5s).
	Poll time.Duration
	// Ready waits until the instance serves; the default dials ip:443 for up to
	// 10 minutes.
	Ready func(ctx context.Context, ip string) error
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,29}$`)

func (o *Options) defaults() error {
	if o.Name == "" {
		o.Name = "vispyr"
	}
	if !nameRE.MatchString(o.Name) {
		return fmt.Errorf("--name %q: lower-case letters, digits and dashes, at most 30", o.Name)
	}
	if o.InstanceType == "" {
		o.InstanceType = "t3.small"
	}
	if o.DiskGB == 0 {
		o.DiskGB = 30
	}
	if o.Retention != 0 && o.Retention < 24*time.Hour {
		return fmt.Errorf("--retention %s: at least 24h (the bucket's lifecycle counts in days)", o.Retention)
	}
	if o.StateDir == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("find config directory: %w", err)
		}
		o.StateDir = filepath.Join(dir, "vispyr")
	}
	if o.In == nil {
		o.In = os.Stdin
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Poll == 0 {
		o.Poll = 5 * time.Second
	}
	if o.Ready == nil {
		o.Ready = dialReady
	}
	for _, c := range o.AllowCIDRs {
		if _, _, err := net.ParseCIDR(c); err != nil {
			return fmt.Errorf("--allow %q is not a CIDR: %w", c, err)
		}
	}
	return nil
}

// retentionDays is the lifecycle rule's expiration: whole days, rounded up, so
// the store's own retention always deletes a block first.
func (o *Options) retentionDays() int32 {
	return int32((o.Retention + 24*time.Hour - 1) / (24 * time.Hour))
}

// dialReady waits until something accepts TLS connections on ip:443: the
// instance has booted, installed Vispyr and started it.
func dialReady(ctx context.Context, ip string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, "443"))
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing answers on %s:443 after 10 minutes (the instance's console output shows its boot log): %w", ip, err)
		case <-time.After(5 * time.Second):
		}
	}
}
