// Command traces measures Vispyr's trace ingest end to end: it starts
// `vispyr serve` on free loopback ports, sends pre-built OTLP gRPC requests
// from concurrent senders, and prints spans/s, CPU, peak RSS, bytes per span
// on disk, trace-by-ID and TraceQL search latency, and whether a trace is
// readable as soon as it is acknowledged. See bench/README.md.
//
// With -tempo /path/to/tempo (build it from Tempo's source: go build
// ./cmd/tempo in a checkout of Tempo 3), every run also starts Grafana Tempo
// as a single binary (-target=all) with local storage in the run's dir and
// every listener on a free loopback port, sends it the same pre-built load
// and the same queries, and prints a column per system. Tempo's config is in
// tempo.go: ingest limits raised, blocks cut every 5 s and flushed to the
// local backend, the last minute searched in its live-store, older data in
// backend blocks. For Tempo, "head cut wait" is the wait until the backend
// blocks' meta.json count every trace sent, and the run fails if Tempo
// counted any span as discarded after acknowledging it.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/bench/internal/stats"
)

const cutInterval = 5 * time.Second

// cpuProfile, if set, is the prefix of the CPU profiles of each run's load.
var (
	cpuProfile     string
	profileSeconds time.Duration
)

type result struct {
	name             string
	system           *system
	run              *RunResult
	spansPerSec      float64
	e2eSpansPerSec   float64 // through a gateway: until the destination acknowledged every span
	cpu              time.Duration
	cpuChain         time.Duration // cpu; through a gateway, its and the destination's until every span was acknowledged
	walSync          float64       // mean ms of a WAL group commit (write and fsync) during the load; NaN for Tempo
	cpuFlushed       time.Duration // from the load's start until every span is in a block
	idleRSS, peakRSS int64
	cutWait          time.Duration
	disk             int64
	diskParts        map[string]int64
	byID             []time.Duration
	selective, broad []time.Duration
	selFound         int
	raw              rawResult
	endRSS           int64
}

func main() {
	var (
		requests  = flag.Int("requests", 2000, "OTLP requests of 100 traces × 10 spans")
		senders   = flag.Int("senders", 4, "concurrent senders, one gRPC connection each")
		vispyrBin = flag.String("vispyr", "", "vispyr binary (default: go build ./cmd/vispyr)")
		generator = flag.Bool("generator", false, "run twice: span-metrics/service-graph generator on, then off")
		lookups   = flag.Int("lookups", 1000, "trace-by-ID requests for random known IDs")
		searches  = flag.Int("searches", 20, "runs of each TraceQL query")
		probes    = flag.Int("probes", 20, "read-after-write probes")
		keep      = flag.Bool("keep", false, "keep the data dirs")
		repeat    = flag.Int("repeat", 1, "runs per mode, interleaved; every figure is reported as median (min–max)")
		tempoBin  = flag.String("tempo", "", "also run this Grafana Tempo binary (-target=all) on the same load, side by side")
		gateway   = flag.Bool("gateway", false, "also send the load through vispyr gateway, forwarding by OTLP gRPC to a vispyr serve")
		profile   = flag.String("cpuprofile", "", "write CPU profiles of each run's load to PREFIX-<run>-<process>.pprof (vispyr processes for -profile-seconds from the load's start, the senders for the whole load)")
		profileD  = flag.Duration("profile-seconds", 3*time.Second, "length of the vispyr processes' CPU profiles (keep it under the load's wall time)")
	)
	flag.Parse()
	systems := []*system{vispyrSystem(*vispyrBin)}
	if *gateway {
		systems = append(systems, gatewaySystem(*vispyrBin))
	}
	if *tempoBin != "" {
		systems = append(systems, tempoSystem(*tempoBin))
	}
	cpuProfile, profileSeconds = *profile, *profileD
	if err := run(*requests, *senders, systems, *generator, *lookups, *searches, *probes, *keep, max(*repeat, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "traces:", err)
		os.Exit(1)
	}
}

// system is one trace store under test: how to start it, how to tell that
// every trace it acknowledged is in a block on disk, and where those are.
type system struct {
	name, bin string
	start     func(bin, dir string, generatorOff bool) (*proc.Server, endpoints, error)
	// flushed waits until want traces are in blocks on disk.
	flushed func(ep endpoints, dir string, want int) (time.Duration, error)
	// disk is the trace storage under the run's dir, split by part.
	disk      func(dir string) (int64, map[string]int64)
	diskLabel string
	// stopped, if set, runs after the run (stops helper processes).
	stopped func()
	// drained, if set, waits until the processes behind the one measured
	// acknowledged every span (a gateway's queue is empty).
	drained func() error
	// destCPU, if set, is the CPU time the processes behind the one measured
	// (a gateway's destination) have used so far.
	destCPU func() time.Duration
}

func vispyrSystem(bin string) *system {
	return &system{name: "vispyr", bin: bin, start: startVispyr,
		flushed: func(ep endpoints, _ string, _ int) (time.Duration, error) {
			return waitHeadCut(ep.admin, 3*time.Minute)
		},
		disk: func(dir string) (int64, map[string]int64) {
			return proc.DiskUsage(filepath.Join(dir, "data", "traces"), diskGroup)
		},
		diskLabel: "data/traces after the head was cut"}
}

func tempoSystem(bin string) *system {
	return &system{name: "tempo", bin: bin, start: startTempo,
		flushed: func(ep endpoints, dir string, want int) (time.Duration, error) {
			return waitTempoFlushed(ep, dir, want, 5*time.Minute)
		},
		disk:      tempoDisk,
		diskLabel: "traces/ once every trace was in a backend block"}
}

func run(requests, senders int, systems []*system, generator bool, lookups, searches, probes int, keep bool, repeat int) error {
	work, err := os.MkdirTemp("", "vispyr-bench-traces-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("data kept in", work)
	} else {
		defer os.RemoveAll(work)
	}
	if systems[0].bin == "" {
		if systems[0].bin, err = proc.BuildVispyr(work); err != nil {
			return err
		}
		for _, sys := range systems {
			if sys.name == "vispyr-gateway" {
				sys.bin = systems[0].bin
			}
		}
	}
	t0 := time.Now()
	prefix := rand.Uint64()
	load, err := NewLoad(requests, prefix)
	if err != nil {
		return err
	}
	fmt.Printf("load: %d requests × %d traces × %d spans = %d spans, %d senders, %.1f MB protobuf (built in %v)\n",
		requests, tracesPerRequest, spansPerTrace, load.Spans, senders, float64(load.EncodedBytes)/1e6, time.Since(t0).Round(time.Millisecond))

	modes := []string{"generator-on"}
	if generator {
		modes = append(modes, "generator-off")
	}
	// A column is one system in one mode; with Vispyr alone it is named
	// after the mode, as it always was.
	label := func(sys *system, mode string) string {
		if len(systems) == 1 {
			return mode
		}
		return sys.name + "/" + mode
	}
	runs := map[string][]*result{}
	n := 0
	for k := range repeat {
		for _, mode := range modes {
			for _, sys := range systems {
				fmt.Printf("running %s (%s), %s, run %d of %d…\n", sys.name, sys.bin, mode, k+1, repeat)
				dir := filepath.Join(work, fmt.Sprintf("%s-%s-%d", sys.name, mode, k))
				n++
				r, err := runOnce(sys, dir, mode, load, senders, lookups, searches, probes, prefix^uint64(n), fmt.Sprintf("%s-%s-%s-%d", cpuProfile, sys.name, mode, k))
				if err != nil {
					return fmt.Errorf("%s %s: %w", sys.name, mode, err)
				}
				r.name, r.system = label(sys, mode), sys
				fmt.Printf("  %.0f spans/s, %.1f CPU s, %d retries\n", r.spansPerSec, r.cpu.Seconds(), r.run.Retries)
				runs[r.name] = append(runs[r.name], r)
				if !keep {
					os.RemoveAll(dir)
				}
			}
		}
	}
	var cols []column
	for _, mode := range modes {
		for _, sys := range systems {
			cols = append(cols, column{name: label(sys, mode), system: sys, runs: runs[label(sys, mode)]})
		}
	}
	if repeat > 1 {
		fmt.Printf("\nmedian (min–max) of %d runs per column; a median of an even count is the mean of the middle two:\n", repeat)
	}
	report(load, cols, generator)
	return nil
}

type endpoints struct {
	otlp, tempo, admin string
	gatewayAdmin       string // with -gateway: the gateway's admin URL (admin is the destination's)
}

func startVispyr(bin, dir string, generatorOff bool) (*proc.Server, endpoints, error) {
	var ep endpoints
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, ep, err
	}
	cfg := fmt.Sprintf("traces:\n  block_cut_interval: %s\n", cutInterval)
	if generatorOff {
		cfg += "generator:\n  disable_span_metrics: true\n  disable_service_graph: true\n"
	}
	cfgPath := filepath.Join(dir, "vispyr.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, ep, err
	}
	args := []string{"serve", "--config=" + cfgPath, "--data-dir=" + filepath.Join(dir, "data")}
	addrs := map[string]string{}
	for _, f := range []string{"otlp.grpc-address", "otlp.http-address", "metrics.listen-address",
		"tempo.listen-address", "loki.listen-address", "faro.listen-address", "pyroscope.listen-address", "pyroscope.ingest-address",
		"ui.listen-address", "admin.listen-address", "health.listen-address"} {
		a, err := proc.FreeAddr()
		if err != nil {
			return nil, ep, err
		}
		addrs[f] = a
		args = append(args, "--"+f+"="+a)
	}
	srv, err := proc.Start(filepath.Join(dir, "vispyr.log"), bin, args...)
	if err != nil {
		return nil, ep, err
	}
	ep = endpoints{otlp: addrs["otlp.grpc-address"], tempo: "http://" + addrs["tempo.listen-address"],
		admin: "http://" + addrs["admin.listen-address"]}
	if err := srv.WaitReady(ep.admin+"/-/ready", time.Minute); err != nil {
		srv.Stop(syscall.SIGKILL)
		return nil, ep, err
	}
	return srv, ep, nil
}

func runOnce(sys *system, dir, mode string, load *Load, senders, lookups, searches, probes int, probePrefix uint64, profile string) (*result, error) {
	srv, ep, err := sys.start(sys.bin, dir, mode == "generator-off")
	if sys.stopped != nil {
		defer sys.stopped()
	}
	if err != nil {
		return nil, err
	}
	defer srv.Stop(syscall.SIGTERM)
	r := &result{name: mode}
	time.Sleep(2 * time.Second)
	r.idleRSS, _ = proc.Memory(srv.Pid())

	cpu0 := proc.CPUTime(srv.Pid())
	walAdmin := ep.admin // the process measured: with -gateway, the gateway (its queue)
	if ep.gatewayAdmin != "" {
		walAdmin = ep.gatewayAdmin
	}
	sync0, n0 := walSyncs(walAdmin)
	var dest0 time.Duration
	if sys.destCPU != nil {
		dest0 = sys.destCPU()
	}
	run := func() (err error) { r.run, err = load.Run(ep.otlp, senders); return err }
	if cpuProfile == "" {
		err = run()
	} else {
		admins := map[string]string{"serve": ep.admin}
		if ep.gatewayAdmin != "" {
			admins["gateway"] = ep.gatewayAdmin
		}
		if sys.name == "tempo" {
			admins = nil
		}
		err = profileLoad(profile, profileSeconds, admins, run)
	}
	if err != nil {
		return nil, err
	}
	r.cpu = proc.CPUTime(srv.Pid()) - cpu0
	r.spansPerSec = float64(load.Spans) / r.run.Wall.Seconds()
	sync1, n1 := walSyncs(walAdmin)
	r.walSync = 1000 * (sync1 - sync0) / (n1 - n0)
	// Through a gateway, the chain is done once the destination acknowledged
	// every span: its rate and CPU (gateway and destination) count until then.
	r.e2eSpansPerSec, r.cpuChain = r.spansPerSec, r.cpu
	if sys.drained != nil {
		if err := sys.drained(); err != nil {
			return nil, err
		}
		r.e2eSpansPerSec = float64(load.Spans) / time.Since(r.run.Start).Seconds()
		r.cpuChain = proc.CPUTime(srv.Pid()) - cpu0 + sys.destCPU() - dest0
	}

	// Read-after-write while the head is full, as a user would see it.
	if r.raw, err = readAfterWrite(ep, probes, probePrefix); err != nil {
		return nil, err
	}
	if r.cutWait, err = sys.flushed(ep, dir, len(load.IDs)+probes); err != nil {
		return nil, err
	}
	// Cutting and flushing blocks happens after the acks: count it too.
	r.cpuFlushed = proc.CPUTime(srv.Pid()) - cpu0
	_, r.peakRSS = proc.Memory(srv.Pid())
	r.disk, r.diskParts = sys.disk(dir)

	rng := rand.New(rand.NewPCG(1, 2))
	for range lookups {
		id := load.IDs[rng.IntN(len(load.IDs))]
		t := time.Now()
		n, err := traceSpans(ep.tempo, id)
		if err != nil {
			return nil, err
		}
		r.byID = append(r.byID, time.Since(t))
		if n != spansPerTrace {
			return nil, fmt.Errorf("trace %x: %d spans, want %d", id, n, spansPerTrace)
		}
	}
	end := time.Now().Add(time.Minute)
	start := end.Add(-2 * time.Hour)
	for range searches {
		t := time.Now()
		ids, err := search(ep.tempo, `{resource.service.name="svc-b" && span.http.status_code=500}`, load.Errors+10, start, end)
		if err != nil {
			return nil, err
		}
		r.selective = append(r.selective, time.Since(t))
		r.selFound = len(ids)
		t = time.Now()
		ids, err = search(ep.tempo, `{}`, 20, start, end)
		if err != nil {
			return nil, err
		}
		r.broad = append(r.broad, time.Since(t))
		if len(ids) != 20 {
			return nil, fmt.Errorf("search {} limit 20: %d traces", len(ids))
		}
	}
	_, r.endRSS = proc.Memory(srv.Pid())
	if r.selFound != load.Errors {
		return nil, fmt.Errorf("selective search found %d traces, want %d", r.selFound, load.Errors)
	}
	return r, nil
}

// rawResult is what the read-after-write probes saw.
type rawResult struct {
	n          int           // probes
	first      int           // visible to both reads on the first try
	fetchFirst int           // found by ID on the first try
	wait       time.Duration // longest from an ack until both reads saw the probe
	fetch      time.Duration // slowest trace-by-ID
	find       time.Duration // slowest search
}

// readAfterWrite exports one tagged trace at a time and, right after the
// acknowledgement, fetches it by ID and searches for its tag, polling until
// both see it (failing after a minute).
func readAfterWrite(ep endpoints, probes int, prefix uint64) (rawResult, error) {
	var r rawResult
	conn, err := grpc.NewClient(ep.otlp, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return r, err
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	for i := range probes {
		td := ptrace.NewTraces()
		a, b := newService(td, "svc-a"), newService(td, "svc-b")
		id := traceID(prefix, uint64(i))
		addTrace(a, b, id, time.Now().Add(-time.Second), i, false)
		tag := fmt.Sprintf("probe-%x", id[8:])
		a.At(0).Attributes().PutStr("bench.probe", tag)
		if _, err := client.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
			return r, fmt.Errorf("export probe: %w", err)
		}
		acked := time.Now()
		for try := 0; ; try++ {
			t := time.Now()
			spans, err := traceSpans(ep.tempo, id)
			if err != nil {
				return r, err
			}
			r.fetch = max(r.fetch, time.Since(t))
			t = time.Now()
			ids, err := search(ep.tempo, fmt.Sprintf(`{span.bench.probe=%q}`, tag), 20, time.Now().Add(-time.Hour), time.Now().Add(time.Minute))
			if err != nil {
				return r, err
			}
			r.find = max(r.find, time.Since(t))
			if try == 0 && spans == spansPerTrace {
				r.fetchFirst++
			}
			if spans == spansPerTrace && len(ids) == 1 {
				if try == 0 {
					r.first++
				}
				r.wait = max(r.wait, time.Since(acked))
				break
			}
			if time.Since(acked) > time.Minute {
				return r, fmt.Errorf("probe trace %x not readable a minute after its ack", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
		r.n++
	}
	return r, nil
}

// column is one system and mode with every run of it.
type column struct {
	name   string
	system *system
	runs   []*result
}

func report(load *Load, cols []column, generator bool) {
	fmt.Println()
	width := 18
	for _, c := range cols {
		width = max(width, len(c.name))
	}
	if len(cols) > 0 && len(cols[0].runs) > 1 {
		width = max(width, 30) // room for "median (min–max)"
	}
	row := func(label string, value func(r *result) float64, format func(float64) string) {
		fmt.Printf("%-28s", label)
		for _, c := range cols {
			fmt.Printf(" %*s", width, stats.Collect(c.runs, value).Format(format))
		}
		fmt.Println()
	}
	fmt.Printf("%-28s", "")
	for _, c := range cols {
		fmt.Printf(" %*s", width, c.name)
	}
	fmt.Println()
	num := func(f string) func(float64) string { return func(v float64) string { return fmt.Sprintf(f, v) } }
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	// q is a latency quantile of one run, in ms: p50 is the true median.
	q := func(ds []time.Duration, p float64) float64 { return stats.Quantile(stats.Ms(ds), p) }
	mb := func(b int64) float64 { return float64(b) / 1e6 }
	row("spans/s", func(r *result) float64 { return r.spansPerSec }, num("%.0f"))
	row("spans/s stored (end to end)", func(r *result) float64 { return r.e2eSpansPerSec }, num("%.0f"))
	row("wall s", func(r *result) float64 { return r.run.Wall.Seconds() }, num("%.2f"))
	row("request p50 ms", func(r *result) float64 { return q(r.run.Latencies, .5) }, num("%.0f"))
	row("request p99 ms", func(r *result) float64 { return q(r.run.Latencies, .99) }, num("%.0f"))
	row("retries", func(r *result) float64 { return float64(r.run.Retries) }, num("%.0f"))
	row("CPU s (load)", func(r *result) float64 { return r.cpu.Seconds() }, num("%.1f"))
	row("spans/CPU-s", func(r *result) float64 { return float64(load.Spans) / r.cpu.Seconds() }, num("%.0f"))
	row("CPU s (end to end)", func(r *result) float64 { return r.cpuChain.Seconds() }, num("%.1f"))
	row("spans/CPU-s (end to end)", func(r *result) float64 { return float64(load.Spans) / r.cpuChain.Seconds() }, num("%.0f"))
	row("WAL sync mean ms (load)", func(r *result) float64 { return r.walSync }, num("%.1f"))
	row("CPU s (load to flushed)", func(r *result) float64 { return r.cpuFlushed.Seconds() }, num("%.1f"))
	row("idle RSS MB", func(r *result) float64 { return mb(r.idleRSS) }, num("%.0f"))
	row("peak RSS (ingest) MB", func(r *result) float64 { return mb(r.peakRSS) }, num("%.0f"))
	row("traces/ on disk MB", func(r *result) float64 { return mb(r.disk) }, num("%.1f"))
	row("bytes/span", func(r *result) float64 { return float64(r.disk) / float64(load.Spans) }, num("%.1f"))
	row("  blocks/ only", func(r *result) float64 { return float64(r.diskParts["blocks/"]) / float64(load.Spans) }, num("%.1f"))
	row("head cut wait s", func(r *result) float64 { return r.cutWait.Seconds() }, num("%.1f"))
	row("trace by ID p50 ms", func(r *result) float64 { return q(r.byID, .5) }, num("%.2f"))
	row("trace by ID p99 ms", func(r *result) float64 { return q(r.byID, .99) }, num("%.2f"))
	row("selective search p50 ms", func(r *result) float64 { return q(r.selective, .5) }, num("%.2f"))
	row("broad {} limit 20 p50 ms", func(r *result) float64 { return q(r.broad, .5) }, num("%.2f"))
	row("read-after-write 1st try", func(r *result) float64 { return float64(r.raw.first) }, num("%.0f"))
	row("  by ID alone 1st try", func(r *result) float64 { return float64(r.raw.fetchFirst) }, num("%.0f"))
	row("  longest wait after ack ms", func(r *result) float64 { return ms(r.raw.wait) }, num("%.2f"))
	row("  worst fetch after ack ms", func(r *result) float64 { return ms(r.raw.fetch) }, num("%.2f"))
	row("  worst search after ack ms", func(r *result) float64 { return ms(r.raw.find) }, num("%.2f"))
	row("peak RSS (end, queries) MB", func(r *result) float64 { return mb(r.endRSS) }, num("%.0f"))
	fmt.Printf("(read-after-write: of %d probes per run)\n", probesOf(cols))

	for _, c := range cols {
		r := c.runs[0]
		var dirs []string
		for d := range r.diskParts {
			dirs = append(dirs, d)
		}
		slices.Sort(dirs)
		var parts []string
		for _, d := range dirs {
			parts = append(parts, fmt.Sprintf("%s %.1f MB", d, float64(r.diskParts[d])/1e6))
		}
		fmt.Printf("\n%s (first run): %s: %s; selective search matched %d of %d traces\n",
			c.name, c.system.diskLabel, strings.Join(parts, ", "), r.selFound, len(load.IDs))
	}
	if !generator {
		return
	}
	// cols holds every system generator-on, then every system generator-off;
	// the ratios are of the medians.
	fmt.Println()
	half := len(cols) / 2
	for i, on := range cols[:half] {
		off := cols[half+i]
		name := "generator"
		if half > 1 {
			name = on.system.name + " generator"
		}
		med := func(c column, f func(r *result) float64) float64 { return stats.Collect(c.runs, f).Median }
		sps := func(r *result) float64 { return r.spansPerSec }
		cpu := func(r *result) float64 { return r.cpu.Seconds() }
		rss := func(r *result) float64 { return float64(r.peakRSS) }
		fmt.Printf("%s on/off (medians): spans/s %.2f×, CPU s %.2f×, spans/CPU-s %.2f×, peak RSS %.2f×\n", name,
			med(on, sps)/med(off, sps), med(on, cpu)/med(off, cpu), med(off, cpu)/med(on, cpu), med(on, rss)/med(off, rss))
	}
}

func probesOf(cols []column) int {
	if len(cols) == 0 || len(cols[0].runs) == 0 {
		return 0
	}
	return cols[0].runs[0].raw.n
}
