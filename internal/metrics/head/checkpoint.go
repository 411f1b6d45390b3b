package head

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"

	"github.com/vispyr/vispyr/internal/wal"
)

// A checkpoint lets the WAL drop its oldest segments once their samples
// before some time mint are in blocks, as Prometheus's WAL checkpoints do:
// checkpoint.N, a directory in the WAL's, is a WAL of its own holding what
// of segments below N (and of the checkpoint before) the head still needs,
// the records of its live series and their samples and exemplars from mint
// on. Replay reads the newest checkpoint, then the segments from N on.

const checkpointPrefix = "checkpoint."

// lastCheckpoint returns the newest checkpoint in walDir and its N, or ""
// and 0 without one.
func lastCheckpoint(walDir string) (dir string, n int, err error) {
	ents, err := os.ReadDir(walDir)
	if err != nil && !os.IsNotExist(err) {
		return "", 0, fmt.Errorf("head: list WAL checkpoints: %w", err)
	}
	for _, e := range ents {
		num, ok := strings.CutPrefix(e.Name(), checkpointPrefix)
		if i, err := strconv.Atoi(num); ok && err == nil && e.IsDir() && i >= n {
			dir, n = filepath.Join(walDir, e.Name()), i
		}
	}
	return dir, n, nil
}

// TruncateWAL checkpoints the oldest two thirds of the WAL's segments,
// keeping the live series and the samples from mint on, and removes them:
// run it once the samples before mint are in blocks and the series without
// samples left are removed.
func (h *Head) TruncateWAL(ctx context.Context, mint int64) error {
	if h.log == nil {
		return nil
	}
	segs, err := h.log.w.Segments()
	if err != nil || len(segs) < 3 {
		return err
	}
	to := segs[len(segs)*2/3].Index // the first segment kept
	prev, _, err := lastCheckpoint(h.log.w.Dir())
	if err != nil {
		return err
	}
	dir := filepath.Join(h.log.w.Dir(), fmt.Sprintf("%s%08d", checkpointPrefix, to))
	if err := h.writeCheckpoint(ctx, dir, prev, segs, to, mint); err != nil {
		return fmt.Errorf("head: write WAL checkpoint %s: %w", dir, err)
	}
	if err := h.log.w.TruncateBefore(to); err != nil {
		return fmt.Errorf("head: truncate WAL: %w", err)
	}
	return removeCheckpointsBefore(h.log.w.Dir(), to)
}

// writeCheckpoint writes the checkpoint into dir+".tmp" and renames it.
func (h *Head) writeCheckpoint(ctx context.Context, dir, prev string, segs []wal.Segment, to int, mint int64) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	cp, err := wal.Open(tmp, wal.Options{Name: "metrics_head_checkpoint", Logger: h.logger})
	if err != nil {
		return err
	}
	err = h.checkpointSeries(ctx, cp)
	if err == nil && prev != "" {
		err = h.checkpointSamples(ctx, cp, mint, func(fn func([]byte) error) error { return replayDir(prev, h.logger, fn) })
	}
	if err == nil {
		err = h.checkpointSamples(ctx, cp, mint, func(fn func([]byte) error) error { return readSegments(ctx, h.log.w, segs, to, fn) })
	}
	if cerr := cp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// checkpointSeries writes the live series' records, ascending, in records
// of up to 10,000.
func (h *Head) checkpointSeries(ctx context.Context, cp *wal.WAL) error {
	var enc record.Encoder
	var sb labels.ScratchBuilder
	var batch []record.RefSeries
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := cp.Append(ctx, encodeRecord(enc.Series(batch, nil)))
		batch = batch[:0]
		return err
	}
	for ref := range h.index.MaxRef() + 1 {
		if ref > 0 && h.index.AppendLabels(&sb, ref) {
			batch = append(batch, record.RefSeries{Ref: chunks.HeadSeriesRef(ref), Labels: sb.Labels()})
		}
		if len(batch) == 10000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// checkpointSamples copies the samples and exemplars records read gives,
// keeping the samples and exemplars from mint on of live series. That is
// the rule of Prometheus's checkpoint (tsdb/wlog/checkpoint.go) for both,
// except that it keeps the exemplars of series gone too: replay skips
// those, so leaving them out changes nothing but the checkpoint's size.
func (h *Head) checkpointSamples(ctx context.Context, cp *wal.WAL, mint int64, read func(func([]byte) error) error) error {
	var enc record.Encoder
	dec := record.NewDecoder(nil, h.logger)
	var samples []record.RefSample
	var exemplars []record.RefExemplar
	var buf []byte
	return read(func(rec []byte) error {
		var err error
		if buf, err = decodeRecord(buf, rec); err != nil {
			return nil // replay skips it too
		}
		rec = buf
		var out []byte
		switch dec.Type(rec) {
		case record.Samples:
			if samples, err = dec.Samples(rec, samples[:0]); err != nil {
				return nil // replay skips it too
			}
			if kept := slices.DeleteFunc(samples, func(s record.RefSample) bool { return !h.keep(s.Ref, s.T, mint) }); len(kept) > 0 {
				out = enc.Samples(kept, nil)
			}
		case record.Exemplars:
			if exemplars, err = dec.Exemplars(rec, exemplars[:0]); err != nil {
				return nil // replay skips it too
			}
			if kept := slices.DeleteFunc(exemplars, func(e record.RefExemplar) bool { return !h.keep(e.Ref, e.T, mint) }); len(kept) > 0 {
				out = enc.Exemplars(kept, nil)
			}
		}
		if out == nil {
			return nil
		}
		return cp.Append(ctx, encodeRecord(out))
	})
}

// keep says whether a checkpoint keeps a sample or exemplar of series ref at t.
func (h *Head) keep(ref chunks.HeadSeriesRef, t, mint int64) bool {
	return t >= mint && h.index.Has(uint32(ref))
}

// readSegments reads the records of the WAL's segments below to.
func readSegments(ctx context.Context, w *wal.WAL, segs []wal.Segment, to int, fn func([]byte) error) error {
	var end wal.Pos // after the last record below to
	for _, s := range segs {
		if s.Index < to && s.Size > 0 {
			end = wal.Pos{Segment: s.Index, Offset: s.Size}
		}
	}
	if end == (wal.Pos{}) {
		return nil
	}
	r := w.NewReader(wal.Pos{Segment: segs[0].Index})
	for {
		rec, pos, err := r.Next(ctx)
		if err != nil {
			return fmt.Errorf("read WAL: %w", err)
		}
		if err := fn(rec); err != nil {
			return err
		}
		if !pos.Less(end) {
			return nil
		}
	}
}

// replayDir reads every record of the WAL in dir (a checkpoint).
func replayDir(dir string, logger *slog.Logger, fn func([]byte) error) error {
	w, err := wal.Open(dir, wal.Options{Name: "metrics_head_checkpoint", Logger: logger})
	if err != nil {
		return err
	}
	err = w.Replay(func(_ int, rec []byte) error { return fn(rec) })
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeCheckpointsBefore removes the checkpoints below n and any left
// half-written.
func removeCheckpointsBefore(walDir string, n int) error {
	ents, err := os.ReadDir(walDir)
	if err != nil {
		return fmt.Errorf("head: list WAL checkpoints: %w", err)
	}
	for _, e := range ents {
		num, ok := strings.CutPrefix(e.Name(), checkpointPrefix)
		i, err := strconv.Atoi(num)
		if ok && (err != nil || i < n) {
			if err := os.RemoveAll(filepath.Join(walDir, e.Name())); err != nil {
				return fmt.Errorf("head: remove old WAL checkpoint: %w", err)
			}
		}
	}
	return nil
}
