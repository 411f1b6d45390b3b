package deploy

import (
	"bytes"
	"debug/elf"
	"fmt"
)

// Unit is the systemd service every deploy target installs: Vispyr as its own
// user, allowed to bind 443 and nothing else, with the filesystem read-only but
// for its data directory.
type Unit struct {
	User, Binary, Config, DataDir string
	// ExecStartPre runs as root before every start ("" for none).
	ExecStartPre string
}

// Render writes the unit file.
func (u Unit) Render() string {
	var pre string
	if u.ExecStartPre != "" {
		pre = "ExecStartPre=+" + u.ExecStartPre + "\n"
	}
	return fmt.Sprintf(`# Written by vispyr deploy; vispyr destroy removes it.
[Unit]
Description=Vispyr: metrics, traces and profiles in one binary
After=network-online.target
Wants=network-online.target

[Service]
User=%[1]s
Group=%[1]s
%[2]sExecStart=%[3]s serve --config %[4]s
Restart=on-failure
RestartSec=5
TimeoutStopSec=60
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ReadWritePaths=%[5]s
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`, u.User, pre, u.Binary, u.Config, u.DataDir)
}

// CheckArch refuses a binary that cannot run on a host whose `uname -m` (or
// EC2 architecture name) is arch.
func CheckArch(bin []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("binary is not a Linux executable: %w", err)
	}
	want := map[string]elf.Machine{"x86_64": elf.EM_X86_64, "amd64": elf.EM_X86_64, "aarch64": elf.EM_AARCH64, "arm64": elf.EM_AARCH64}[arch]
	if want != 0 && f.Machine != want {
		return fmt.Errorf("binary is for %s, the host is %s: pass --binary built for it (GOARCH)", f.Machine, arch)
	}
	return nil
}
