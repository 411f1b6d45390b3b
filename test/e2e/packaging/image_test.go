package packaging

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

const dataDir = "/var/lib/vispyr"

// dockerfile parses the Dockerfile with BuildKit's own parser (no engine here to
// build it) and returns its stages.
func dockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(repoFile(t, "Dockerfile")))
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile instructions: %v", err)
	}
	return stages
}

// TestImageOwnsItsDataDirAndRunsAsThatUser checks that the final stage runs as
// a non-root user and ships /var/lib/vispyr owned by that user (a volume mounted
// there is seeded with the image's owner), created by the build stage.
func TestImageOwnsItsDataDirAndRunsAsThatUser(t *testing.T) {
	stages := dockerfile(t)
	final := stages[len(stages)-1]
	var user string
	var owned *instructions.CopyCommand
	var volume bool
	var cmd []string
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.CopyCommand:
			if strings.TrimSuffix(c.DestPath, "/") == dataDir {
				owned = c
			}
		case *instructions.VolumeCommand:
			volume = volume || slices.Contains(c.Volumes, dataDir)
		case *instructions.CmdCommand:
			cmd = c.CmdLine
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if uid == "" || uid == "0" || uid == "root" {
		t.Fatalf("final stage runs as %q, want a non-root user", user)
	}
	if owned == nil {
		t.Fatalf("final stage does not create %s: Docker would make the volume root-owned", dataDir)
	}
	if owner, _, _ := strings.Cut(owned.Chown, ":"); owner != uid {
		t.Errorf("%s is copied with --chown=%q, but the image runs as %q", dataDir, owned.Chown, user)
	}
	if !volume {
		t.Errorf("no VOLUME %s", dataDir)
	}
	// The copied directory must exist in the stage it comes from.
	src := strings.TrimSuffix(owned.SourcePaths[0], "/")
	made := false
	for _, s := range stages {
		if s.Name != owned.From {
			continue
		}
		for _, c := range s.Commands {
			if r, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "mkdir -p "+src) {
				made = true
			}
		}
	}
	if !made {
		t.Errorf("stage %q never creates %s", owned.From, src)
	}
	// The image's CMD must be a configuration vispyr accepts, on that data dir.
	if len(cmd) < 1 || cmd[0] != "serve" {
		t.Fatalf("CMD = %q, want serve ...", cmd)
	}
	cfg, err := config.Load("serve", cmd[1:], func(string) string { return "" })
	if err != nil {
		t.Fatalf("CMD %q: %v", cmd, err)
	}
	if cfg.DataDir != dataDir {
		t.Errorf("CMD uses data dir %q, the volume is %s", cfg.DataDir, dataDir)
	}
}

// TestImageHealthcheckProbesARealVispyr runs the HEALTHCHECK's command as the
// container would (the image's /vispyr being this checkout's binary, its
// loopback port being the harness's): 0 while Vispyr is up, not 0 once it is gone.
func TestImageHealthcheckProbesARealVispyr(t *testing.T) {
	var hc *instructions.HealthCheckCommand
	exposed := map[string]bool{}
	stages := dockerfile(t)
	for _, c := range stages[len(stages)-1].Commands {
		switch c := c.(type) {
		case *instructions.HealthCheckCommand:
			hc = c
		case *instructions.ExposeCommand:
			for _, p := range c.Ports {
				exposed[p] = true
			}
		}
	}
	if hc == nil {
		t.Fatal("the image has no HEALTHCHECK")
	}
	test := hc.Health.Test
	if len(test) < 3 || test[0] != "CMD" || test[1] != "/vispyr" {
		t.Fatalf("HEALTHCHECK %q: want [CMD /vispyr ...] (distroless has no shell)", test)
	}
	if hc.Health.Interval <= 0 || hc.Health.Timeout <= 0 {
		t.Errorf("HEALTHCHECK without interval/timeout: %+v", hc.Health)
	}
	// Every default port is exposed.
	d := config.Default().Listen
	for _, addr := range []string{d.OTLPGRPC, d.OTLPHTTP, d.Prometheus, d.PyroscopeIngest, d.Pyroscope, d.Tempo, d.UI, d.Admin, d.Health} {
		if _, port, _ := net.SplitHostPort(addr); !exposed[port] {
			t.Errorf("EXPOSE lacks %s", port)
		}
	}

	args := slices.Clone(test[2:])
	var healthPort string
	for i, a := range args {
		if u, err := url.Parse(a); err == nil && u.Host != "" {
			healthPort = u.Port()
			args[i] = strings.Replace(a, u.Host, "HOSTPORT", 1)
		}
	}
	if _, p, _ := net.SplitHostPort(d.Health); healthPort != "" && healthPort != p {
		t.Errorf("HEALTHCHECK probes port %s, the health listener is %s", healthPort, p)
	}
	v := harness.Start(t, harness.Options{})
	probe := func() error {
		a := slices.Clone(args)
		for i := range a {
			a[i] = strings.Replace(a[i], "HOSTPORT", v.HealthAddr, 1)
		}
		if healthPort == "" { // the command's default URL: point it at the harness
			a = append(a, "http://"+v.HealthAddr+"/health/status")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, harness.VispyrBinary(t), a...).Run()
	}
	if err := probe(); err != nil {
		t.Fatalf("healthcheck against a running vispyr: %v", err)
	}
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := probe(); err == nil {
		t.Fatal("healthcheck passed with vispyr stopped")
	}
}

// TestNonWritableDataDirStopsStartupWithAClearMessage reproduces the image's old
// failure: a root-owned data dir and Vispyr running as another user. Start-up
// must stop at once with a message naming the directory, its owner and the fix,
// not a store's "mkdir …/metrics: permission denied".
func TestNonWritableDataDirStopsStartupWithAClearMessage(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run vispyr as another user on a root-owned directory")
	}
	// The binary must be reachable by that user: t.TempDir and the harness's
	// directories are 0700.
	binDir, err := os.MkdirTemp("", "vispyr-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(binDir) })
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "vispyr")
	b, err := os.ReadFile(harness.VispyrBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(binDir, "data") // root-owned, 0755: not writable by others
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--data-dir", data,
		"--otlp.grpc-address=127.0.0.1:0", "--otlp.http-address=127.0.0.1:0", "--metrics.listen-address=127.0.0.1:0",
		"--pyroscope.ingest-address=127.0.0.1:0", "--pyroscope.listen-address=127.0.0.1:0", "--tempo.listen-address=127.0.0.1:0", "--loki.listen-address=127.0.0.1:0", "--faro.listen-address=127.0.0.1:0",
		"--ui.listen-address=127.0.0.1:0", "--admin.listen-address=127.0.0.1:0", "--health.listen-address=127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("vispyr kept running on a data dir it cannot write:\n%s", out)
	}
	if _, ok := err.(*exec.ExitError); !ok {
		t.Fatalf("run vispyr as uid %d: %v\n%s", nobody, err, out)
	}
	if err == nil {
		t.Fatalf("vispyr exited 0 on a data dir it cannot write:\n%s", out)
	}
	for _, want := range []string{data, "not writable", "uid " + strconv.Itoa(nobody), "owned by uid 0", "chown", "--data-dir"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("start-up message lacks %q:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("open tsdb")) {
		t.Errorf("a store got to fail first:\n%s", out)
	}
}
