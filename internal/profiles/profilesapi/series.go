package profilesapi

import (
	"slices"

	"github.com/vispyr/vispyr/internal/profiles"
)

func slicesSort(s []string) { slices.Sort(s) }

// topSeries keeps the limit series with the largest sums, as Pyroscope's limit does.
func topSeries(series []profiles.SeriesPoints, limit int) []profiles.SeriesPoints {
	sum := func(s profiles.SeriesPoints) float64 {
		var t float64
		for _, p := range s.Points {
			t += p.V
		}
		return t
	}
	slices.SortStableFunc(series, func(a, b profiles.SeriesPoints) int {
		sa, sb := sum(a), sum(b)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	return series[:limit]
}
