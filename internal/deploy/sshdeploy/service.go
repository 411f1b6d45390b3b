package sshdeploy

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/vispyr/vispyr/internal/deploy"
)

// unit is the systemd service, the same on every deploy target.
func (d *deployment) unit() string {
	u := deploy.Unit{User: d.o.RunAs, Binary: d.l.binary(), Config: d.l.config(), DataDir: d.l.data()}
	if d.m.Firewall == "nftables" {
		// Re-applied at every start, so the rules survive a reboot.
		u.ExecStartPre = "/usr/sbin/nft -f " + d.l.nft()
	}
	return u.Render()
}

// startScript starts Vispyr, restarting a running one. Without systemd (a
// container, a test host) it runs detached with a pid file; it then does not come
// back after a reboot, which the plan says.
func (d *deployment) startScript() string {
	l := d.l
	if d.m.Service == "systemd" {
		return "set -e; systemctl daemon-reload; systemctl enable --quiet vispyr.service; systemctl restart vispyr.service"
	}
	drop := ""
	if d.o.RunAs != "root" {
		drop = fmt.Sprintf("setpriv --reuid=%[1]s --regid=%[1]s --init-groups --inh-caps=+net_bind_service --ambient-caps=+net_bind_service -- ", quote(d.o.RunAs))
	}
	return fmt.Sprintf(`set -e
%[1]s
mkdir -p "$(dirname %[2]s)" "$(dirname %[3]s)"
cd %[4]s
nohup setsid %[5]s%[6]s serve --config %[7]s >>%[3]s 2>&1 </dev/null &
echo $! > %[2]s`, stopProcessScript(l), quote(l.pidFile()), quote(l.logFile()), quote(l.data()), drop, quote(l.binary()), quote(l.config()))
}

// stopProcessScript stops a detached Vispyr and waits up to 60s for it to flush.
func stopProcessScript(l layout) string {
	return fmt.Sprintf(`if [ -f %[1]s ] && kill -0 "$(cat %[1]s)" 2>/dev/null; then
  pid=$(cat %[1]s); kill "$pid"
  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
fi
rm -f %[1]s`, quote(l.pidFile()))
}

func (d *deployment) serviceSteps(upgrade bool) []deploy.Step {
	l := d.l
	var steps []deploy.Step
	if d.m.Service == "systemd" {
		unit := d.unit()
		steps = append(steps, deploy.Step{
			Title: "write systemd unit " + l.unit(),
			Run:   func(context.Context) error { return d.c.write(l.unit(), 0o644, "", strings.NewReader(unit)) },
		})
	}
	verb := "start"
	if upgrade {
		verb = "restart"
	}
	how := "systemd unit vispyr.service, enabled at boot"
	if d.m.Service != "systemd" {
		how = "no systemd on this host: a detached process, pid in " + l.pidFile() + ", log in " + l.logFile() + "; not restarted at boot"
	}
	steps = append(steps,
		deploy.Step{Title: fmt.Sprintf("%s Vispyr (%s)", verb, how), Run: func(context.Context) error {
			_, err := d.c.run(d.startScript(), nil)
			return err
		}},
		deploy.Step{Title: "wait until Vispyr answers " + deploy.HealthURL, Run: func(context.Context) error {
			return d.waitReady()
		}},
	)
	return steps
}

func (d *deployment) waitReady() error {
	logs := "tail -n 30 " + quote(d.l.logFile())
	if d.m.Service == "systemd" {
		logs = "journalctl -u vispyr.service -n 30 --no-pager"
	}
	script := fmt.Sprintf(`i=0
while [ $i -lt 120 ]; do
  %[1]s healthcheck %[2]s 2>/dev/null && exit 0
  sleep 0.5; i=$((i+1))
done
echo "Vispyr did not become healthy in 60s; its last log lines:" >&2
%[3]s >&2
exit 1`, quote(d.l.binary()), deploy.HealthURL, logs)
	_, err := d.c.run(script, nil)
	return err
}

func (d *deployment) result() *Result {
	h := d.host
	if d.o.Domain != "" {
		h = d.o.Domain
	}
	r := &Result{Host: h, Credentials: d.creds, CertPEM: d.cert, URLs: map[string]string{
		"ui":          "https://" + h + "/",
		"prometheus":  "https://" + h + ":9090",
		"tempo":       "https://" + h + ":3200",
		"pyroscope":   "https://" + h + ":4040",
		"otlp_grpc":   h + ":4317",
		"otlp_http":   "https://" + h + ":4318",
		"pyro_ingest": "https://" + h + ":9999",
	}}
	return r
}

func printResult(w io.Writer, r *Result, d *deployment) {
	u := r.URLs
	fmt.Fprintf(w, "\nVispyr is running on %s.\n", d.o.Target)
	fmt.Fprintf(w, "  UI:                        %s\n", u["ui"])
	fmt.Fprintf(w, "  Grafana datasources:       Prometheus %s, Tempo %s, Pyroscope %s\n", u["prometheus"], u["tempo"], u["pyroscope"])
	fmt.Fprintf(w, "  OTLP:                      gRPC %s (TLS), HTTP %s\n", u["otlp_grpc"], u["otlp_http"])
	fmt.Fprintf(w, "  Pyroscope SDKs:            %s\n", u["pyroscope"])
	switch {
	case !deploy.Supports("auth"):
		fmt.Fprintln(w, "  credentials:               none (this build has no auth)")
	case r.Credentials != nil:
		fmt.Fprintf(w, "  UI login:                  %s / %s\n", r.Credentials.User, r.Credentials.Password)
		fmt.Fprintf(w, "  API token (Bearer):        %s\n", r.Credentials.Token)
		fmt.Fprintln(w, "  (shown once: the host keeps only their hashes)")
	default:
		fmt.Fprintln(w, "  credentials:               unchanged (printed by the first deploy)")
	}
	if d.o.Domain == "" {
		fmt.Fprintf(w, "  TLS: self-signed; trust it with: ssh %s cat %s > vispyr-ca.pem\n", d.o.Target, d.l.cert())
	} else {
		fmt.Fprintf(w, "  TLS: Vispyr obtains and renews the certificate for %s through ACME itself\n", d.o.Domain)
	}
}
