package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/vispyr/vispyr/internal/deploy"
	"github.com/vispyr/vispyr/internal/deploy/sshdeploy"
)

const deployUsage = `Usage: vispyr deploy ssh [user@]host[:port] [flags]

Installs Vispyr on a Linux host over SSH, or upgrades the one installed there:
the binary, a config, a data directory, TLS (ACME with --domain, self-signed
otherwise), firewall rules (ufw or nftables, when active) and a systemd unit.
The plan is shown and confirmed before anything changes; the URLs and
credentials are printed at the end.

On AWS: vispyr deploy aws --help.

Flags:
`

const destroyUsage = `Usage: vispyr destroy ssh [user@]host[:port] [flags]

Removes what vispyr deploy installed on the host; the data directory stays
unless --purge is given. The plan is shown and confirmed first.
On AWS: vispyr destroy aws --help.

Flags:
`

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// deployCmd runs `vispyr deploy` (destroy false) or `vispyr destroy`.
func deployCmd(args []string, destroy bool) int {
	name, usage := "deploy", deployUsage
	if destroy {
		name, usage = "destroy", destroyUsage
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	var o sshdeploy.Options
	var identities, allow listFlag
	port := fs.Int("port", 0, "SSH port (default 22, or the one in the target)")
	fs.Var(&identities, "identity", "SSH private key file (repeatable; default ~/.ssh/id_* and the ssh-agent)")
	fs.StringVar(&o.SSH.KnownHosts, "known-hosts", "", "known_hosts file that must list the host (default ~/.ssh/known_hosts)")
	fs.BoolVar(&o.Yes, "yes", false, "do not ask for confirmation (for scripts)")
	fs.StringVar(&o.Root, "root", "", "install under this directory of the host instead of / (tests; no systemd unit then)")
	fs.StringVar(&o.RunAs, "run-as", "vispyr", "user the service runs as (created when missing)")
	if destroy {
		fs.BoolVar(&o.Purge, "purge", false, "also delete the data directory")
	} else {
		fs.StringVar(&o.Domain, "domain", "", "DNS name of the host: Vispyr obtains a certificate for it through ACME (Let's Encrypt) on port 443")
		fs.StringVar(&o.ACMEEmail, "email", "", "e-mail address the ACME CA sends expiry notices to")
		fs.StringVar(&o.ACMEDirectory, "acme-directory", "", "ACME directory URL (default Let's Encrypt production)")
		fs.StringVar(&o.ACMEDirectoryCAFile, "acme-directory-ca-file", "", "CA file on the host trusted for the ACME directory's HTTPS (private CAs)")
		fs.StringVar(&o.Binary, "binary", "", "Vispyr binary to install (default: this one; build with GOARCH for another architecture)")
		fs.Var(&allow, "allow", "CIDR allowed to reach the ingest and query ports (repeatable); 443 is open to all")
	}

	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fs.SetOutput(os.Stdout)
		fmt.Print(usage)
		fs.PrintDefaults()
		return 0
	}
	if len(args) > 0 && args[0] == "aws" {
		return awsCmd(args[1:], destroy)
	}
	if len(args) == 0 || args[0] != "ssh" {
		fmt.Fprintf(os.Stderr, "vispyr %s: the target kind comes first: vispyr %s ssh user@host, or vispyr %s aws\n", name, name, name)
		return 2
	}
	target, err := parseTargetArgs(fs, args[1:])
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vispyr %s: %v\n", name, err)
		return 2
	}
	if *port != 0 {
		if target, err = withPort(target, *port); err != nil {
			fmt.Fprintf(os.Stderr, "vispyr %s: %v\n", name, err)
			return 2
		}
	}
	o.Target, o.SSH.IdentityFiles, o.AllowCIDRs = target, identities, allow

	return runDeployment(name, func(ctx context.Context) error {
		if destroy {
			return sshdeploy.Destroy(ctx, o)
		}
		_, err := sshdeploy.Deploy(ctx, o)
		return err
	})
}

// runDeployment runs a deploy or destroy until it ends or is interrupted and
// turns the outcome into an exit code: 1 both when it failed and when the
// user answered "no" (said as such, not as an error).
func runDeployment(name string, do func(ctx context.Context) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := do(ctx)
	if errors.Is(err, deploy.ErrDeclined) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vispyr %s: %v\n", name, err)
		return 1
	}
	return 0
}

// parseTargetArgs takes the one positional target from among the flags, which
// may come before or after it.
func parseTargetArgs(fs *flag.FlagSet, args []string) (string, error) {
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(os.Stderr)
	var target string
	for {
		if err := fs.Parse(args); err != nil {
			if err != flag.ErrHelp {
				return "", err
			}
			fs.SetOutput(os.Stderr)
			fs.Usage()
			return "", err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if target != "" {
			return "", fmt.Errorf("one target expected, got %q and %q", target, rest[0])
		}
		target, args = rest[0], rest[1:]
	}
	if target == "" {
		return "", errors.New("missing target user@host")
	}
	return target, nil
}

// withPort sets the SSH port of a user@host target.
func withPort(target string, port int) (string, error) {
	user, host, hasUser := strings.Cut(target, "@")
	if !hasUser {
		user, host = "", target
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		return "", fmt.Errorf("the target %q has a port already; drop --port or the :port", target)
	}
	host = net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port))
	if hasUser {
		return user + "@" + host, nil
	}
	return host, nil
}
