// Package sshdeploy installs Vispyr on any Linux host reachable over SSH, and
// removes it again: a binary, a config, a data directory, TLS, firewall rules and
// a systemd unit (or, on a host without systemd, a detached process).
package sshdeploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	path2 "path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// conn runs shell commands on the host, as root (through sudo -n when the login
// user is not root).
type conn struct {
	c    *ssh.Client
	sudo bool
}

// ParseTarget splits user@host[:port]; the user defaults to $USER, the port to 22.
func ParseTarget(target string) (user, addr string, err error) {
	user, host, ok := strings.Cut(target, "@")
	if !ok {
		host, user = target, os.Getenv("USER")
	}
	if host == "" || user == "" {
		return "", "", fmt.Errorf("target %q is not user@host[:port]", target)
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), "22")
	}
	return user, host, nil
}

// SSHOptions say how to reach and trust the host.
type SSHOptions struct {
	// IdentityFiles are private keys; with none, ~/.ssh/id_ed25519, id_ecdsa and
	// id_rsa are tried, and the agent at $SSH_AUTH_SOCK.
	IdentityFiles []string
	// KnownHosts is the known_hosts file that must hold the host's key
	// (default ~/.ssh/known_hosts). A host not listed there is refused.
	KnownHosts string
	Timeout    time.Duration
}

func dial(target string, o SSHOptions) (*conn, error) {
	user, addr, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	home, _ := os.UserHomeDir()
	khFile := o.KnownHosts
	if khFile == "" {
		khFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	hostKey, err := knownhosts.New(khFile)
	if err != nil {
		return nil, fmt.Errorf("read known hosts: %w (add the host with ssh-keyscan or ssh once)", err)
	}
	auth, err := authMethods(o.IdentityFiles, home)
	if err != nil {
		return nil, err
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: user, Auth: auth, HostKeyCallback: hostKey, Timeout: timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("ssh %s@%s: %w", user, addr, err)
	}
	return &conn{c: c, sudo: user != "root"}, nil
}

func authMethods(files []string, home string) ([]ssh.AuthMethod, error) {
	explicit := len(files) > 0
	if !explicit {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			files = append(files, filepath.Join(home, ".ssh", n))
		}
	}
	var signers []ssh.Signer
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			if explicit {
				return nil, fmt.Errorf("read identity: %w", err)
			}
			continue
		}
		s, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			if explicit {
				return nil, fmt.Errorf("parse identity %s: %w", f, err)
			}
			continue // a passphrase-protected key: the agent may hold it
		}
		signers = append(signers, s)
	}
	var methods []ssh.AuthMethod
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if a, err := net.Dial("unix", sock); err == nil {
			methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(a).Signers))
		}
	}
	if len(methods) == 0 {
		return nil, errors.New("no SSH key: pass --identity or run an ssh-agent")
	}
	return methods, nil
}

// run executes script with sh on the host, feeding stdin, and returns stdout.
// A failure carries the script's stderr.
func (c *conn) run(script string, stdin io.Reader) (string, error) {
	s, err := c.c.NewSession()
	if err != nil {
		return "", fmt.Errorf("open ssh session: %w", err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &stdout, &stderr, stdin
	cmd := "sh -c " + quote(script)
	if c.sudo {
		cmd = "sudo -n " + cmd
	}
	if err := s.Run(cmd); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// write puts data at path atomically (a temporary file renamed over it), so a
// running binary or a reader never sees half a file.
func (c *conn) write(path string, mode os.FileMode, owner string, data io.Reader) error {
	script := fmt.Sprintf(`set -e; mkdir -p %[1]s; t=%[2]s; umask 077; cat > "$t"; chmod %[3]o "$t"`,
		quote(path2.Dir(path)), quote(path+".vispyr-tmp"), mode)
	if owner != "" && owner != "root" {
		script += fmt.Sprintf(`; chown root:%s "$t"`, quote(owner))
	}
	script += fmt.Sprintf(`; mv -f "$t" %s`, quote(path))
	_, err := c.run(script, data)
	return err
}

func (c *conn) close() error { return c.c.Close() }

// quote makes s one shell word.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
