package series

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
)

// Exemplar is the last observation that fell into a bucket, kept as raw IDs
// so that observing does not allocate; they are hex-encoded only when written.
type Exemplar struct {
	TraceID [16]byte
	SpanID  [8]byte
	Value   float64
	Set     bool
}

// Histogram is a classic (le-bucketed) histogram. Counts are kept per bucket,
// not cumulatively, so an observation touches one slot; the last slot is +Inf.
type Histogram struct {
	Counts    []float64
	Sum       float64
	Count     float64
	Exemplars []Exemplar
}

// NewHistogram returns an empty histogram for bounds (without +Inf).
func NewHistogram(bounds []float64) Histogram {
	return Histogram{
		Counts:    make([]float64, len(bounds)+1),
		Exemplars: make([]Exemplar, len(bounds)+1),
	}
}

// Observe records v. An all-zero trace ID records no exemplar.
func (h *Histogram) Observe(bounds []float64, v float64, traceID [16]byte, spanID [8]byte) {
	// The first bound >= v is the bucket whose le includes v.
	i := sort.SearchFloat64s(bounds, v)
	h.Counts[i]++
	h.Sum += v
	h.Count++
	if traceID != ([16]byte{}) {
		h.Exemplars[i] = Exemplar{TraceID: traceID, SpanID: spanID, Value: v, Set: true}
	}
}

// HistogramLabels are the precomputed label sets of one histogram's series.
type HistogramLabels struct {
	Buckets    []labels.Labels // one per bound, then +Inf
	Sum, Count labels.Labels
}

// NewHistogramLabels builds the _bucket, _sum and _count label sets of the
// histogram called name from b, which holds the other labels. b is modified.
func NewHistogramLabels(b *labels.Builder, name string, bounds []float64) HistogramLabels {
	var hl HistogramLabels
	b.Set(labels.MetricName, name+"_sum")
	hl.Sum = b.Labels()
	b.Set(labels.MetricName, name+"_count")
	hl.Count = b.Labels()
	b.Set(labels.MetricName, name+"_bucket")
	hl.Buckets = make([]labels.Labels, 0, len(bounds)+1)
	for _, le := range bounds {
		b.Set(labels.BucketLabel, formatLe(le))
		hl.Buckets = append(hl.Buckets, b.Labels())
	}
	b.Set(labels.BucketLabel, formatLe(math.Inf(1)))
	hl.Buckets = append(hl.Buckets, b.Labels())
	b.Del(labels.BucketLabel)
	return hl
}

// Series returns how many Prometheus series a histogram with bounds writes.
func Series(bounds []float64) int { return len(bounds) + 3 }

func formatLe(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// ValidateBuckets checks that bounds are finite, strictly increasing and not
// empty.
func ValidateBuckets(bounds []float64) error {
	if len(bounds) == 0 {
		return errors.New("no buckets")
	}
	for i, b := range bounds {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return fmt.Errorf("bucket %v is not finite", b)
		}
		if i > 0 && b <= bounds[i-1] {
			return fmt.Errorf("buckets must increase, %v follows %v", b, bounds[i-1])
		}
	}
	return nil
}
