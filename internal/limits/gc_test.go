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
		live  uint64
		scale int
		want  int
	}{
		{0, 1, 100},
		{16 << 20, 1, 100}, // a small heap keeps Go's default
		{32 << 20, 1, 50},  // the 16 MiB floor
		{128 << 20, 1, 25},
		{256 << 20, 1, 25}, // a quarter from here on
		{4 << 30, 1, 25},
		{256 << 20, 2, 50},  // scaled: 128 MiB
		{256 << 20, 4, 100}, // 256 MiB, the most
		{300 << 20, 4, 85},  // 256 MiB of 300
		{128 << 20, 8, 100}, // never past Go's default
		{2 << 30, 4, 25},    // a quarter is more than the most scaled
	} {
		if got := GCPercent(c.live, c.scale); got != c.want {
			t.Errorf("GCPercent(%d MiB, ×%d) = %d, want %d", c.live>>20, c.scale, got, c.want)
		}
	}
}

// The headroom grows when the collector spends more than its budget of one
// core, as far as needed to bring it within budget at the same garbage rate,
// holds while it is within budget, and halves back once the collector spent
// less than a quarter of it over a whole window.
func TestGCScalerFollowsCollectorCPU(t *testing.T) {
	s := gcScaler{scale: 1}
	at, cpu := time.Unix(0, 0), 0.0
	step := func(rate float64) bool { // the collector spent rate of a core since the last step
		at, cpu = at.Add(gcStep), cpu+rate*gcStep.Seconds()
		return s.observe(at, cpu)
	}
	s.observe(at, cpu)
	if !step(0.027) || s.scale != 4 { // 2.7%: twice is 1.35%, four times 0.68%
		t.Fatalf("collector at 2.7%% of a core: scale %d, want 4", s.scale)
	}
	for range 8 { // within budget at this headroom
		if step(0.007) {
			t.Fatalf("collector at 0.7%% of a core with scale 4: rescaled to %d", s.scale)
		}
	}
	// Quiet: the collector's CPU over the last window falls below a quarter
	// of the budget on the third quiet step.
	for i := range 2 {
		if step(0) {
			t.Fatalf("rescaled to %d after %d quiet steps", s.scale, i+1)
		}
	}
	if !step(0) || s.scale != 2 {
		t.Fatalf("after three quiet steps: scale %d, want 2", s.scale)
	}
	for i := range 3 { // a change starts the window afresh
		if step(0) {
			t.Fatalf("rescaled to %d %d quiet steps after the last change", s.scale, i+1)
		}
	}
	if !step(0) || s.scale != 1 {
		t.Fatalf("after a quiet window at scale 2: scale %d, want 1", s.scale)
	}
	for range 10 { // a process whose collector stays within budget keeps the base headroom
		if step(0.009) {
			t.Fatalf("collector at 0.9%% of a core: rescaled to %d", s.scale)
		}
	}
	if !step(0.5) || s.scale != gcMaxScale { // far over budget: the most
		t.Fatalf("collector at 50%% of a core: scale %d, want %d", s.scale, gcMaxScale)
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
