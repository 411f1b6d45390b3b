package head

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
)

// Compactable reports whether the head spans more than one and a half
// chunk ranges, as Prometheus's head does before its DB writes its oldest
// range into a block: the range then ends at least half a chunk range
// before the newest sample, where appends are no longer taken.
func (h *Head) Compactable() bool {
	mint, maxt := h.MinTime(), h.MaxTime()
	return mint <= maxt && maxt-mint > h.chunkRange/2*3
}

// CompactOldest writes the head's oldest chunk range, [MinTime, the end of
// the aligned range MinTime is in), into a block in dir with c, and then
// truncates the head at the range's end, as Prometheus's DB compacts its
// head. It does nothing and reports false if the head is not Compactable;
// call it until then. id is the zero ULID if the range held no sample (c
// writes no block then). loaded, if not nil, is called with a block
// written before the head drops its samples, for the caller to open it and
// query it from then on, as Prometheus's DB reloads its blocks before it
// truncates its head; if it fails, the head is left as it was.
//
// Appends into the range are refused from the start (storage.ErrOutOfBounds
// at Commit for those appended before), so that every committed sample of
// the range is in the block before the head drops it.
func (h *Head) CompactOldest(ctx context.Context, c *tsdb.LeveledCompactor, dir string, loaded func(ulid.ULID) error) (id ulid.ULID, compacted bool, err error) {
	h.truncMu.Lock()
	defer h.truncMu.Unlock()
	if !h.Compactable() {
		return ulid.ULID{}, false, nil
	}
	mint := h.MinTime()
	maxt := rangeEnd(mint, h.chunkRange)
	h.fence(maxt)
	// A commit the fence waited for may have added samples older than the
	// MinTime read before it: the block must hold them too, or truncation
	// drops them.
	mint = min(mint, h.MinTime())
	ids, err := c.Write(dir, h.Range(mint, maxt-1), mint, maxt, h.blockMeta)
	if err != nil {
		return ulid.ULID{}, false, fmt.Errorf("head: write block [%d, %d): %w", mint, maxt, err)
	}
	if len(ids) > 0 {
		id = ids[0]
		if err := loadBlock(loaded, dir, id); err != nil {
			return ulid.ULID{}, false, err
		}
	}
	if err := h.truncate(ctx, maxt); err != nil {
		return id, true, fmt.Errorf("head: after writing block %s: %w", id, err)
	}
	return id, true, nil
}

// rangeEnd is the end of the aligned range of width t is in, computed as
// Prometheus's rangeForTimestamp (and headchunks' chunk cuts) do.
func rangeEnd(t, width int64) int64 { return (t/width)*width + width }

// loadBlock hands block id to loaded, and removes it if loaded fails.
func loadBlock(loaded func(ulid.ULID) error, dir string, id ulid.ULID) error {
	if loaded == nil {
		return nil
	}
	if err := loaded(id); err != nil {
		return errors.Join(fmt.Errorf("head: load block %s: %w", id, err), os.RemoveAll(filepath.Join(dir, id.String())))
	}
	return nil
}
