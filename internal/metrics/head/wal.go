package head

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"

	"github.com/vispyr/vispyr/internal/wal"
)

// The head's write-ahead log is Vispyr's one WAL (internal/wal, with
// AckOnWrite: a commit returns once written, segments are fsync'd whole)
// holding records in Prometheus's WAL encoding
// (tsdb/record): series records (ref and labels), samples records and, after
// the samples of the same commit as in the TSDB's WAL, exemplars records.
//
// Refs are the head's series refs, and a replay gives every series the ref
// it had (seriesindex.AddAt), so that what names series by ref (the head
// chunk files, later) stays valid. AddAt needs a WAL's series records in
// ascending ref order. Series are therefore created under walLog.mu, which
// queues each new series for the next commit, and every commit queues its
// records under the same lock: the WAL gets series in the order they were
// created, and each before any sample of theirs.
//
// A series' record is durable once a commit that carried it returned. Until
// then every commit with a sample of the series carries its record again, so
// a sample is never acknowledged without its series' record before it in
// the WAL, even when an earlier write failed (a full disk). Such a repeat
// may reach the WAL below refs already there; replay then gives the series
// a new ref (see replay.go).
type walLog struct {
	w *wal.WAL

	mu      sync.Mutex
	pending []uint32 // series created since the last commit queued its records, ascending
	durable []uint64 // bit per ref: its series record is durable
}

func (l *walLog) isDurable(ref uint32) bool {
	i := int(ref / 64)
	return i < len(l.durable) && l.durable[i]&(1<<(ref%64)) != 0
}

func (l *walLog) setDurable(ref uint32) {
	for int(ref/64) >= len(l.durable) {
		l.durable = append(l.durable, 0)
	}
	l.durable[ref/64] |= 1 << (ref % 64)
}

// create returns series lset's ref, creating it (and queueing its record)
// if it is new.
func (h *Head) create(lset labels.Labels) uint32 {
	if h.log == nil {
		ref, _ := h.index.Add(lset)
		return ref
	}
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	ref, created := h.index.Add(lset)
	if created {
		h.log.pending = append(h.log.pending, ref)
	}
	return ref
}

// logCommit writes a commit's samples and then its exemplars, after the
// records of the series created since the last commit and of those whose
// record is not durable yet, and returns once they are durable.
func (h *Head) logCommit(ctx context.Context, samples []pending, exemplars []pendingExemplar) error {
	bufs := commitBufsPool.Get().(*commitBufs)
	defer commitBufsPool.Put(bufs)
	samplesRec, exemplarsRec := bufs.encode(samples, exemplars)

	h.log.mu.Lock()
	series := h.unlogged(samples, exemplars)
	var waits []func() error
	err := h.enqueue(ctx, &waits, encodeRecord(h.seriesRecord(series)))
	if err == nil {
		err = h.enqueue(ctx, &waits, samplesRec)
	}
	if err == nil {
		err = h.enqueue(ctx, &waits, exemplarsRec)
	}
	h.log.mu.Unlock()

	for _, wait := range waits {
		if werr := wait(); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return fmt.Errorf("head: write WAL: %w", err)
	}
	h.log.mu.Lock()
	for _, ref := range series {
		h.log.setDurable(ref)
	}
	h.log.mu.Unlock()
	return nil
}

// unlogged takes the pending series and adds those of samples and
// exemplars whose record is not durable, ascending. The caller holds log.mu.
func (h *Head) unlogged(samples []pending, exemplars []pendingExemplar) []uint32 {
	series := h.log.pending
	h.log.pending = nil
	for _, s := range samples {
		if !h.log.isDurable(s.ref) {
			series = append(series, s.ref)
		}
	}
	for _, e := range exemplars {
		if !h.log.isDurable(e.ref) {
			series = append(series, e.ref)
		}
	}
	slices.Sort(series)
	return slices.Compact(series)
}

// commitBufs are a commit's WAL buffers, kept from commit to commit: the
// WAL holds a record until its wait returns, and logCommit waits.
type commitBufs struct {
	samples                  []record.RefSample
	exemplars                []record.RefExemplar
	record, compressed       []byte
	exemplarsRec, exemplarsC []byte
}

// encode encodes and compresses the samples and exemplars records, each
// nil if there are none.
func (b *commitBufs) encode(samples []pending, exemplars []pendingExemplar) (samplesRec, exemplarsRec []byte) {
	var enc record.Encoder
	if len(samples) > 0 {
		b.samples = b.samples[:0]
		for _, s := range samples {
			b.samples = append(b.samples, record.RefSample{Ref: chunks.HeadSeriesRef(s.ref), T: s.t, V: s.v})
		}
		b.record = enc.Samples(b.samples, b.record[:0])
		b.compressed = s2.EncodeSnappy(b.compressed[:cap(b.compressed)], b.record)
		samplesRec = b.compressed
	}
	if len(exemplars) > 0 {
		b.exemplars = b.exemplars[:0]
		for _, e := range exemplars {
			b.exemplars = append(b.exemplars, record.RefExemplar{Ref: chunks.HeadSeriesRef(e.ref), T: e.e.Ts, V: e.e.Value, Labels: e.e.Labels})
		}
		b.exemplarsRec = enc.Exemplars(b.exemplars, b.exemplarsRec[:0])
		clear(b.exemplars) // the labels
		b.exemplarsC = s2.EncodeSnappy(b.exemplarsC[:cap(b.exemplarsC)], b.exemplarsRec)
		exemplarsRec = b.exemplarsC
	}
	return samplesRec, exemplarsRec
}

var commitBufsPool = sync.Pool{New: func() any { return &commitBufs{} }}

// enqueue queues rec (compressed), if any, and keeps its wait. The caller
// holds log.mu.
func (h *Head) enqueue(ctx context.Context, waits *[]func() error, rec []byte) error {
	if len(rec) == 0 {
		return nil
	}
	wait, err := h.log.w.Enqueue(ctx, rec)
	if err == nil {
		*waits = append(*waits, wait)
	}
	return err
}

// seriesRecord encodes the series refs' labels; nil without series. A
// series removed since it was queued is left out.
func (h *Head) seriesRecord(refs []uint32) []byte {
	if len(refs) == 0 {
		return nil
	}
	var enc record.Encoder
	var sb labels.ScratchBuilder
	series := make([]record.RefSeries, 0, len(refs))
	for _, ref := range refs {
		if h.index.AppendLabels(&sb, ref) {
			series = append(series, record.RefSeries{Ref: chunks.HeadSeriesRef(ref), Labels: sb.Labels()})
		}
	}
	if len(series) == 0 {
		return nil
	}
	return enc.Series(series, nil)
}

// encodeRecord compresses a record for the WAL with snappy, as Prometheus's
// WAL does: a samples record takes about a fifth of the bytes. s2's plain
// snappy encoder, as Prometheus's fast one: klauspost's snappy.Encode is its
// "better" mode, which took an eighth of the remote-write path's CPU for a
// few percent fewer bytes.
func encodeRecord(rec []byte) []byte {
	if rec == nil {
		return nil
	}
	return s2.EncodeSnappy(nil, rec)
}

// decodeRecord is encodeRecord undone, into dst's memory.
func decodeRecord(dst, rec []byte) ([]byte, error) {
	out, err := s2.Decode(dst[:cap(dst)], rec)
	if err != nil {
		return nil, fmt.Errorf("decompress WAL record: %w", err)
	}
	return out, nil
}
