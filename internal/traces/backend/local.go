package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Local keeps objects as files under a root directory.
type Local struct{ root string }

var _ Raw = (*Local)(nil)

// NewLocal returns a backend rooted at dir, creating it.
func NewLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create block dir: %w", err)
	}
	return &Local{root: dir}, nil
}

func (l *Local) path(name string) (string, error) {
	if err := validName(name); err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(name)), nil
}

// List implements Raw.
func (l *Local) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(l.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasSuffix(p, ".tmp") {
			return nil
		}
		rel, err := filepath.Rel(l.root, p)
		if err != nil {
			return err
		}
		if name := filepath.ToSlash(rel); strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// Read implements Raw.
func (l *Local) Read(ctx context.Context, name string) ([]byte, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read object: %w", err)
	}
	return b, nil
}

// ReadRange implements Raw.
func (l *Local) ReadRange(ctx context.Context, name string, off int64, p []byte) error {
	path, err := l.path(name)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("open object: %w", err)
	}
	defer f.Close()
	if _, err := f.ReadAt(p, off); err != nil {
		if err == io.EOF {
			return fmt.Errorf("read %s [%d,+%d): %w", name, off, len(p), io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("read object range: %w", err)
	}
	return nil
}

// Size implements Raw.
func (l *Local) Size(ctx context.Context, name string) (int64, error) {
	p, err := l.path(name)
	if err != nil {
		return 0, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("stat %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("stat object: %w", err)
	}
	return st.Size(), nil
}

// Write implements Raw: temp file, fsync, rename, fsync the directory.
func (l *Local) Write(ctx context.Context, name string, data []byte) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create object dir: %w", err)
	}
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("create object: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write object: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("fsync object: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close object: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("rename object: %w", err)
	}
	return syncDir(dir)
}

// Delete implements Raw; it also removes directories left empty, so a deleted block
// leaves nothing behind.
func (l *Local) Delete(ctx context.Context, name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete object: %w", err)
	}
	for dir := filepath.Dir(p); dir != l.root && strings.HasPrefix(dir, l.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // not empty (or gone): stop climbing
			break
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}

// OpenReaderAt implements ReaderAtOpener: a block keeps its data file open instead of
// opening it for every ranged read.
func (l *Local) OpenReaderAt(name string) (ReaderAtCloser, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open object: %w", err)
	}
	return f, nil
}
