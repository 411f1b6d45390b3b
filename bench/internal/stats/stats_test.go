package stats

import (
	"fmt"
	"testing"
)

func TestMedianOfAnEvenCountIsTheMeanOfTheMiddleTwo(t *testing.T) {
	for _, c := range []struct {
		xs       []float64
		med      float64
		min, max float64
	}{
		{[]float64{7}, 7, 7, 7},
		{[]float64{100, 300}, 200, 100, 300},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 10}, 3.5, 1, 10},
	} {
		s := Of(c.xs)
		if s.Median != c.med || s.Min != c.min || s.Max != c.max || s.N != len(c.xs) {
			t.Errorf("Of(%v) = %+v, want median %v min %v max %v", c.xs, s, c.med, c.min, c.max)
		}
	}
}

func TestFormatShowsTheRangeOnlyForRepeatedRuns(t *testing.T) {
	f := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	if got := Of([]float64{42}).Format(f); got != "42" {
		t.Errorf("one run: %q", got)
	}
	if got := Of([]float64{40, 50}).Format(f); got != "45 (40–50)" {
		t.Errorf("two runs: %q", got)
	}
}
