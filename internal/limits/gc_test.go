package limits

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 100},
		{16 << 20, 100}, // a small heap keeps Go's default
		{128 << 20, 50}, // the 64 MiB floor
		{256 << 20, 25}, // a quarter from here on
		{4 << 30, 25},
	} {
		if got := GCPercent(c.live); got != c.want {
			t.Errorf("GCPercent(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// With a large live heap, the heap the runtime lets grow before the next
// collection is live plus a quarter, not twice live.
func TestTuneGCBoundsHeapGoal(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	TuneGC(ctx, slog.New(slog.DiscardHandler))

	live := make([][]byte, 320)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	samples := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/gc/heap/live:bytes"}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		time.Sleep(300 * time.Millisecond)
		runtime.GC()
		metrics.Read(samples)
		goal, l := samples[0].Value.Uint64(), samples[1].Value.Uint64()
		if float64(goal) <= 1.3*float64(l) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heap goal %d MiB with %d MiB live: want at most 1.3× live", goal>>20, l>>20)
		}
	}
	runtime.KeepAlive(live)
}
