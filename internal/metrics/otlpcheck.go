package metrics

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// checkFuture refuses OTLP metrics with a data point more than maxAhead in
// the future, as the remote-write path (and Prometheus's receiver) does. It
// runs before translation, on the unsigned nanoseconds: a timestamp past 2262
// overflows the translator's int64 milliseconds into the past and would be
// refused as a too old sample, which misleads the sender.
func checkFuture(md pmetric.Metrics, now time.Time) error {
	limit := pcommon.NewTimestampFromTime(now.Add(maxAhead))
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				if latest(ms.At(k)) > limit {
					return pipeline.Invalid(errFuture())
				}
			}
		}
	}
	return nil
}

// latest is the newest data point timestamp of m.
func latest(m pmetric.Metric) pcommon.Timestamp {
	var ts pcommon.Timestamp
	take := func(t pcommon.Timestamp) {
		if t > ts {
			ts = t
		}
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		forEach(m.Gauge().DataPoints(), func(p pmetric.NumberDataPoint) { take(p.Timestamp()) })
	case pmetric.MetricTypeSum:
		forEach(m.Sum().DataPoints(), func(p pmetric.NumberDataPoint) { take(p.Timestamp()) })
	case pmetric.MetricTypeHistogram:
		forEach(m.Histogram().DataPoints(), func(p pmetric.HistogramDataPoint) { take(p.Timestamp()) })
	case pmetric.MetricTypeExponentialHistogram:
		forEach(m.ExponentialHistogram().DataPoints(), func(p pmetric.ExponentialHistogramDataPoint) { take(p.Timestamp()) })
	case pmetric.MetricTypeSummary:
		forEach(m.Summary().DataPoints(), func(p pmetric.SummaryDataPoint) { take(p.Timestamp()) })
	}
	return ts
}

// forEach calls f for every element of a pdata slice.
func forEach[E any, S interface {
	Len() int
	At(int) E
}](s S, f func(E)) {
	for i := range s.Len() {
		f(s.At(i))
	}
}
