package stats

import (
	"fmt"
	"math"
	"testing"
	"time"
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

func TestQuantileInterpolatesBetweenRanks(t *testing.T) {
	xs := []float64{40, 10, 30, 20} // sorted: 10 20 30 40
	for _, c := range []struct{ q, want float64 }{
		{0, 10}, {.5, 25}, {1, 40}, {.99, 39.7}, {1.5, 40},
	} {
		if got := Quantile(xs, c.q); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Quantile(%v, %v) = %v, want %v", xs, c.q, got, c.want)
		}
	}
	if got := Quantile(nil, .5); got != 0 {
		t.Errorf("Quantile(nil) = %v", got)
	}
	if got, want := Quantile(xs, .5), Of(xs).Median; got != want {
		t.Errorf("Quantile(.5) %v differs from Of's median %v", got, want)
	}
}

func TestMsConvertsDurations(t *testing.T) {
	got := Ms([]time.Duration{1500 * time.Microsecond, 2 * time.Second})
	if len(got) != 2 || got[0] != 1.5 || got[1] != 2000 {
		t.Errorf("Ms = %v", got)
	}
}
