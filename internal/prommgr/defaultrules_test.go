package prommgr

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The shipped rules must be a rule file that Prometheus's own checker accepts,
// with the defaults and with thresholds a user sets.
func TestPromtoolAcceptsTheDefaultRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found; .ci/install.d/10-peers.sh installs it")
		}
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	var c Config
	c.Defaults()
	custom := c.DefaultRules
	custom.ErrorRatio, custom.P99Latency, custom.For, custom.HostDisk = 0.015, 250*time.Millisecond, 90*time.Second, 0.8
	for name, r := range map[string]DefaultRules{"defaults": c.DefaultRules, "custom": custom} {
		body, err := RenderDefaultRules(r)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "vispyr.rules.yml")
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: promtool check rules: %v\n%s\n--- rules:\n%s", name, err, out, body)
		}
		for _, alert := range []string{"VispyrServiceErrorRatioHigh", "VispyrServiceLatencyP99High"} {
			if !strings.Contains(string(body), alert) {
				t.Fatalf("%s: shipped rules lack %s", name, alert)
			}
		}
		if name == "custom" && (!strings.Contains(string(body), "> 0.015") || !strings.Contains(string(body), "> 0.25")) {
			t.Fatalf("custom thresholds (error ratio 0.015, p99 0.25 s) not in the rules:\n%s", body)
		}
		t.Logf("%s: %s", name, strings.TrimSpace(string(out)))
	}
}
