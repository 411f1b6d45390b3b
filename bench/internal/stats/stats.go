// Package stats summarises a figure measured over repeated benchmark runs: the
// true median (the mean of the middle two for an even count), min and max, so a
// report never passes off the best of two runs as their median.
package stats

import (
	"fmt"
	"slices"
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
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{Median: med, Min: s[0], Max: s[n-1], N: n}
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
