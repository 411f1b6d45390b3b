package backend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vispyr/vispyr/internal/traces/backend"
	"github.com/vispyr/vispyr/internal/traces/backend/miniotest"
)

// conformance is the one suite every backend must pass.
func conformance(t *testing.T, b backend.Raw) {
	ctx := context.Background()
	if _, err := b.Read(ctx, "t1/b1/meta.json"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("read of missing object: got %v, want ErrNotFound", err)
	}
	data := bytes.Repeat([]byte("0123456789"), 1000)
	for _, name := range []string{"t1/b1/data", "t1/b1/meta.json", "t1/b2/meta.json", "t2/b3/data"} {
		if err := b.Write(ctx, name, data); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	got, err := b.Read(ctx, "t1/b1/data")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v, equal=%v", err, bytes.Equal(got, data))
	}
	p := make([]byte, 15)
	if err := b.ReadRange(ctx, "t1/b1/data", 5005, p); err != nil || string(p) != "567890123456789" {
		t.Fatalf("read range: %q %v", p, err)
	}
	if err := b.ReadRange(ctx, "t1/b1/data", 9995, make([]byte, 10)); err == nil {
		t.Fatal("range past the end succeeded")
	}
	if n, err := b.Size(ctx, "t1/b1/data"); err != nil || n != int64(len(data)) {
		t.Fatalf("size = %d, %v", n, err)
	}
	names, err := b.List(ctx, "t1/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"t1/b1/data", "t1/b1/meta.json", "t1/b2/meta.json"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("list t1/ = %q, want %q", names, want)
	}
	// overwrite replaces
	if err := b.Write(ctx, "t1/b2/meta.json", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Read(ctx, "t1/b2/meta.json"); string(got) != "v2" {
		t.Fatalf("overwrite read %q", got)
	}
	for _, name := range []string{"t1/b1/data", "t1/b1/meta.json", "t1/b1/never-written"} {
		if err := b.Delete(ctx, name); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	}
	names, _ = b.List(ctx, "")
	if want := []string{"t1/b2/meta.json", "t2/b3/data"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("after delete list = %q, want %q", names, want)
	}
	if err := b.Write(ctx, "../escape", data); err == nil {
		t.Fatal("name with .. accepted")
	}
}

func TestLocalConformance(t *testing.T) {
	dir := t.TempDir()
	b, err := backend.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	conformance(t, b)
	// deleting a block's objects leaves no directory behind
	if _, err := os.Stat(filepath.Join(dir, "t1", "b1")); !os.IsNotExist(err) {
		t.Fatalf("empty block directory left behind: %v", err)
	}
}

func TestS3ConformanceAgainstMinIO(t *testing.T) {
	cfg := miniotest.Start(t)
	b, err := backend.NewS3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	conformance(t, b)
}

// Without access_key the store takes the standard AWS credentials (here the
// environment's; on EC2 the instance role's), as a deployed instance does.
func TestS3CredentialsFromEnvironment(t *testing.T) {
	cfg := miniotest.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretKey)
	cfg.AccessKey, cfg.SecretKey, cfg.Bucket = "", "", "from-env"
	b, err := backend.NewS3(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open with environment credentials: %v", err)
	}
	if err := b.Write(context.Background(), "t1/b1/meta.json", []byte("{}")); err != nil {
		t.Fatalf("write with environment credentials: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if _, err := backend.NewS3(context.Background(), cfg); err == nil {
		t.Fatal("anonymous access to a private MinIO bucket succeeded: the credentials test proves nothing")
	}
}

func TestConfigValidateNamesField(t *testing.T) {
	f := func(c backend.Config, want string) {
		t.Helper()
		err := c.Validate()
		if fmt.Sprint(err) != want && !(want == "" && err == nil) {
			t.Errorf("Validate(%+v) = %v, want %q", c, err, want)
		}
	}
	f(backend.Config{}, "")
	f(backend.Config{Backend: "gcs"}, `storage.backend: "gcs" is not one of local, s3`)
	f(backend.Config{Backend: "s3", S3: backend.S3Config{Bucket: "b"}}, "storage.s3.endpoint: must be set for the s3 backend")
	f(backend.Config{Backend: "s3", S3: backend.S3Config{Endpoint: "x:9000"}}, "storage.s3.bucket: must be set for the s3 backend")
}
