package uie2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vispyr/vispyr/internal/testpeer"
)

// TestWebUnitTests runs the UI's Vitest suite (flame graph decoding, waterfall tree,
// PromQL response parsing, …) so that `go test ./...` covers the TypeScript logic too.
func TestWebUnitTests(t *testing.T) {
	npx := testpeer.Binary(t, "npx")
	web := filepath.Join(repoRoot(t), "web")
	if _, err := os.Stat(filepath.Join(web, "node_modules", "vitest")); err != nil {
		msg := "web/node_modules missing: run `npm ci` in web/ (.ci/install.d/60-ui.sh does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command(npx, "--no-install", "vitest", "run", "--reporter=dot")
	cmd.Dir = web
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "CI=true")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("vitest failed: %v", err)
	}
}
