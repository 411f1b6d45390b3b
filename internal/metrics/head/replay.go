package head

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
)

// replayStats counts what a replay did, for its log line.
type replayStats struct {
	series, samples, remapped, unknownRefs, refused, badRecords int
	exemplars, exemplarsOfUnknownSeries                         int
}

// replayer carries a replay's state from record to record.
type replayer struct {
	h       *Head
	logger  *slog.Logger
	dec     record.Decoder
	remap   map[chunks.HeadSeriesRef]uint32
	series  []record.RefSeries
	samples []record.RefSample
	buf     []byte // the record being replayed, decompressed
	st      replayStats

	onExemplar func(labels.Labels, exemplar.Exemplar) // nil: exemplars records are skipped
	exemplars  []record.RefExemplar
	sb         labels.ScratchBuilder
}

// replay rebuilds the head from its WAL, the newest checkpoint first:
// series take the refs they had (seriesindex.AddAt), samples are appended
// as they were committed. A series whose record came below refs already
// replayed (a record repeated after a failed write) gets a new ref, and its
// samples follow it there.
func (h *Head) replay(logger *slog.Logger, onExemplar func(labels.Labels, exemplar.Exemplar)) (replayStats, error) {
	r := &replayer{h: h, logger: logger, dec: record.NewDecoder(nil, logger), remap: map[chunks.HeadSeriesRef]uint32{}, onExemplar: onExemplar}
	cp, from, err := lastCheckpoint(h.log.w.Dir())
	if err != nil {
		return r.st, err
	}
	if cp != "" {
		if err := replayDir(cp, logger, func(rec []byte) error { r.record(-1, rec); return nil }); err != nil {
			return r.st, fmt.Errorf("head: replay WAL checkpoint %s: %w", cp, err)
		}
	}
	err = h.log.w.Replay(func(seg int, rec []byte) error {
		if seg >= from { // below, the checkpoint has what is needed
			r.record(seg, rec)
		}
		return nil
	})
	if err != nil {
		return r.st, fmt.Errorf("head: replay WAL: %w", err)
	}
	return r.st, removeCheckpointsBefore(h.log.w.Dir(), from)
}

func (r *replayer) record(seg int, rec []byte) {
	var err error
	if r.buf, err = decodeRecord(r.buf, rec); err != nil {
		r.st.badRecords++
		r.logger.Warn("skipping an undecodable record of the head's WAL", "segment", seg, "err", err)
		return
	}
	rec = r.buf // series labels point into it until the next record
	switch r.dec.Type(rec) {
	case record.Series:
		if r.series, err = r.dec.Series(rec, r.series[:0]); err == nil {
			for _, s := range r.series {
				r.h.replaySeries(s, r.remap, &r.st)
			}
		}
	case record.Samples:
		if r.samples, err = r.dec.Samples(rec, r.samples[:0]); err == nil {
			r.h.replaySamples(r.samples, r.remap, &r.st)
		}
	case record.Exemplars:
		if r.onExemplar == nil {
			break
		}
		if r.exemplars, err = r.dec.Exemplars(rec, r.exemplars[:0]); err == nil {
			r.replayExemplars()
		}
	}
	if err != nil {
		r.st.badRecords++
		r.logger.Warn("skipping an undecodable record of the head's WAL", "segment", seg, "err", err)
	}
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
	bt := h.samples.Batch()
	for _, s := range samples {
		ref, ok := remap[s.Ref]
		if !ok {
			ref = uint32(s.Ref)
		}
		if !h.index.Has(ref) {
			st.unknownRefs++
			continue
		}
		bt.Add(ref, s.T, s.V)
	}
	bt.Flush()
	if bt.Appended > 0 {
		h.widen(bt.Mint, bt.Maxt)
	}
	st.samples += bt.Appended
	st.refused += bt.Refused
}

// replayExemplars hands each exemplar to onExemplar with its series'
// labels, as the TSDB's head adds its WAL's exemplars to its exemplar
// storage at open (without HasTs, which the record does not keep). An
// exemplar of a series removed since (or never replayed) is skipped.
func (r *replayer) replayExemplars() {
	for _, e := range r.exemplars {
		ref, ok := r.remap[e.Ref]
		if !ok {
			ref = uint32(e.Ref)
		}
		if !r.h.index.AppendLabels(&r.sb, ref) {
			r.st.exemplarsOfUnknownSeries++
			continue
		}
		r.onExemplar(r.sb.Labels(), exemplar.Exemplar{Labels: e.Labels, Value: e.V, Ts: e.T})
		r.st.exemplars++
	}
	clear(r.exemplars) // the labels
}
