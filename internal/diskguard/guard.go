// Package diskguard keeps a full disk from taking Vispyr down. It watches the
// free space of the data directory's filesystem and, below a reserve, makes
// every store refuse writes with pipeline.ErrDiskFull before the stores
// themselves could hit ENOSPC (on which the Prometheus TSDB panics). Writes
// resume by themselves once space returns.
package diskguard

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// Default reserve bounds: DefaultReserve takes DefaultShare of the filesystem
// within them.
const (
	DefaultShare      = 0.05
	MinDefaultReserve = 64 << 20
	MaxDefaultReserve = 1 << 30
)

// DefaultReserve is the reserve for a filesystem of total bytes: 5% (the
// share ext4 keeps for root, for the same reason), at least 64 MiB and at
// most 1 GiB. What the stores still write after the last accepted request (a
// minute of TSDB head chunks, a trace block cut of ~50 MB, a profile block,
// a WAL segment) does not grow with the disk, so the cap keeps big disks
// usable; the floor covers it on small ones. Never more than half the disk.
func DefaultReserve(total int64) int64 {
	r := int64(float64(total) * DefaultShare)
	r = max(r, MinDefaultReserve)
	r = min(r, MaxDefaultReserve)
	return min(r, total/2)
}

// Options configure a Guard.
type Options struct {
	// Dir is a directory on the filesystem to watch (the data directory).
	Dir string
	// Reserve is the free space to keep; 0: DefaultReserve of the filesystem.
	Reserve int64
	// Interval between two looks at the free space (default 1s).
	Interval time.Duration
	// OnChange is called with the new state (low, and why) each time the free
	// space crosses the reserve, and once by New.
	OnChange func(low bool, reason string)
}

// Guard tracks whether the data directory's filesystem has room for writes.
type Guard struct {
	dir      string
	reserve  int64
	interval time.Duration
	onChange func(bool, string)
	logger   *slog.Logger

	mu   sync.Mutex // serialises update and the ballast's bookkeeping
	free atomic.Int64
	low  atomic.Bool

	ballast    ballast
	hasBallast bool
	noBallast  bool // taking it failed: not tried again

	refused *prometheus.CounterVec
}

// New looks at the filesystem once (so a full disk is known before any store
// opens) and returns the guard; Run keeps it current.
func New(opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Guard, error) {
	free, total, err := statfs(opts.Dir)
	if err != nil {
		return nil, err
	}
	g := &Guard{dir: opts.Dir, reserve: opts.Reserve, interval: opts.Interval, onChange: opts.OnChange, logger: logger}
	if g.reserve == 0 {
		g.reserve = DefaultReserve(total)
	}
	if g.interval <= 0 {
		g.interval = time.Second
	}
	g.ballast = newBallast(opts.Dir, g.reserve)
	g.hasBallast = g.ballast.present()
	g.refused = promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "vispyr_disk_full_refused_writes_total",
		Help: "Writes refused because the data directory's free space was under limits.disk_reserve_bytes, by store.",
	}, []string{"store"})
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vispyr_disk_free_bytes",
		Help: "Free bytes on the data directory's filesystem, as last seen by the disk guard.",
	}, func() float64 { return float64(g.free.Load()) })
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vispyr_disk_reserve_bytes",
		Help: "Free bytes under which every store refuses writes (limits.disk_reserve_bytes).",
	}, func() float64 { return float64(g.reserve) })
	if reg != nil {
		reg.MustRegister(newUsageCollector(opts.Dir))
	}
	// Before any store opens: on a disk someone else filled, the ballast's
	// space lets the TSDB replay its WAL instead of panicking.
	g.set(g.tendBallast(free), true)
	return g, nil
}

// Run looks at the free space every interval until ctx is done.
func (g *Guard) Run(ctx context.Context) error {
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			g.Update()
		}
	}
}

// Update looks at the free space now.
func (g *Guard) Update() {
	free, _, err := statfs(g.dir)
	if err != nil {
		g.logger.Warn("look at free disk space", "err", err)
		return
	}
	g.set(g.tendBallast(free), false)
}

// tendBallast releases the ballast when free space is under its size, takes
// it when there is room for it over the reserve, and returns the free space
// after.
func (g *Guard) tendBallast(free int64) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.ballast
	switch {
	case free < b.size && g.hasBallast:
		released, err := b.release()
		if err != nil {
			g.logger.Warn("disk full", "err", err)
			return free
		}
		g.hasBallast = false
		if !released {
			return free
		}
		g.logger.Warn("disk full: released the ballast so that the stores can finish their writes",
			"path", b.path, "bytes", b.size)
	case !g.hasBallast && !g.noBallast && b.size > 0 && free >= g.reserve+g.reserve/16+b.size:
		if err := b.take(); err != nil {
			g.noBallast = true
			g.logger.Warn("no ballast: a disk filled by another process may keep the metrics store from opening", "err", err)
			return free
		}
		g.hasBallast = true
	default:
		return free
	}
	if f, _, err := statfs(g.dir); err == nil {
		free = f
	}
	return free
}

// set records free and reports a change of state. Once low, writes resume
// only when a sixteenth of the reserve more is free, so that a disk hovering
// at the reserve does not flip readiness every second.
func (g *Guard) set(free int64, first bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.free.Store(free)
	wasLow := g.low.Load()
	low := free < g.reserve
	if wasLow && !low {
		low = free < g.reserve+g.reserve/16
	}
	if low == wasLow && !first {
		return
	}
	g.low.Store(low)
	reason := ""
	if low {
		reason = g.reason(free)
		g.logger.Warn("disk almost full: refusing writes until space returns", "dir", g.dir,
			"free_bytes", free, "reserve_bytes", g.reserve)
	} else if !first {
		g.logger.Info("disk space returned: accepting writes again", "dir", g.dir,
			"free_bytes", free, "reserve_bytes", g.reserve)
	}
	if g.onChange != nil {
		g.onChange(low, reason)
	}
}

func (g *Guard) reason(free int64) string {
	return fmt.Sprintf("disk almost full: %d bytes (%s) free on the filesystem of %s, under the %d-byte (%s) reserve of limits.disk_reserve_bytes",
		free, human(free), g.dir, g.reserve, human(g.reserve))
}

// Low reports whether writes are refused.
func (g *Guard) Low() bool { return g.low.Load() }

// Free is the free space last seen.
func (g *Guard) Free() int64 { return g.free.Load() }

// Reserve is the free space kept.
func (g *Guard) Reserve() int64 { return g.reserve }

// Check returns nil when store may write, else an error wrapping
// pipeline.ErrDiskFull that names the store and the free bytes.
func (g *Guard) Check(store string) error {
	if g == nil || !g.low.Load() {
		return nil
	}
	g.refused.WithLabelValues(store).Inc()
	return fmt.Errorf("%s store refuses writes: %s: %w", store, g.reason(g.free.Load()), pipeline.ErrDiskFull)
}

func statfs(dir string) (free, total int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	// Bavail: what an unprivileged writer may still use, so root's reserved
	// blocks stay a margin rather than part of the reserve.
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), nil
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}
