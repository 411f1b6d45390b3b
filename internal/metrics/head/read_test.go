package head

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// TestSeriesWithoutChunks reads a series' labels alone (chks nil), as
// Prometheus's head reader allows and label queries do.
func TestSeriesWithoutChunks(t *testing.T) {
	own := newOwn(t)
	app := own.Appender(t.Context())
	lset := labels.FromStrings("__name__", "up", "job", "api")
	ref, err := app.Append(0, lset, 1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	ir, err := own.Range(math.MinInt64, math.MaxInt64).Index()
	if err != nil {
		t.Fatal(err)
	}
	defer ir.Close()
	var sb labels.ScratchBuilder
	if err := ir.Series(ref, &sb, nil); err != nil {
		t.Fatal(err)
	}
	if got := sb.Labels(); !labels.Equal(got, lset) {
		t.Errorf("labels %v, want %v", got, lset)
	}
	if err := ir.Series(ref+1, &sb, nil); err != storage.ErrNotFound {
		t.Errorf("a series that is not there: %v, want storage.ErrNotFound", err)
	}
}
