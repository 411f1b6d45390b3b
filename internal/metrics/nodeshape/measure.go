package nodeshape

import (
	"runtime"
	"testing"
	"time"
)

// MeasureHeap runs build b.N times and reports, for the last run, the live
// heap its result holds (HeapAlloc after a collection, minus before) per
// series, and its time per unit ("ns/"+unit over units), for the in-process
// memory benchmarks of the head's parts. It returns the last result.
func MeasureHeap(b *testing.B, series, units int, unit string, build func() any) any {
	var before, after runtime.MemStats
	var kept any
	for range b.N {
		kept = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		kept = build()
		took := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(series), "B/series")
		b.ReportMetric(float64(took.Nanoseconds())/float64(units), "ns/"+unit)
	}
	return kept
}
