// Package stats summarises a figure measured over repeated benchmark runs: the
// true median (the mean of the middle two for an even count), min and max, so a
// report never passes off the best of two runs as their median.
package stats

import (
	"fmt"
	"slices"
	"time"
)

// Summary is one figure over N runs.
type Summary struct {
	Median, Min, Max float64
	N                int
}

// Of summarises xs; an empty xs gives the zero Summary.
func Of(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Summary{Median: quantile(s, .5), Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// Quantile is the q-quantile (0 ≤ q ≤ 1) of xs, interpolated linearly between
// the two closest ranks, so Quantile(xs, .5) is the true median, not the
// upper or lower of the middle two; an empty xs gives 0.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return quantile(s, q)
}

// quantile is Quantile of sorted, non-empty s.
func quantile(s []float64, q float64) float64 {
	pos := min(max(q, 0), 1) * float64(len(s)-1)
	i := int(pos)
	if i == len(s)-1 {
		return s[i]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// Ms converts latencies to milliseconds, for Of and Quantile.
func Ms(ds []time.Duration) []float64 {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d) / float64(time.Millisecond)
	}
	return xs
}

// Collect applies f to every run and summarises the results.
func Collect[T any](runs []T, f func(T) float64) Summary {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = f(r)
	}
	return Of(xs)
}

// Format prints the median with format, followed by "(min–max)" when there was
// more than one run.
func (s Summary) Format(format func(float64) string) string {
	if s.N <= 1 {
		return format(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", format(s.Median), format(s.Min), format(s.Max))
}
