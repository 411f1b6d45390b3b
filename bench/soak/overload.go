package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/test/load"
)

// overloadRun is -overload: the sustainable rate of every ingest signal is
// what the server acknowledges while senders clients per signal send flat
// out for probe; then each signal is offered factor times that rate for
// duration, open loop (a client's tick is not delayed by the server's
// answer, only skipped while that client still waits), with queries at
// their steady rate. It fails unless the peak RSS stays under the ceiling,
// refusals are 429/503 with Retry-After, overload is refused at all, and
// everything acknowledged can be read back.
type overloadRun struct {
	factor   float64
	probe    time.Duration
	duration time.Duration
	every    time.Duration
	senders  int
	queries  float64
	ceiling  int64 // limits.max_memory_bytes given to the server
	bin      string
	keep     bool
}

var signals = []string{load.Metrics, load.Traces, load.Profiles, load.Logs}

func (o overloadRun) run() error {
	srv, ep, work, cleanup, err := startServer(o.bin, o.keep, fmt.Sprintf("--limits.max-memory-bytes=%d", o.ceiling))
	if err != nil {
		return err
	}
	defer cleanup()
	defer srv.Stop(syscall.SIGTERM)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	shape := load.DefaultShape
	shape.Fixed = true // steady clients: the same series, in time order within the OOO window
	d := load.New(ep.Target, shape)
	fmt.Printf("overload: probe %v flat out, then %v at %.0f× the acknowledged rate, %d clients per signal, ceiling %d MiB (log %s)\n",
		o.probe, o.duration, o.factor, o.senders, o.ceiling>>20, work)

	// Probe: flat out, closed loop.
	pctx, pcancel := context.WithTimeout(ctx, o.probe)
	var wg sync.WaitGroup
	for _, send := range senders(d) {
		for range o.senders {
			wg.Go(func() {
				for pctx.Err() == nil {
					send(ctx) // requests in flight at the end finish and count
				}
			})
		}
	}
	wg.Wait()
	pcancel()
	probed := d.Stats()
	rates := map[string]float64{}
	for _, sig := range signals {
		rates[sig] = o.factor * float64(probed.Acked[sig]) / o.probe.Seconds()
		fmt.Printf("  %-16s sustainable %.1f req/s (answers %v) → offering %.1f req/s\n", sig, float64(probed.Acked[sig])/o.probe.Seconds(), probed.Codes[sig], rates[sig])
	}

	// Overload: open loop at factor × the probe's acknowledged rate.
	octx, ocancel := context.WithTimeout(ctx, o.duration)
	defer ocancel()
	q := &querier{ep: ep, run: d.Run()}
	sent := make([]atomic.Int64, len(signals))
	for i, send := range senders(d) {
		sig := signals[i]
		if rates[sig] <= 0 {
			continue
		}
		for range o.senders {
			wg.Go(func() {
				steady(octx, rates[sig]/float64(o.senders), func(c context.Context) bool { sent[i].Add(1); return send(c) })
			})
		}
	}
	wg.Go(func() { steady(octx, o.queries, q.round) })
	start := time.Now()
	var peak int64
	tick := time.NewTicker(o.every)
	for done := false; !done; {
		select {
		case <-octx.Done():
			done = true
		case <-tick.C:
			rss, hwm := proc.Memory(srv.Pid())
			peak = max(peak, hwm)
			fmt.Printf("  %6s rss %5d MiB, peak %5d MiB, %s\n", time.Since(start).Round(time.Second), rss>>20, hwm>>20, answers(probed, d.Stats()))
		}
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(start)
	_, hwm := proc.Memory(srv.Pid())
	peak = max(peak, hwm)
	st := d.Stats()
	fmt.Printf("overload phase (%v): %s\n", elapsed.Round(time.Second), answers(probed, st))
	refusedTotal := 0
	for i, sig := range signals {
		c := delta(probed.Codes[sig], st.Codes[sig])
		refusedTotal += c[429] + c[503]
		fmt.Printf("  %-16s offered %.1f/s, sent %.1f/s, acknowledged %.1f/s, 429 %d, 503 %d\n", sig, rates[sig],
			float64(sent[i].Load())/elapsed.Seconds(), float64(st.Acked[sig]-probed.Acked[sig])/elapsed.Seconds(), c[429], c[503])
	}
	fmt.Printf("  queries ok %d, failed %d; peak RSS %d MiB of a %d MiB ceiling\n", q.ok.Load(), q.failed.Load(), peak>>20, o.ceiling>>20)
	for _, e := range q.errors() {
		fmt.Println("  query:", e)
	}
	missing, bad, err := verify(d)
	if err != nil {
		return err
	}
	var fails []string
	if peak >= o.ceiling {
		fails = append(fails, fmt.Sprintf("peak RSS %d MiB reached the %d MiB ceiling", peak>>20, o.ceiling>>20))
	}
	if refusedTotal == 0 {
		fails = append(fails, "nothing was refused with 429/503")
	}
	if missing > 0 || bad > 0 {
		fails = append(fails, fmt.Sprintf("%d acknowledged items lost, %d bad answers", missing, bad))
	}
	if len(fails) > 0 {
		return fmt.Errorf("%s", strings.Join(fails, "; "))
	}
	return nil
}

func senders(d *load.Driver) []func(context.Context) bool {
	return []func(context.Context) bool{d.RemoteWrite, d.Trace, d.Profile, d.Log}
}

// answers prints, per signal, the answers since the probe.
func answers(before, now load.Stats) string {
	var parts []string
	for _, sig := range signals {
		parts = append(parts, fmt.Sprintf("%s %v", sig, delta(before.Codes[sig], now.Codes[sig])))
	}
	return strings.Join(parts, ", ")
}

func delta(before, now map[int]int) map[int]int {
	out := map[int]int{}
	for c, n := range now {
		if n -= before[c]; n > 0 {
			out[c] = n
		}
	}
	return out
}
