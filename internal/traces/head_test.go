package traces

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// traceOrder must list every row once, each trace's rows together and in
// batch order, traces by ascending ID, however the batch interleaves them.
func TestTraceOrderGroupsTracesInBatchOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 17, 1000} {
		rows := make([]spanrow.Span, n)
		for i := range rows {
			// Few IDs, so traces repeat both in runs and scattered.
			rows[i].TraceID[15] = byte(rng.IntN(7))
			rows[i].TraceID[0] = byte(rng.IntN(3))
			if i > 0 && rng.IntN(2) == 0 {
				rows[i].TraceID = rows[i-1].TraceID
			}
		}
		order := traceOrder(rows)
		if len(order) != n {
			t.Fatalf("%d rows: order has %d entries", n, len(order))
		}
		seen := make([]bool, n)
		for k, i := range order {
			if seen[i] {
				t.Fatalf("%d rows: row %d listed twice", n, i)
			}
			seen[i] = true
			if k == 0 {
				continue
			}
			prev := order[k-1]
			switch c := bytes.Compare(rows[prev].TraceID[:], rows[i].TraceID[:]); {
			case c > 0:
				t.Fatalf("%d rows: trace %x listed after %x", n, rows[i].TraceID, rows[prev].TraceID)
			case c == 0 && prev > i:
				t.Fatalf("%d rows: rows %d and %d of one trace out of batch order", n, prev, i)
			}
		}
	}
}
