package packaging

import (
	"net"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vispyr/vispyr/internal/config"
)

// readmePorts returns the ports of the README's port table.
func readmePorts(t *testing.T) []string {
	t.Helper()
	var ports []string
	row := regexp.MustCompile(`^\|\s*(\d{2,5})\s*\|`)
	for _, line := range strings.Split(string(repoFile(t, "README.md")), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			ports = append(ports, m[1])
		}
	}
	if len(ports) < 5 {
		t.Fatalf("README port table not found (%d ports)", len(ports))
	}
	return ports
}

// TestComposePublishesEveryReadmePort reads deploy/docker-compose.yml (no compose
// plugin here to render it) and checks that each port the README names is
// published for the listener that serves it, where the compose command moved it
// (the UI to :3001 next to Grafana).
func TestComposePublishesEveryReadmePort(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Command     []string `yaml:"command"`
			Ports       []string `yaml:"ports"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/docker-compose.yml"), &compose); err != nil {
		t.Fatalf("compose YAML: %v", err)
	}
	svc, ok := compose.Services["vispyr"]
	if !ok {
		t.Fatal("no vispyr service")
	}
	if len(svc.Command) == 0 || svc.Command[0] != "serve" {
		t.Fatalf("command %q, want serve ...", svc.Command)
	}
	cfg, err := config.Load("serve", svc.Command[1:], func(string) string { return "" })
	if err != nil {
		t.Fatalf("compose command %q: %v", svc.Command, err)
	}
	published := map[string]bool{} // container ports
	for _, p := range svc.Ports {
		parts := strings.Split(p, ":")
		published[strings.TrimSuffix(parts[len(parts)-1], "/tcp")] = true
	}
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	def, got := config.Default().Listen, cfg.Listen
	// Listener by default port -> the port it has in compose.
	moved := map[string]string{
		port(def.OTLPGRPC): port(got.OTLPGRPC), port(def.OTLPHTTP): port(got.OTLPHTTP),
		port(def.Prometheus): port(got.Prometheus), port(def.PyroscopeIngest): port(got.PyroscopeIngest),
		port(def.Pyroscope): port(got.Pyroscope), port(def.Tempo): port(got.Tempo), port(def.UI): port(got.UI),
		port(def.Admin): port(got.Admin), port(def.Health): port(got.Health), port(def.Loki): port(got.Loki),
		port(def.Faro): port(got.Faro),
	}
	for _, p := range readmePorts(t) {
		inCompose, known := moved[p]
		if !known {
			t.Errorf("README names port %s, which no listener has by default", p)
			continue
		}
		if !published[inCompose] {
			t.Errorf("compose does not publish port %s (README's %s)", inCompose, p)
		}
	}
	if hc := strings.Join(svc.Healthcheck.Test, " "); !strings.Contains(hc, ":"+port(got.Health)+"/") {
		t.Errorf("compose healthcheck %q does not probe the health port %s", hc, port(got.Health))
	}
}
