// Package backend is the object store under trace blocks: a deliberately small raw
// interface (list, read, ranged read, write, delete of whole named objects) with a
// local filesystem and an S3 implementation. Blocks are built on it once, so a new
// provider only has to implement these five calls.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNotFound is returned (wrapped) when a named object does not exist.
var ErrNotFound = errors.New("object not found")

// Raw stores immutable objects by name. Names are slash-separated paths such as
// "tenant/blockid/meta.json". Write replaces an object atomically: readers see the
// old object or the new one, never a part.
type Raw interface {
	// List returns the names of all objects whose name starts with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Read returns a whole object.
	Read(ctx context.Context, name string) ([]byte, error)
	// ReadRange fills p from the object starting at offset off.
	ReadRange(ctx context.Context, name string, off int64, p []byte) error
	// Size returns the length of an object.
	Size(ctx context.Context, name string) (int64, error)
	// Write stores data under name durably before returning.
	Write(ctx context.Context, name string, data []byte) error
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, name string) error
}

// ReaderAtCloser is an open object for random access.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
}

// ReaderAtOpener is an optional capability of a Raw backend (checked by type
// assertion): keeping an object open for many ranged reads, as local files allow.
type ReaderAtOpener interface {
	OpenReaderAt(name string) (ReaderAtCloser, error)
}

// Config selects and configures the backend.
type Config struct {
	// Backend is "local" (default, under the data directory) or "s3".
	Backend string   `yaml:"backend"`
	S3      S3Config `yaml:"s3"`
}

// S3Config addresses an S3-compatible bucket (AWS, MinIO, ...).
type S3Config struct {
	// Endpoint is the S3 API's host:port, without a scheme (s3.amazonaws.com, minio:9000).
	Endpoint string `yaml:"endpoint"`
	// Bucket holds the blocks; it is created when missing.
	Bucket string `yaml:"bucket"`
	// AccessKey is the access key ID of the static credentials blocks are written with.
	// Empty: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, or
	// the EC2 instance's IAM role, in that order.
	AccessKey string `yaml:"access_key"`
	// SecretKey is the secret of AccessKey.
	SecretKey string `yaml:"secret_key"`
	// Region is the bucket's region (empty: the endpoint's default).
	Region string `yaml:"region"`
	// Insecure uses plain HTTP instead of HTTPS.
	Insecure bool `yaml:"insecure"`
	// Prefix is prepended to every object name, so several stores can share a bucket.
	Prefix string `yaml:"prefix"`
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.Backend == "" {
		c.Backend = "local"
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch c.Backend {
	case "", "local":
		return nil
	case "s3":
		if c.S3.Endpoint == "" {
			return errors.New("storage.s3.endpoint: must be set for the s3 backend")
		}
		if strings.Contains(c.S3.Endpoint, "://") {
			return fmt.Errorf("storage.s3.endpoint: %q must be host:port without a scheme (use insecure for http)", c.S3.Endpoint)
		}
		if c.S3.Bucket == "" {
			return errors.New("storage.s3.bucket: must be set for the s3 backend")
		}
		return nil
	default:
		return fmt.Errorf("storage.backend: %q is not one of local, s3", c.Backend)
	}
}

// New opens the configured backend; localDir is where the local backend keeps objects.
func New(ctx context.Context, c Config, localDir string) (Raw, error) {
	if c.Backend == "s3" {
		return NewS3(ctx, c.S3)
	}
	return NewLocal(localDir)
}

func validName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") || strings.Contains(name, "\\") {
		return fmt.Errorf("invalid object name %q", name)
	}
	return nil
}
