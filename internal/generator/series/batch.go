package series

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// Exemplar label names. They match what the OpenTelemetry Collector and
// Prometheus' OTLP translation put on exemplars, so one Grafana data link
// (exemplar label trace_id → Tempo data source) serves both.
const (
	TraceIDLabel = "trace_id"
	SpanIDLabel  = "span_id"
)

// Batch is a snapshot of series values taken under a processor's lock and
// written to storage after the lock is released, so that span ingestion
// never waits on the TSDB. Label sets are immutable once built, so the batch
// may keep them after the processor deletes their entry.
type Batch struct {
	samples []sample
}

type sample struct {
	lbls  labels.Labels
	v     float64
	isNew bool
	ex    Exemplar
}

// Reset empties b, keeping its memory for the next collection.
func (b *Batch) Reset() {
	clear(b.samples) // drop label references so deleted series can be freed
	b.samples = b.samples[:0]
}

// Len returns the number of samples in b.
func (b *Batch) Len() int { return len(b.samples) }

// AddCounter adds one cumulative counter value. isNew marks a series that has
// never been written: it gets a zero sample first, so that rate() and
// increase() see its first increments instead of starting from them.
func (b *Batch) AddCounter(lbls labels.Labels, v float64, isNew bool) {
	b.samples = append(b.samples, sample{lbls: lbls, v: v, isNew: isNew})
}

// AddHistogram adds every series of h (cumulative buckets, _sum, _count) and
// moves its pending exemplars into the batch, so each is written once.
func (b *Batch) AddHistogram(hl *HistogramLabels, h *Histogram, isNew bool) {
	cum := 0.0
	for i, c := range h.Counts {
		cum += c
		b.samples = append(b.samples, sample{lbls: hl.Buckets[i], v: cum, isNew: isNew, ex: h.Exemplars[i]})
		h.Exemplars[i] = Exemplar{}
	}
	b.samples = append(b.samples,
		sample{lbls: hl.Sum, v: h.Sum, isNew: isNew},
		sample{lbls: hl.Count, v: h.Count, isNew: isNew})
}

// AppendStats says what Append wrote.
type AppendStats struct {
	Samples, Exemplars         int
	FailedSamples              int
	FailedExemplars            int
	FirstSampleErr, FirstExErr error
}

// Append writes every sample at time t (milliseconds) to app; a new series
// first gets a zero at zeroT, the previous collection time, when it could
// have started. It does not commit. A sample the storage refuses is counted
// and skipped, so that one bad series does not lose the others.
func (b *Batch) Append(app storage.Appender, t, zeroT int64) AppendStats {
	if zeroT >= t {
		zeroT = t - 1
	}
	var st AppendStats
	var hexBuf [32]byte
	for i := range b.samples {
		s := &b.samples[i]
		if s.isNew {
			// A refused zero (the series already has later samples, e.g. it
			// expired here but lives on in the TSDB) is harmless.
			_, _ = app.Append(0, s.lbls, zeroT, 0)
		}
		ref, err := app.Append(0, s.lbls, t, s.v)
		if err != nil {
			st.FailedSamples++
			if st.FirstSampleErr == nil {
				st.FirstSampleErr = fmt.Errorf("append %s: %w", s.lbls, err)
			}
			continue
		}
		st.Samples++
		if !s.ex.Set {
			continue
		}
		hex.Encode(hexBuf[:], s.ex.TraceID[:])
		traceID := string(hexBuf[:32])
		hex.Encode(hexBuf[:16], s.ex.SpanID[:])
		spanID := string(hexBuf[:16])
		_, err = app.AppendExemplar(ref, s.lbls, exemplar.Exemplar{
			Labels: labels.FromStrings(TraceIDLabel, traceID, SpanIDLabel, spanID),
			Value:  s.ex.Value,
			Ts:     t,
			HasTs:  true,
		})
		if err != nil && !errors.Is(err, storage.ErrDuplicateExemplar) {
			st.FailedExemplars++
			if st.FirstExErr == nil {
				st.FirstExErr = fmt.Errorf("append exemplar to %s: %w", s.lbls, err)
			}
			continue
		}
		st.Exemplars++
	}
	return st
}

// Each calls f for every sample in b, in order.
func (b *Batch) Each(f func(lbls labels.Labels, v float64)) {
	for _, s := range b.samples {
		f(s.lbls, s.v)
	}
}
