package backend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 keeps objects in an S3-compatible bucket.
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string
}

var _ Raw = (*S3)(nil)

// NewS3 connects to the bucket, creating it when it does not exist.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	creds := credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	if cfg.AccessKey == "" {
		// No static keys: the standard AWS sources, ending with the EC2
		// instance's role (what vispyr deploy aws gives its instance).
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
		})
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  creds,
		Secure: !cfg.Insecure,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("create s3 client: %w", err)
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("check s3 bucket %q: %w", cfg.Bucket, err)
	}
	if !ok {
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			return nil, fmt.Errorf("create s3 bucket %q: %w", cfg.Bucket, err)
		}
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3{c: c, bucket: cfg.Bucket, prefix: prefix}, nil
}

func notFound(err error) bool {
	return minio.ToErrorResponse(err).Code == minio.NoSuchKey
}

// List implements Raw.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list s3 objects: %w", obj.Err)
		}
		out = append(out, strings.TrimPrefix(obj.Key, s.prefix))
	}
	sort.Strings(out)
	return out, nil
}

// Read implements Raw.
func (s *S3) Read(ctx context.Context, name string) ([]byte, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get s3 object: %w", err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("read %s: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("read s3 object: %w", err)
	}
	return b, nil
}

// ReadRange implements Raw.
func (s *S3) ReadRange(ctx context.Context, name string, off int64, p []byte) error {
	if err := validName(name); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(off, off+int64(len(p))-1); err != nil {
		return fmt.Errorf("set range: %w", err)
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.prefix+name, opts)
	if err != nil {
		return fmt.Errorf("get s3 object: %w", err)
	}
	defer obj.Close()
	if _, err := io.ReadFull(obj, p); err != nil {
		if notFound(err) {
			return fmt.Errorf("read %s: %w", name, ErrNotFound)
		}
		return fmt.Errorf("read s3 object range: %w", err)
	}
	return nil
}

// Size implements Raw.
func (s *S3) Size(ctx context.Context, name string) (int64, error) {
	if err := validName(name); err != nil {
		return 0, err
	}
	st, err := s.c.StatObject(ctx, s.bucket, s.prefix+name, minio.StatObjectOptions{})
	if err != nil {
		if notFound(err) {
			return 0, fmt.Errorf("stat %s: %w", name, ErrNotFound)
		}
		return 0, fmt.Errorf("stat s3 object: %w", err)
	}
	return st.Size, nil
}

// Write implements Raw; an S3 PUT is atomic and durable when it returns.
func (s *S3) Write(ctx context.Context, name string, data []byte) error {
	if err := validName(name); err != nil {
		return err
	}
	_, err := s.c.PutObject(ctx, s.bucket, s.prefix+name, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("put s3 object: %w", err)
	}
	return nil
}

// Delete implements Raw.
func (s *S3) Delete(ctx context.Context, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, s.prefix+name, minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
		return fmt.Errorf("delete s3 object: %w", err)
	}
	return nil
}
