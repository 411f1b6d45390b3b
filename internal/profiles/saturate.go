package profiles

import "math"

// addSat adds without wrapping: merging many profiles whose values are each
// valid can still pass int64, and a wrapped sum would show a flame graph with
// negative totals. Saturated at the bounds, it shows a full bar instead.
func addSat(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}
