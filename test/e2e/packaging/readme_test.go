package packaging

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// notRunnable are the README's shell examples this test cannot run, by a
// substring of the block, with the reason.
var notRunnable = map[string]string{
	"make run":                              "builds the UI and serves until stopped; this test starts the same `vispyr serve` with embedded defaults itself",
	"vispyr gateway --data-dir=gw":          "serves until stopped, on the ingest ports of the `vispyr serve` this test runs, and forwards to a VictoriaMetrics the README assumes; test/e2e's gateway tests run it against real destinations",
	"docker compose up":                     "needs a Docker engine, which this machine does not have (the compose file is checked in compose_test.go)",
	"vispyr deploy ssh":                     "needs an SSH host of the reader's; test/e2e TestDeploySSH runs deploy, re-deploy and destroy against Debian's sshd in a network namespace",
	"vispyr deploy aws":                     "needs an AWS account; internal/deploy/awsdeploy runs deploy, re-run and destroy with the AWS SDK against MinIO and an EC2/IAM test server",
	"vispyr serve --prometheus.config.file": "serves until stopped, on the ports of the `vispyr serve` this test runs; test/e2e/alerting runs it with a prometheus.yml, node_exporter and Alertmanager",
	"vispyr auth new-token":                 "serves until stopped, with a certificate and secrets of the reader's, on the ports of the `vispyr serve` this test runs; test/e2e TestAuthRealClients and TestAuthRouteScan run the same auth: and tls: sections with real clients",
	"helm install":                          "needs a Kubernetes cluster; deploy/helm renders the chart with helm for both modes and decodes every manifest against the Kubernetes API types",
}

// wantOutput is what a block must print, beyond exiting 0, so that an example
// that "works" but finds nothing (a search matching none of telemetrygen's
// spans) fails too.
var wantOutput = map[string][]string{
	"api/v1/query?query=up":   {`"status":"success"`},
	"duration>100us":          {`"rootServiceName":"checkout"`},
	"api/v2/traces/$TRACE_ID": {`checkout`, `"spans"`},
	"api/metrics/query_range": {`resource.service.name`, `checkout`},
	"promtool check config":   {`SUCCESS`, `vispyr`},
	"loki/api/v1/query_range": {`"resultType":"streams"`, `payment-failed`, `"status":"502"`},
	"count_over_time":         {`"resultType":"vector"`, `"app":"checkout"`},
}

type example struct {
	line int
	code string
}

// shellExamples returns every ```sh block of README.md.
func shellExamples(t *testing.T) []example {
	t.Helper()
	var out []example
	fence := regexp.MustCompile("(?ms)^```(sh|bash|shell)\n(.*?)^```")
	readme := string(repoFile(t, "README.md"))
	for _, m := range fence.FindAllStringSubmatchIndex(readme, -1) {
		out = append(out, example{line: strings.Count(readme[:m[0]], "\n") + 1, code: readme[m[4]:m[5]]})
	}
	if len(out) < 5 {
		t.Fatalf("found only %d shell examples in README.md", len(out))
	}
	return out
}

// TestReadmeShellExamplesRun runs every shell example of README.md as printed,
// in order, against `vispyr serve` on its default ports. The default ports are
// other tests' to share, so Vispyr and the examples run in a network namespace
// of their own (a loopback of their own). curl is made to fail on HTTP errors.
func TestReadmeShellExamplesRun(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to create a network namespace (ip netns add) for the default ports")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip for a network namespace")
	}
	for _, tool := range []string{"telemetrygen", "promtool", "jq", "curl"} {
		testpeer.Binary(t, tool)
	}
	ns := fmt.Sprintf("vispyr-readme-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	inNS := func(ctx context.Context, name string, args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	}
	if out, err := inNS(context.Background(), "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("loopback up: %v: %s", err, out)
	}

	// Vispyr as `make run` starts it: embedded defaults, data in ./data.
	work := t.TempDir()
	ctx, stop := context.WithCancel(context.Background())
	var log bytes.Buffer
	srv := inNS(ctx, harness.VispyrBinary(t), "serve")
	srv.Dir, srv.Stdout, srv.Stderr = work, &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		srv.Wait()
		if t.Failed() {
			t.Logf("vispyr log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for inNS(context.Background(), "curl", "-sf", "http://127.0.0.1:12345/-/ready").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("vispyr not ready on its default ports:\n%s", log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	path := os.Getenv("PATH")
	for _, tool := range []string{"telemetrygen", "promtool"} {
		path = filepath.Dir(testpeer.Binary(t, tool)) + ":" + path
	}
	// curl as printed, but an HTTP error is a failed example.
	bashEnv := filepath.Join(work, "bash_env")
	if err := os.WriteFile(bashEnv, []byte("curl() { command curl --fail-with-body \"$@\"; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, ex := range shellExamples(t) {
		if reason := skipReason(ex.code); reason != "" {
			t.Logf("README.md:%d not run: %s", ex.line, reason)
			continue
		}
		ran++
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := inNS(ctx, "bash", "-eo", "pipefail", "-c", ex.code)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "PATH="+path, "BASH_ENV="+bashEnv)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("README.md:%d failed (%v):\n%s\n--- output ---\n%s", ex.line, err, ex.code, out)
			continue
		}
		t.Logf("README.md:%d ran in %v", ex.line, time.Since(start).Round(10*time.Millisecond))
		for key, wants := range wantOutput {
			if !strings.Contains(ex.code, key) {
				continue
			}
			for _, w := range wants {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("README.md:%d printed no %s:\n%s\n--- output ---\n%.2000s", ex.line, w, ex.code, out)
				}
			}
		}
	}
	if ran < 4 {
		t.Fatalf("only %d README examples ran", ran)
	}
}

func skipReason(code string) string {
	for key, reason := range notRunnable {
		if strings.Contains(code, key) {
			return reason
		}
	}
	return ""
}
