package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/fileutil"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/vispyr/vispyr/internal/metrics/head"
)

// Background replay (metrics.background_replay_min_wal_bytes). Replaying a
// TSDB's WAL costs about 0.5 µs of CPU per sample, minutes for a WAL of a
// GiB, and the head takes no write and answers no query until it ends. So
// when what a TSDB's head would read at start-up (out-of-order WAL,
// m-mapped head chunks, head snapshot, and the WAL past that snapshot:
// headBytes) is that large, its head files move into
// <dir>/replay/<n>/ and the TSDB opens with an empty head at once: writes
// go to that head and its WAL, acknowledged as always. Beside it a second
// TSDB opens on the replay dir (the TSDB's own replay), its head is written
// as blocks into the main dir, and once the main TSDB has loaded them the
// replay dir goes. Queries merge overlapping blocks and the head, and the
// compactor merges overlapping blocks, so a crash at any point replays the
// dir again at the next start: nothing acknowledged is lost. The own head's
// dir (metrics.head: vispyr) moves with the TSDB's files, and its WAL
// replays into an own head beside the replay TSDB, written out alike.
//
// The blocks carry the TSDB's out-of-order hint: they are not the head's
// own compactions, so they must not raise the time below which the main
// TSDB drops WAL samples at its next open (its min valid time), or samples
// the fresh head took below their end would be dropped. Once the compactor
// merges such a block with an in-order one the hint goes, so the main WAL's
// floor (the oldest time its in-order samples can have) is kept in
// <dir>/replay/wal-floor, and a start-up whose blocks reach above it
// replays that WAL in the background too, where no block is in the way.
const (
	replayDirName = "replay"
	movingSuffix  = ".moving"
	walFloorFile  = "wal-floor"
)

// headFiles are the entries of a TSDB dir that its head reads at open, and
// the own head's dir (ownhead.go): they move aside together.
func headFiles(dir string) ([]string, error) {
	var names []string
	for _, n := range []string{"wal", "wbl", "chunks_head", ownHeadDir} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			names = append(names, n)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	snaps, err := filepath.Glob(filepath.Join(dir, "chunk_snapshot.*"))
	if err != nil {
		return nil, err
	}
	for _, s := range snaps {
		names = append(names, filepath.Base(s))
	}
	return names, nil
}

// headBytes is what a TSDB's head would read at open: its head files, but
// of the WAL only what a head snapshot does not cover.
func headBytes(dir string) (int64, error) {
	names, err := headFiles(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, name := range names {
		var b int64
		switch name {
		case "wal":
			b, err = walReplayBytes(dir)
		case ownHeadDir:
			// It reads its WAL whole; its chunk files it removes.
			if b, err = fileutil.DirSize(filepath.Join(dir, name, "wal")); errors.Is(err, os.ErrNotExist) {
				b, err = 0, nil
			}
		default:
			b, err = fileutil.DirSize(filepath.Join(dir, name))
		}
		if err != nil {
			return 0, err
		}
		n += b
	}
	return n, nil
}

// walReplayBytes is what the head reads of dir's WAL at open. After a
// graceful stop the head loads its snapshot (chunk_snapshot.<segment>.<offset>)
// and replays only the WAL written after that point, and the checkpoint only
// when it is newer, as the TSDB's Head.Init does; so a restart does not
// count a large WAL that it will not read. Without a snapshot the TSDB can
// use (none, or the WAL ends before it), the whole WAL counts.
func walReplayBytes(dir string) (int64, error) {
	walDir := filepath.Join(dir, "wal")
	whole := func() (int64, error) { return fileutil.DirSize(walDir) }
	_, snapSeg, snapOff, err := tsdb.LastChunkSnapshot(dir)
	if err != nil {
		return whole()
	}
	first, last, err := wlog.Segments(walDir)
	if err != nil || last < snapSeg {
		return whole()
	}
	var n int64
	from := snapSeg
	if cp, cpSeg, err := wlog.LastCheckpoint(walDir); err == nil && cpSeg >= snapSeg {
		if n, err = fileutil.DirSize(cp); err != nil {
			return 0, err
		}
		from = cpSeg + 1
	}
	for i := max(first, from); i <= last; i++ {
		fi, err := os.Stat(wlog.SegmentName(walDir, i))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		size := fi.Size()
		if i == snapSeg {
			size = max(size-int64(snapOff), 0)
		}
		n += size
	}
	return n, nil
}

// stageReplay moves dir's head files into a new replay dir when they are
// at least minBytes (0: never for size), when the blocks reach above the
// WAL's floor or when an own head's files are there and ownHead is off
// (metrics.head switched back), and returns every replay dir waiting,
// oldest first. A move a crash interrupted is finished first: the main
// TSDB never opened since, so what is left of its head files belongs to it.
func stageReplay(dir string, minBytes int64, ownHead bool, logger *slog.Logger) (_ []string, err error) {
	// So that a second process on the same dir cannot have its WAL moved
	// away; released for the TSDB to take.
	unlock, err := lockMetricsDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, unlock()) }()
	rdir := filepath.Join(dir, replayDirName)
	nums, moving, err := listReplayDirs(rdir)
	if err != nil {
		return nil, err
	}
	moved := len(moving) > 0
	for _, m := range moving {
		if err := moveHeadFiles(dir, rdir, m); err != nil {
			return nil, err
		}
		n, _ := strconv.Atoi(strings.TrimSuffix(m, movingSuffix))
		nums = append(nums, n)
	}
	slices.Sort(nums)
	if len(moving) == 0 {
		why, err := replayReason(dir, minBytes, ownHead)
		if err != nil {
			return nil, err
		}
		if why != "" {
			n := 1
			if len(nums) > 0 {
				n = nums[len(nums)-1] + 1
			}
			bytes, _ := headBytes(dir)
			logger.Info("moving the metrics WAL aside to replay it in the background; the store takes writes at once",
				"dir", dir, "bytes", bytes, "reason", why, "replay_dir", filepath.Join(rdir, strconv.Itoa(n)))
			if err := os.MkdirAll(rdir, 0o755); err != nil {
				return nil, fmt.Errorf("create replay dir: %w", err)
			}
			if err := syncDir(dir); err != nil {
				return nil, err
			}
			name := strconv.Itoa(n) + movingSuffix
			if err := os.Mkdir(filepath.Join(rdir, name), 0o755); err != nil {
				return nil, fmt.Errorf("create replay dir: %w", err)
			}
			if err := moveHeadFiles(dir, rdir, name); err != nil {
				return nil, err
			}
			nums = append(nums, n)
			moved = true
		}
	}
	if moved {
		// The fresh head's WAL starts above every in-order block: its floor.
		if err := writeWALFloor(dir, inOrderMaxTime(dir)); err != nil {
			return nil, err
		}
	}
	dirs := make([]string, len(nums))
	for i, n := range nums {
		dirs[i] = filepath.Join(rdir, strconv.Itoa(n))
	}
	return dirs, nil
}

// lockMetricsDir takes the TSDB's own lock on dir, which a running store
// holds. A lock file this made goes at unlock: the TSDB takes one it finds
// for an unclean shutdown (its log line and prometheus_tsdb_clean_start).
func lockMetricsDir(dir string) (unlock func() error, err error) {
	lockPath := filepath.Join(dir, "lock")
	lock, existed, err := fileutil.Flock(lockPath)
	if err != nil {
		return nil, fmt.Errorf("lock the metrics dir (is another process using it?): %w", err)
	}
	return func() error {
		err := lock.Release()
		if !existed {
			err = errors.Join(err, os.Remove(lockPath))
		}
		return err
	}, nil
}

// listReplayDirs returns the numbers of the complete replay dirs and the
// names of those a move was filling.
func listReplayDirs(rdir string) (nums []int, moving []string, err error) {
	entries, err := os.ReadDir(rdir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list replay dirs: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := strings.TrimSuffix(e.Name(), movingSuffix)
		n, err := strconv.Atoi(name)
		if err != nil || n <= 0 {
			continue
		}
		if name != e.Name() {
			moving = append(moving, e.Name())
			continue
		}
		nums = append(nums, n)
	}
	return nums, moving, nil
}

// moveHeadFiles renames dir's head files into rdir/name (a dir ending in
// movingSuffix) and then renames that dir to its number: until then a
// crash leaves it to be finished, after it the move is whole.
func moveHeadFiles(dir, rdir, name string) error {
	dst := filepath.Join(rdir, name)
	names, err := headFiles(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(dir, n), filepath.Join(dst, n)); err != nil {
			return fmt.Errorf("move %s to the replay dir: %w", n, err)
		}
	}
	for _, d := range []string{dst, dir} {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	if err := os.Rename(dst, filepath.Join(rdir, strings.TrimSuffix(name, movingSuffix))); err != nil {
		return fmt.Errorf("complete the replay dir: %w", err)
	}
	return syncDir(rdir)
}

// replayReason says why dir's head files should replay in the background,
// or "" when they replay at open as usual.
func replayReason(dir string, minBytes int64, ownHead bool) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, ownHeadDir)); err == nil && !ownHead {
		return "metrics.head is no longer vispyr: the own head's samples go into blocks", nil
	}
	n, err := headBytes(dir)
	if err != nil || n == 0 {
		return "", err
	}
	if minBytes > 0 && n >= minBytes {
		return "size", nil
	}
	floor, ok, err := readWALFloor(dir)
	if err != nil || !ok {
		return "", err
	}
	maxt := inOrderMaxTime(dir)
	if maxt <= floor {
		return "", nil
	}
	// A checkpoint records the time below which the WAL has no samples.
	if mvt, ok, err := wlog.ReadMinValidTime(filepath.Join(dir, "wal")); err == nil && ok && mvt >= maxt {
		return "", nil
	}
	return "blocks above the WAL's floor", nil
}

// inOrderMaxTime is, as the TSDB computes it at open, the newest end of the
// blocks not made of out-of-order, stale or selected series only: the TSDB
// drops WAL samples older than that. math.MinInt64 without such blocks.
func inOrderMaxTime(dir string) int64 {
	maxt := int64(math.MinInt64)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if _, err := ulid.ParseStrict(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "meta.json"))
		if err != nil {
			continue
		}
		var m tsdb.BlockMeta
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		c := m.Compaction
		if !c.FromOutOfOrder() && !c.FromStaleSeries() && !c.FromSelectedSeries() && m.MaxTime > maxt {
			maxt = m.MaxTime
		}
	}
	return maxt
}

func readWALFloor(dir string) (int64, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, replayDirName, walFloorFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read the WAL's floor: %w", err)
	}
	f, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("read the WAL's floor: %w", err)
	}
	return f, true, nil
}

// writeWALFloor replaces the floor file atomically.
func writeWALFloor(dir string, floor int64) error {
	rdir := filepath.Join(dir, replayDirName)
	tmp := filepath.Join(rdir, walFloorFile+".tmp")
	f, err := os.Create(tmp)
	if err == nil {
		_, err = f.WriteString(strconv.FormatInt(floor, 10) + "\n")
		err = errors.Join(err, f.Sync(), f.Close())
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(rdir, walFloorFile))
	}
	if err == nil {
		err = syncDir(rdir)
	}
	if err != nil {
		return fmt.Errorf("write the WAL's floor: %w", err)
	}
	return nil
}

// raiseWALFloor, at a graceful stop, raises the floor to the head's oldest
// sample: every older one of the WAL is in a block by then, so the next
// open may drop it. An empty head leaves no sample the floor must keep.
func raiseWALFloor(db *tsdb.DB) error {
	floor, ok, err := readWALFloor(db.Dir())
	if err != nil || !ok {
		return err
	}
	h := db.Head()
	if h.NumSeries() == 0 || h.MinTime() == math.MaxInt64 {
		return os.Remove(filepath.Join(db.Dir(), replayDirName, walFloorFile))
	}
	if h.MinTime() <= floor {
		return nil
	}
	return writeWALFloor(db.Dir(), h.MinTime())
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// ensureWALFloor gives the WAL a floor when replay dirs will land blocks
// beside a WAL that replayed at open: the head's oldest sample, or, when
// it is empty, the time below which the TSDB refuses samples.
func ensureWALFloor(db *tsdb.DB) error {
	if _, ok, err := readWALFloor(db.Dir()); err != nil || ok {
		return err
	}
	floor := db.Head().MinTime()
	if floor == math.MaxInt64 {
		floor = inOrderMaxTime(db.Dir())
	}
	return writeWALFloor(db.Dir(), floor)
}

// replayHook is called at each step of a background replay (tests stop
// there: "opened", "block" after each block written, "loaded").
var replayHook = func(stage string) {}

// replayPoll is how often a replay looks whether the main TSDB has loaded
// its blocks (the TSDB reloads its blocks every blockReloadInterval).
var replayPoll = time.Second

// replays runs the background replays: one replay head at a time, since
// each can take gigabytes beside the main heads.
type replays struct {
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex    // held while a replay writes into a main TSDB's dir
	one     chan struct{} // one replay head at a time
	pending atomic.Int64  // head file bytes still to replay, every tenant

	runMu   sync.Mutex
	running int
	started bool
	done    chan struct{} // closed once the start-up's replays ended
}

func newReplays() *replays {
	ctx, cancel := context.WithCancel(context.Background())
	return &replays{ctx: ctx, cancel: cancel, one: make(chan struct{}, 1), done: make(chan struct{})}
}

// begin counts a tenant's replay in; end counts it out.
func (r *replays) begin() {
	r.runMu.Lock()
	r.running++
	r.runMu.Unlock()
}

func (r *replays) end() {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	r.running--
	r.closeIfIdle()
}

// opened ends the start-up: the gate opens once its replays ended.
func (r *replays) opened() {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	r.started = true
	r.closeIfIdle()
}

func (r *replays) closeIfIdle() {
	if r.started && r.running == 0 {
		select {
		case <-r.done:
		default:
			close(r.done)
		}
	}
}

// stop ends the replays at their next step and waits for any write into a
// main TSDB's dir; a replay still opening its TSDB notices when that ends.
func (r *replays) stop() {
	r.cancel()
	r.mu.Lock()
	r.mu.Unlock() //nolint:staticcheck // waits for the writer
}

// Replayed is closed once every WAL the start-up moved aside is in the
// stores' blocks (at once when none was): until then queries over its
// range come back incomplete, and rules wait.
func (s *Storage) Replayed() <-chan struct{} { return s.replays.done }

// ReplayPendingBytes is how many bytes of head files still replay in the
// background.
func (s *Storage) ReplayPendingBytes() int64 { return s.replays.pending.Load() }

// startReplay replays the tenant's replay dirs, oldest first, in the
// background.
func (s *Storage) startReplay(t *tenantDB, dirs []string) {
	sizes := make([]int64, len(dirs))
	for i, d := range dirs {
		sizes[i], _ = headBytes(d)
		t.replaying.Add(sizes[i])
		s.replays.pending.Add(sizes[i])
	}
	s.replays.begin()
	go func() {
		defer s.replays.end()
		for i, d := range dirs {
			err := s.replayDir(t, d, sizes[i])
			if s.replays.ctx.Err() != nil {
				return
			}
			t.replaying.Add(-sizes[i])
			s.replays.pending.Add(-sizes[i])
			if err != nil {
				s.logger.Error("background metrics WAL replay failed; it stays for the next start", "tenant", t.id, "dir", d, "err", err)
			}
		}
	}()
}

// replayDir opens a TSDB on the replay dir (the TSDB's own replay, with its
// progress lines), writes its head as blocks into the tenant's TSDB dir,
// waits until that TSDB loaded them, and removes the replay dir.
func (s *Storage) replayDir(t *tenantDB, dir string, size int64) error {
	r := s.replays
	select {
	case r.one <- struct{}{}:
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	defer func() { <-r.one }()
	start := time.Now()
	logger := s.logger.With("tenant", t.id, "replay_dir", dir)
	logger.Info("replaying a metrics WAL in the background", "bytes", size)
	opts := s.tsdbOpts()
	// A snapshot is read only with this on, and written again at close:
	// only when there is one to read.
	snaps, _ := filepath.Glob(filepath.Join(dir, "chunk_snapshot.*"))
	opts.EnableMemorySnapshotOnShutdown = len(snaps) > 0
	stopProgress := logOpening(logger, start, openingLogEvery)
	rdb, err := tsdb.Open(dir, logger.With("component", "tsdb"), nil, opts, nil)
	stopProgress()
	if err != nil {
		return fmt.Errorf("open the replay TSDB: %w", err)
	}
	// Its head goes into the main TSDB's dir, never into blocks of its own.
	rdb.DisableCompactions()
	replayHook("opened")
	w, err := s.newBlockWriter(t.db.Dir(), opts.MinBlockDuration, logger)
	if err == nil {
		err = w.writeReplayBlocks(rdb)
	}
	if err == nil {
		err = w.replayOwnHead(dir, logger)
	}
	var ids []ulid.ULID
	if w != nil {
		ids = w.ids
	}
	if err == nil && len(ids) > 0 {
		// The TSDB loads new blocks every blockReloadInterval, and at once
		// after compacting its out-of-order head (what its next head
		// compaction would do anyway).
		if err := t.db.CompactOOOHead(r.ctx); err != nil {
			logger.Warn("compact the out-of-order head to load the replayed blocks", "err", err)
		}
		err = waitLoaded(r.ctx, t.db, ids)
	}
	if err = errors.Join(err, rdb.Close()); err != nil {
		return err
	}
	replayHook("loaded")
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove the replay dir: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	logger.Info("background metrics WAL replay done", "took", time.Since(start).Round(time.Millisecond), "blocks", len(ids))
	return nil
}

// blockWriter writes replayed heads into a main TSDB's dir as blocks
// aligned to the block range, each marked out-of-order (see the top of
// this file).
type blockWriter struct {
	ctx  context.Context // ends the writing between blocks
	mu   *sync.Mutex     // held while a block is written into dest
	comp *tsdb.LeveledCompactor
	dest string
	size int64
	base *tsdb.BlockMeta
	ids  []ulid.ULID // the blocks written
}

func (s *Storage) newBlockWriter(dest string, size int64, logger *slog.Logger) (*blockWriter, error) {
	return newBlockWriter(s.replays.ctx, &s.replays.mu, dest, size, logger)
}

func newBlockWriter(ctx context.Context, mu *sync.Mutex, dest string, size int64, logger *slog.Logger) (*blockWriter, error) {
	comp, err := tsdb.NewLeveledCompactorWithOptions(ctx, nil, logger, []int64{size}, nil,
		tsdb.LeveledCompactorOptions{EnableOverlappingCompaction: true})
	if err != nil {
		return nil, fmt.Errorf("create the replay compactor: %w", err)
	}
	base := &tsdb.BlockMeta{}
	base.Compaction.SetOutOfOrder()
	return &blockWriter{ctx: ctx, mu: mu, comp: comp, dest: dest, size: size, base: base}, nil
}

// writeRanges writes the block ranges from the one mint is in to the one
// maxt is in, each read through rangeOf (inclusive bounds); nothing when
// mint > maxt (an empty head).
func (w *blockWriter) writeRanges(mint, maxt int64, rangeOf func(mint, maxt int64) tsdb.BlockReader) error {
	for t := alignDown(mint, w.size); mint <= maxt && t <= maxt; t += w.size {
		if err := w.write(rangeOf(t, t+w.size-1), t); err != nil {
			return err
		}
	}
	return nil
}

func (w *blockWriter) write(b tsdb.BlockReader, mint int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.ctx.Err(); err != nil {
		return err
	}
	uids, err := w.comp.Write(w.dest, b, mint, mint+w.size, w.base)
	if err != nil {
		return fmt.Errorf("write a replayed block: %w", err)
	}
	w.ids = append(w.ids, uids...)
	replayHook("block")
	return nil
}

// writeReplayBlocks writes the replay TSDB's head, in-order and out-of-order
// samples alike.
func (w *blockWriter) writeReplayBlocks(rdb *tsdb.DB) error {
	rh := rdb.Head()
	if rh.NumSeries() > 0 {
		err := w.writeRanges(rh.MinTime(), rh.MaxTime(), func(mint, maxt int64) tsdb.BlockReader {
			return tsdb.NewRangeHeadWithIsolationDisabled(rh, mint, maxt)
		})
		if err != nil {
			return err
		}
	}
	ooo, err := tsdb.NewOOOCompactionHead(w.ctx, rh)
	if err != nil {
		return fmt.Errorf("read the replayed out-of-order head: %w", err)
	}
	return w.writeRanges(ooo.MinTime(), ooo.MaxTime(), func(mint, maxt int64) tsdb.BlockReader {
		return ooo.CloneForTimeRange(mint, maxt)
	})
}

// replayOwnHead opens the own head moved into the replay dir, if any (its
// WAL replays as it opens, with the progress lines of a store opening),
// and writes it as blocks.
func (w *blockWriter) replayOwnHead(dir string, logger *slog.Logger) error {
	hd := filepath.Join(dir, ownHeadDir)
	if _, err := os.Stat(hd); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	logger = logger.With("head", "vispyr")
	stopProgress := logOpening(logger, time.Now(), openingLogEvery)
	h, err := head.New(head.Options{ChunkRange: w.size, ChunkDir: filepath.Join(hd, "chunks_head"),
		WALDir: filepath.Join(hd, "wal"), Logger: logger})
	stopProgress()
	if err != nil {
		return fmt.Errorf("open the replayed own head: %w", err)
	}
	replayHook("opened own head")
	err = w.writeRanges(h.MinTime(), h.MaxTime(), func(mint, maxt int64) tsdb.BlockReader { return h.Range(mint, maxt) })
	return errors.Join(err, h.Close())
}

// WriteOwnHeadBlocks writes the own head (metrics.head: vispyr) that the
// stopped store's metrics dir holds, if any, into blocks in dest, as a
// start-up writes an own head it replays in the background: its WAL
// replayed, cut at the block range, each block marked out-of-order. For
// tools on a stopped store (the remote-write bench's compacted size); it
// takes the dir's lock, since the replay rewrites the own head's chunk
// files. It returns the blocks written, none for a dir without an own head.
func WriteOwnHeadBlocks(ctx context.Context, dir, dest string, logger *slog.Logger) (_ []ulid.ULID, err error) {
	unlock, err := lockMetricsDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, unlock()) }()
	// The store's block range (tsdbOpts keeps the TSDB's default).
	w, err := newBlockWriter(ctx, &sync.Mutex{}, dest, tsdb.DefaultOptions().MinBlockDuration, logger)
	if err != nil {
		return nil, err
	}
	err = w.replayOwnHead(dir, logger)
	return w.ids, err
}

// alignDown is the start of the block range t falls in.
func alignDown(t, size int64) int64 {
	if t == math.MaxInt64 { // an empty head
		return t
	}
	return t - ((t%size)+size)%size
}

// waitLoaded waits until db has loaded each block (or compacted it into
// another, or retention deleted it).
func waitLoaded(ctx context.Context, db *tsdb.DB, ids []ulid.ULID) error {
	for {
		have := map[ulid.ULID]bool{}
		for _, b := range db.Blocks() {
			for _, src := range b.Meta().Compaction.Sources {
				have[src] = true
			}
		}
		missing := 0
		for _, id := range ids {
			if _, err := os.Stat(filepath.Join(db.Dir(), id.String())); !have[id] && err == nil {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(replayPoll):
		}
	}
}

// replayWarning is the warning queries of the tenant carry while a WAL of
// it replays in the background (Grafana shows a query's warnings), or nil.
func (t *tenantDB) replayWarning() error {
	n := t.replaying.Load()
	if n <= 0 {
		return nil
	}
	return fmt.Errorf("metrics store: %d MB of WAL still replaying; recent data may be incomplete", (n+1<<20-1)>>20)
}

// warnQuerier adds a warning to every answer of a querier opened while
// the tenant's WAL was still replaying: the blocks it sees lack that data,
// even if the replay ends before it is read.
type warnQuerier struct {
	storage.Querier
	warning error
}

func (q warnQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return warnSeriesSet{q.Querier.Select(ctx, sortSeries, hints, ms...), q.warning}
}

func (q warnQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	v, ws, err := q.Querier.LabelValues(ctx, name, hints, ms...)
	return v, ws.Add(q.warning), err
}

func (q warnQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	v, ws, err := q.Querier.LabelNames(ctx, hints, ms...)
	return v, ws.Add(q.warning), err
}

type warnSeriesSet struct {
	storage.SeriesSet
	warning error
}

func (s warnSeriesSet) Warnings() annotations.Annotations {
	ws := s.SeriesSet.Warnings()
	return ws.Add(s.warning)
}
