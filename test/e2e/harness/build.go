// Package harness runs `vispyr serve` and real peer programs as child
// processes for process-level end-to-end tests: every port on a free loopback
// port, a temporary data dir, kill -9 and restart on the same data.
//
// A test package builds the binary once by calling Main from its TestMain:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
package harness

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var (
	touchOnce sync.Once
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// Main builds ./cmd/vispyr, runs the tests and removes the build. Building
// up front keeps the build's time out of the first test's.
func Main(m *testing.M) {
	buildOnce.Do(func() {
		if p := os.Getenv("VISPYR_BINARY"); p != "" {
			buildPath = p
			return
		}
		buildPath, buildErr = build()
	})
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// VispyrBinary returns the path of a vispyr binary built from this checkout,
// building it on first use. $VISPYR_BINARY overrides the build.
func VispyrBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("VISPYR_BINARY"); p != "" {
			buildPath = p
			return
		}
		buildPath, buildErr = build()
	})
	if buildErr != nil {
		t.Fatalf("build vispyr: %v", buildErr)
	}
	// Stat the sources from inside a test, where go test logs them.
	touchOnce.Do(func() {
		if root, err := ModuleRoot(); err == nil {
			touchSources(root)
		}
	})
	return buildPath
}

func build() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	buildDir, err = os.MkdirTemp("", "vispyr-e2e-bin-")
	if err != nil {
		return "", fmt.Errorf("make build dir: %w", err)
	}
	out := filepath.Join(buildDir, "vispyr")
	// Several e2e packages build at once under `go test ./...`: take turns,
	// so the later builds are link-only cache hits instead of competing
	// compiles of the same packages.
	if lock, err := os.OpenFile(filepath.Join(os.TempDir(), "vispyr-e2e-build.lock"), os.O_CREATE|os.O_RDWR, 0o666); err == nil {
		defer lock.Close()
		syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
		defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	}
	cmd := exec.Command("go", "build", "-o", out, "./cmd/vispyr")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/vispyr: %w\n%s", err, b)
	}
	return out, nil
}

// ModuleRoot returns the directory holding the project's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the vispyr module")
	}
	return filepath.Dir(gomod), nil
}

// touchSources stats every source file of the module. The test binary does
// not import cmd/vispyr, so without this `go test` would cache e2e results
// across changes to the server; files a test stats (once m.Run has begun)
// become part of go test's cache key.
func touchSources(root string) {
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			// data/, tmp/ and bin/ at the root are run-time state, not sources.
			switch {
			case d.Name() == ".git", d.Name() == "node_modules",
				path == filepath.Join(root, "data"), path == filepath.Join(root, "tmp"),
				path == filepath.Join(root, "bin"):
				return filepath.SkipDir
			}
			return nil
		}
		os.Stat(path)
		return nil
	})
}
