package head

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
)

// replayStats counts what a replay did, for its log line.
type replayStats struct {
	series, samples, remapped, unknownRefs, refused, badRecords int
}

// replay rebuilds the head from its WAL: series take the refs they had
// (seriesindex.AddAt), samples are appended as they were committed. A
// series whose record came below refs already replayed (a record repeated
// after a failed write) gets a new ref, and its samples follow it there.
func (h *Head) replay(logger *slog.Logger) (replayStats, error) {
	var st replayStats
	dec := record.NewDecoder(nil, logger)
	remap := map[chunks.HeadSeriesRef]uint32{}
	var series []record.RefSeries
	var samples []record.RefSample
	err := h.log.w.Replay(func(seg int, rec []byte) error {
		var err error
		switch dec.Type(rec) {
		case record.Series:
			if series, err = dec.Series(rec, series[:0]); err == nil {
				for _, s := range series {
					h.replaySeries(s, remap, &st)
				}
			}
		case record.Samples:
			if samples, err = dec.Samples(rec, samples[:0]); err == nil {
				h.replaySamples(samples, remap, &st)
			}
		}
		if err != nil {
			st.badRecords++
			logger.Warn("skipping an undecodable record of the head's WAL", "segment", seg, "err", err)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("head: replay WAL: %w", err)
	}
	return st, nil
}

func (h *Head) replaySeries(s record.RefSeries, remap map[chunks.HeadSeriesRef]uint32, st *replayStats) {
	got, created, err := h.index.AddAt(s.Labels, uint32(s.Ref))
	if err != nil {
		got, created = h.index.Add(s.Labels) // a repeat below later refs
	}
	if created {
		st.series++
	}
	if got == uint32(s.Ref) {
		h.log.setDurable(got)
		return
	}
	remap[s.Ref] = got
	st.remapped++
}

func (h *Head) replaySamples(samples []record.RefSample, remap map[chunks.HeadSeriesRef]uint32, st *replayStats) {
	for _, s := range samples {
		ref, ok := remap[s.Ref]
		if !ok {
			ref = uint32(s.Ref)
		}
		if !h.index.Has(ref) {
			st.unknownRefs++
			continue
		}
		if err := h.samples.Append(ref, s.T, s.V); err != nil {
			st.refused++
			continue
		}
		h.widen(s.T, s.T)
		st.samples++
	}
}
