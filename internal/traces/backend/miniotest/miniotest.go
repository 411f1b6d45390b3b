// Package miniotest starts a real MinIO server for tests of the S3 backend.
package miniotest

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/internal/traces/backend"
)

// Start runs `minio server` on a free 127.0.0.1 port with a temporary data directory
// and returns a config for a fresh bucket on it. The server stops when the test ends.
// Without the minio binary the test is skipped (failed under CI=true).
func Start(t testing.TB) backend.S3Config {
	t.Helper()
	bin := testpeer.Binary(t, "minio")
	port := testpeer.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "server", "--quiet", "--address", addr, t.TempDir())
	cmd.Env = append(cmd.Environ(),
		"MINIO_ROOT_USER=vispyrtest", "MINIO_ROOT_PASSWORD=vispyrtestsecret",
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start minio: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	testpeer.WaitHTTP(t, "http://"+addr+"/minio/health/ready", 30*time.Second)
	cfg := backend.S3Config{
		Endpoint: addr, Bucket: "vispyr-test", AccessKey: "vispyrtest", SecretKey: "vispyrtestsecret",
		Insecure: true, Prefix: "traces",
	}
	// "ready" can come before the object layer accepts requests; retry the first
	// call (which creates the bucket) until it does.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := backend.NewS3(context.Background(), cfg)
		if err == nil {
			return cfg
		}
		if time.Now().After(deadline) {
			t.Fatalf("minio did not become usable: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
