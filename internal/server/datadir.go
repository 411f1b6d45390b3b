package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vispyr/vispyr/internal/admin"
	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/diskguard"
)

// checkDataDir creates dir if needed and proves this process can write there,
// before any store tries. A container whose volume was created root-owned would
// otherwise stop with a store's "mkdir …/metrics: permission denied", which
// names neither the directory's owner nor the way out.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return dataDirError(dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return dataDirError(dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func dataDirError(dir string, err error) error {
	if !errors.Is(err, fs.ErrPermission) && !errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("prepare data dir %s: %w", dir, err)
	}
	owner := ""
	if fi, serr := os.Stat(dir); serr == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			owner = fmt.Sprintf(" (owned by uid %d, mode %s)", st.Uid, fi.Mode())
		}
	}
	return fmt.Errorf("data dir %s is not writable by this process (uid %d)%s: "+
		"give it to uid %d (chown -R %d %s) or choose another with --data-dir, VISPYR_DATA_DIR or data_dir: %w",
		dir, os.Getuid(), owner, os.Getuid(), os.Getuid(), dir, err)
}

// openDataDir checks the data directory and starts the disk guard over it:
// below the reserve every store and forward queue refuses writes and
// readiness says why, until space returns.
func openDataDir(cfg config.Config, ready *admin.Readiness, logger *slog.Logger, reg prometheus.Registerer) (*diskguard.Guard, error) {
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	return diskguard.New(diskguard.Options{
		Dir: cfg.DataDir, Reserve: cfg.Limits.DiskReserveBytes,
		OnChange: func(_ bool, reason string) { ready.SetCondition("disk", reason) },
	}, logger.With("component", "diskguard"), reg)
}
