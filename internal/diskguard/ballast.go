package diskguard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// BallastName is the file in the data directory that holds space back for
// the stores. Deleting it by hand frees that space at once.
const BallastName = "disk-reserve.ballast"

// maxBallast bounds the ballast: enough for what the TSDB writes when it
// replays its WAL (the head chunks completed since its last m-map pass,
// about a minute of samples), which it cannot do without space and panics on.
const maxBallast = 64 << 20

// ballastSize is a quarter of the reserve, at most maxBallast.
func ballastSize(reserve int64) int64 { return min(reserve/4, maxBallast) }

// A ballast is space taken while the disk has room and given back when
// another writer has taken the rest, so that the stores can still open and
// finish what they hold (the reserve alone cannot do that: whoever fills the
// disk takes it). The guard releases it when free space falls below its size,
// and takes it again once free space is back over the reserve plus its size.
type ballast struct {
	path string
	size int64
}

// present reports whether the ballast file holds its space.
func (b ballast) present() bool {
	fi, err := os.Stat(b.path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Blocks*512 >= b.size
}

// take allocates the ballast. Filesystems without fallocate (ZFS, some
// network filesystems) get none: writing zeros there would reserve nothing.
func (b ballast) take() error {
	if b.size <= 0 || b.present() {
		return nil
	}
	f, err := os.OpenFile(b.path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create ballast: %w", err)
	}
	err = syscall.Fallocate(int(f.Fd()), 0, 0, b.size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(b.path)
		return fmt.Errorf("allocate %d-byte ballast %s: %w", b.size, b.path, err)
	}
	return nil
}

// release deletes the ballast; it reports whether there was one.
func (b ballast) release() (bool, error) {
	err := os.Remove(b.path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("release ballast: %w", err)
	}
	return true, nil
}

func newBallast(dir string, reserve int64) ballast {
	return ballast{path: filepath.Join(dir, BallastName), size: ballastSize(reserve)}
}
