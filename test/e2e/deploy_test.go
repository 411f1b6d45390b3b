package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/acme/pebbletest"
	"github.com/vispyr/vispyr/internal/deploy/sshdeploy/sshtest"
	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// vispyrCLI runs the built binary with stdin and returns its exit code and
// combined output.
func vispyrCLI(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.VispyrBinary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("vispyr %v timed out:\n%s", args, out.String())
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("vispyr %v: %v", args, err)
	}
	t.Logf("vispyr %v:\n%s", args[:2], out.String())
	return cmd.ProcessState.ExitCode(), out.String()
}

// `vispyr deploy ssh` against Debian's sshd on a host of its own (a network
// namespace): "no" at the prompt changes nothing; "yes" installs Vispyr, which
// telemetrygen then feeds over OTLP/gRPC with TLS and the printed token, and
// which answers PromQL over HTTPS with the self-signed certificate deploy made
// (401 without credentials) and the UI with the printed login; a re-run upgrades in
// place and keeps the data; destroy removes what deploy installed but the
// data, which only --purge deletes.
func TestDeploySSH(t *testing.T) {
	t.Parallel()
	sb := sshtest.New(t)
	root := t.TempDir()
	target := []string{"ssh", "root@" + sb.HostIP, "--identity", sb.Identity, "--known-hosts", sb.KnownHosts,
		"--root", root, "--run-as", "root"}
	deployArgs := append(append([]string{"deploy"}, target...), "--allow", sb.PeerIP+"/32")
	destroyArgs := append([]string{"destroy"}, target...)

	code, out := vispyrCLI(t, "no\n", deployArgs...)
	if code == 0 || !strings.Contains(out, "Plan: deploy") || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("deploy answered no: exit %d\n%s", code, out)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("deploy answered no left %d entries under the host's root: %v", len(entries), entries)
	}

	code, out = vispyrCLI(t, "yes\n", deployArgs...)
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	for _, want := range []string{"https://" + sb.HostIP + "/", "https://" + sb.HostIP + ":9090", "[1/"} {
		if !strings.Contains(out, want) {
			t.Fatalf("deploy output lacks %q:\n%s", want, out)
		}
	}
	token := printed(t, out, "API token (Bearer):")
	login := strings.Split(printed(t, out, "UI login:"), " / ")
	certFile := filepath.Join(root, "etc/vispyr/tls/cert.pem")
	anonymous := httpsClient(t, certFile, nil)
	client := httpsClient(t, certFile, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })

	// A real OTLP client over TLS, trusting only the deployed certificate.
	tg := testpeer.Binary(t, "telemetrygen")
	tgOut, err := exec.Command(tg, "metrics", "--otlp-endpoint="+sb.HostIP+":4317", "--ca-cert="+certFile,
		"--duration=2s", "--rate=5", "--metric-type=Gauge", "--otlp-metric-name=deploy_e2e",
		"--service=deploy-e2e", `--otlp-header=Authorization="Bearer `+token+`"`).CombinedOutput()
	if err != nil || strings.Contains(string(tgOut), "failed") {
		t.Fatalf("telemetrygen over TLS: %v\n%s", err, tgOut)
	}
	api := harness.NewAPI("https://" + sb.HostIP + ":9090")
	api.Client = client
	waitSeries(t, api, `deploy_e2e{job="deploy-e2e"}`, 3)
	if resp, err := anonymous.Get("https://" + sb.HostIP + ":9090/api/v1/query?query=up"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("query without credentials: want 401, got %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	ui := httpsClient(t, certFile, func(r *http.Request) { r.SetBasicAuth(login[0], login[1]) })
	if resp, err := ui.Get("https://" + sb.HostIP + "/"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("UI on 443 with the printed login %v: %v %v", login, resp, err)
	} else {
		resp.Body.Close()
	}

	// Re-running upgrades in place: restarted, same certificate and
	// credentials (not printed again), data kept.
	code, out = vispyrCLI(t, "", append(deployArgs, "--yes")...)
	if code != 0 || !strings.Contains(out, "upgrades it in place") || !strings.Contains(out, "restart Vispyr") ||
		strings.Contains(out, token) {
		t.Fatalf("re-run deploy: exit %d\n%s", code, out)
	}
	waitSeries(t, api, `deploy_e2e{job="deploy-e2e"}`, 3)

	code, out = vispyrCLI(t, "n\n", destroyArgs...)
	if code == 0 || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("destroy answered no: exit %d\n%s", code, out)
	}
	mustExist(t, filepath.Join(root, "usr/local/bin/vispyr"))
	code, out = vispyrCLI(t, "", append(destroyArgs, "--yes")...)
	if code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, out)
	}
	for _, gone := range []string{"usr/local/bin/vispyr", "etc/vispyr"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still there after destroy (%v)", gone, err)
		}
	}
	mustExist(t, filepath.Join(root, "var/lib/vispyr/metrics"))
	if resp, err := anonymous.Get("https://" + sb.HostIP + "/"); err == nil {
		resp.Body.Close()
		t.Fatal("Vispyr still answers after destroy")
	}

	// --purge deletes the data as well.
	if code, out = vispyrCLI(t, "", append(deployArgs, "--yes")...); code != 0 {
		t.Fatalf("second deploy: exit %d\n%s", code, out)
	}
	if code, out = vispyrCLI(t, "", append(destroyArgs, "--yes", "--purge")...); code != 0 {
		t.Fatalf("destroy --purge: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/vispyr")); !os.IsNotExist(err) {
		t.Fatalf("data directory still there after destroy --purge (%v)", err)
	}
}

// With --domain, the deployed Vispyr obtains its certificate through ACME
// (Pebble here, validating by TLS-ALPN-01 on the host's port 443) and serves
// it for that name; a client trusting only the CA's roots reaches the UI and
// the APIs.
func TestDeploySSHWithDomain(t *testing.T) {
	t.Parallel()
	sb := sshtest.New(t)
	pebble := pebbletest.StartOn(t, sb.PeerIP, sb.HostIP, 443)
	root := t.TempDir()
	target := []string{"ssh", "root@" + sb.HostIP, "--identity", sb.Identity, "--known-hosts", sb.KnownHosts,
		"--root", root, "--run-as", "root", "--yes"}
	// This side of the link is not among the allowed networks: where the host
	// has nftables, its ports but 443 are closed to it.
	code, out := vispyrCLI(t, "", append(append([]string{"deploy"}, target...), "--domain", "vispyr.test",
		"--email", "ops@vispyr.test", "--acme-directory", pebble.DirectoryURL, "--acme-directory-ca-file", pebble.CAFile,
		"--allow", "192.0.2.0/24")...)
	if code != 0 || !strings.Contains(out, "https://vispyr.test/") || !strings.Contains(out, "ACME") {
		t.Fatalf("deploy --domain: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/vispyr/tls/cert.pem")); !os.IsNotExist(err) {
		t.Errorf("deploy --domain wrote a self-signed certificate too (%v)", err)
	}
	token := printed(t, out, "API token (Bearer):")
	client := &http.Client{Timeout: 30 * time.Second, Transport: headerTransport{
		set:  func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) },
		base: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pebble.Roots(t), ServerName: "vispyr.test"}},
	}}
	urls := []string{"https://" + sb.HostIP + "/"}
	if strings.Contains(out, "nftables:") {
		if c, err := net.DialTimeout("tcp", sb.HostIP+":9090", 2*time.Second); err == nil {
			c.Close()
			t.Fatal("port 9090 answers a client outside --allow")
		}
	} else {
		t.Log("no nftables on this machine: the firewall is not checked")
		urls = append(urls, "https://"+sb.HostIP+":9090/api/v1/query?query=1")
	}
	for _, url := range urls {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s with the certificate from the ACME CA: %v", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", url, resp.Status)
		}
		if err := resp.TLS.PeerCertificates[0].VerifyHostname("vispyr.test"); err != nil {
			t.Fatal(err)
		}
	}
	if code, out = vispyrCLI(t, "", append(append([]string{"destroy"}, target...), "--purge")...); code != 0 {
		t.Fatalf("destroy --purge: exit %d\n%s", code, out)
	}
}

// printed returns the rest of the output line that starts with label.
func printed(t *testing.T, out, label string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), label); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("deploy did not print %q:\n%s", label, out)
	return ""
}

// headerTransport sets credentials on every request.
type headerTransport struct {
	set  func(*http.Request)
	base http.RoundTripper
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	h.set(r)
	return h.base.RoundTrip(r)
}

func httpsClient(t *testing.T, caFile string, set func(*http.Request)) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("deployed certificate: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	var rt http.RoundTripper = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	if set != nil {
		rt = headerTransport{set: set, base: rt}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: rt}
}

func mustExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s should exist: %v", path, err)
	}
}
