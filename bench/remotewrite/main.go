// Command remotewrite runs the same Prometheus remote-write load against
// Vispyr, Prometheus and VictoriaMetrics, one after the other on this
// machine, and prints ingest rate, memory and disk use for each, plus
// Vispyr's ratios to the others. See bench/README.md.
package main

import (
	"flag"
	"fmt"
	"github.com/vispyr/vispyr/bench/internal/peers"
	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/bench/internal/rwload"
	"github.com/vispyr/vispyr/bench/internal/stats"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type result struct {
	name              string
	ready             time.Duration
	idleRSS, peakRSS  int64
	cpu               time.Duration
	run               *rwload.RunResult
	samplesPerSec     float64
	disk, compacted   int64
	skipped           int64
	diskParts         map[string]int64
	stored            int64
	storedErr         error
	flushNote, runErr string
	tiers             []tier // -days: disk by storage tier
}

func main() {
	var (
		series    = flag.Int("series", 20000, "distinct series")
		batch     = flag.Int("batch", 2000, "samples per remote-write request")
		senders   = flag.Int("senders", 4, "concurrent senders (each owns a shard of the series)")
		rounds    = flag.Int("rounds", 150, "samples per series (total samples = series × rounds)")
		interval  = flag.Duration("interval", 15*time.Second, "time between a series' samples")
		targets   = flag.String("targets", "victoria-metrics,prometheus,vispyr", "targets to run, in order")
		vispyrBin = flag.String("vispyr", "", "vispyr binary (default: go build ./cmd/vispyr)")
		promBin   = flag.String("prometheus", "prometheus", "prometheus binary")
		vmBin     = flag.String("victoria-metrics", "victoria-metrics", "victoria-metrics binary")
		vmagent   = flag.String("vmagent", "vmagent", "vmagent binary (for -targets vmagent)")
		startups  = flag.Int("startup-runs", 3, "extra empty start-ups of vispyr to time (median reported)")
		keep      = flag.Bool("keep", false, "keep the data dirs")
		repeat    = flag.Int("repeat", 1, "runs per target, interleaved; every figure is reported as median, min and max")
		extra     = flag.String("vispyr-args", "", "extra flags for vispyr serve, space-separated")
		days      = flag.Int("days", 0, "long-retention mode: this many days of back-dated samples (overrides -rounds), Vispyr's long-term tier on, disk reported by tier")
		after     = flag.Duration("longterm-after", 6*time.Hour, "-days: Vispyr's metrics.longterm.after")
	)
	flag.Parse()
	vispyrExtraArgs = strings.Fields(*extra)
	longDays, longAfter = *days, *after
	if longDays > 0 {
		*rounds = int(time.Duration(longDays) * 24 * time.Hour / *interval)
		// One sender writes strictly in time order: no target then refuses
		// a lagging shard's samples as older than a block it just cut.
		*senders = 1
		vispyrExtraArgs = append(longTermArgs(), vispyrExtraArgs...)
	}
	vmagentBin = *vmagent
	if err := run(*series, *batch, *senders, *rounds, *interval, strings.Split(*targets, ","),
		*vispyrBin, *promBin, *vmBin, *startups, *keep, max(*repeat, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "remotewrite:", err)
		os.Exit(1)
	}
}

func run(series, batch, senders, rounds int, interval time.Duration, names []string,
	vispyrBin, promBin, vmBin string, startups int, keep bool, repeat int) error {
	work, err := os.MkdirTemp("", "vispyr-bench-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("data kept in", work)
	} else {
		defer os.RemoveAll(work)
	}
	if (slices.Contains(names, "vispyr") || slices.Contains(names, "vispyr-gateway")) && vispyrBin == "" {
		if vispyrBin, err = proc.BuildVispyr(work); err != nil {
			return err
		}
	}

	// Timestamps end a minute ago, so every target accepts and shows them.
	start := time.Now().Add(-time.Duration(rounds)*interval - time.Minute).Truncate(time.Second)
	t0 := time.Now()
	load, err := rwload.NewLoad(series, batch, senders, rounds, interval, start)
	if err != nil {
		return err
	}
	fmt.Printf("load: %d series × %d rounds = %d samples, %d-sample requests, %d senders, %d requests, %.1f MB snappy (encoded in %v)\n",
		series, rounds, load.Samples, batch, senders, countBodies(load), float64(load.EncodedBytes)/1e6, time.Since(t0).Round(time.Millisecond))

	runs := map[string][]*result{}
	for i := 0; i < repeat; i++ {
		for _, name := range names {
			var tg target
			switch name {
			case "vispyr":
				tg = vispyrTarget(vispyrBin)
			case "prometheus":
				tg = prometheusTarget(peers.LookPath(promBin))
			case "victoria-metrics":
				tg = victoriaMetricsTarget(peers.LookPath(vmBin))
			case "vispyr-gateway":
				tg = gatewayTarget(name, vispyrBin, peers.LookPath(vmBin), load)
			case "vmagent":
				tg = vmagentTarget(peers.LookPath(vmagentBin), peers.LookPath(vmBin), load)
			default:
				// vispyr@BIN, vispyr-gateway@BIN: another build, side by side.
				if other, ok := strings.CutPrefix(name, "vispyr@"); ok {
					tg = vispyrTarget(other)
					tg.name = name
					break
				}
				other, ok := strings.CutPrefix(name, "vispyr-gateway@")
				if !ok {
					return fmt.Errorf("unknown target %q", name)
				}
				tg = gatewayTarget(name, other, peers.LookPath(vmBin), load)
			}
			fmt.Printf("running %s (%s), run %d of %d…\n", name, tg.bin, i+1, repeat)
			r, err := runTarget(tg, filepath.Join(work, fmt.Sprintf("%s-%d", name, i)), load)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fmt.Printf("  %.0f samples/s\n", r.samplesPerSec)
			runs[name] = append(runs[name], r)
			if !keep {
				os.RemoveAll(filepath.Join(work, fmt.Sprintf("%s-%d", name, i)))
			}
		}
	}
	if repeat > 1 {
		fmt.Printf("\nmedian, min and max of %d runs per target; a median of an even count is the mean of the middle two:\n", repeat)
	}
	report(load, names, runs)
	if longDays > 0 {
		reportTiers(names, runs)
	}
	if slices.Contains(names, "vispyr") && startups > 0 {
		reportStartup(vispyrBin, filepath.Join(work, "startup"), startups)
	}
	return nil
}

func runTarget(tg target, dir string, load *rwload.Load) (*result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &result{name: tg.name}
	if tg.cleanup != nil {
		defer tg.cleanup()
	}
	t0 := time.Now()
	srv, writeURL, readyURL, apiURL, err := tg.start(tg.bin, dir)
	if err != nil {
		return nil, err
	}
	defer srv.Kill()
	if err := srv.WaitReady(readyURL, 2*time.Minute); err != nil {
		return nil, err
	}
	r.ready = time.Since(t0)
	time.Sleep(2 * time.Second) // let start-up work settle before idle RSS
	r.idleRSS, _ = proc.Memory(srv.Pid())
	cpu0 := proc.CPUTime(srv.Pid())

	r.run = load.Run(writeURL)
	r.samplesPerSec = float64(load.Samples) / r.run.Elapsed.Seconds()
	r.cpu = proc.CPUTime(srv.Pid()) - cpu0
	r.flushNote, r.compacted = tg.flush(apiURL, filepath.Join(dir, "data"))
	if longDays > 0 && isVispyr(tg.name) {
		last := load.Start.Add(time.Duration(load.Rounds-1) * load.Interval)
		r.flushNote += "; " + waitLongTerm(filepath.Join(dir, "data"), last, load.Start)
	}
	r.stored, r.storedErr = storedSamples(apiURL, load)
	_, r.peakRSS = proc.Memory(srv.Pid())
	if err := srv.Stop(tg.stop); err != nil {
		r.runErr = "stop: " + err.Error()
	}
	r.disk, r.diskParts = proc.DiskUsage(filepath.Join(dir, "data"), diskGroup)
	for k, n := range r.diskParts {
		for _, skip := range tg.skip {
			if k == skip+"/" || strings.HasPrefix(k, skip+"/") {
				r.disk -= n
				r.skipped += n
			}
		}
	}
	if longDays > 0 {
		kind := tg.name
		if isVispyr(kind) {
			kind = "vispyr"
		}
		r.tiers = measureTiers(kind, filepath.Join(dir, "data"), r, load.Samples)
	}
	if tg.afterStop != nil && longDays == 0 {
		var err error
		if r.compacted, err = tg.afterStop(filepath.Join(dir, "data")); err != nil {
			r.flushNote += "; offline snapshot failed: " + err.Error()
		} else {
			r.flushNote += "; compacted size: an offline TSDB snapshot of the stopped data dir with its head, and the own head's WAL written into blocks"
		}
	}
	return r, nil
}

// target's runs, summarised figure by figure.
type summary struct {
	name                                             string
	runs                                             []*result
	sps, spcpu, peak, idle, ready, cpu, disk, bps, c stats.Summary
}

func summarise(load *rwload.Load, name string, runs []*result) summary {
	f := func(g func(r *result) float64) stats.Summary { return stats.Collect(runs, g) }
	s := summary{name: name, runs: runs}
	s.sps = f(func(r *result) float64 { return r.samplesPerSec })
	s.spcpu = f(func(r *result) float64 { return float64(load.Samples) / r.cpu.Seconds() })
	s.peak = f(func(r *result) float64 { return mb(r.peakRSS) })
	s.idle = f(func(r *result) float64 { return mb(r.idleRSS) })
	s.ready = f(func(r *result) float64 { return r.ready.Seconds() })
	s.cpu = f(func(r *result) float64 { return r.cpu.Seconds() })
	s.disk = f(func(r *result) float64 { return float64(r.disk) / 1e6 })
	s.bps = f(func(r *result) float64 { return float64(r.disk) / float64(load.Samples) })
	s.c = f(func(r *result) float64 { return float64(r.compacted) / float64(load.Samples) })
	return s
}

func report(load *rwload.Load, names []string, runs map[string][]*result) {
	fmt.Println()
	fmt.Printf("%-17s %12s %12s %9s %9s %9s %9s %10s %8s %10s\n",
		"target", "samples/s", "samples/CPUs", "peak RSS", "idle RSS", "ready s", "CPU s", "disk MB", "B/sample", "compact B/s")
	line := func(label string, s summary, pick func(stats.Summary) float64) {
		compact := "-"
		if pick(s.c) > 0 {
			compact = fmt.Sprintf("%.3f", pick(s.c))
		}
		fmt.Printf("%-17s %12.0f %12.0f %8.0fM %8.0fM %9.3f %9.1f %10.1f %8.3f %10s\n", label,
			pick(s.sps), pick(s.spcpu), pick(s.peak), pick(s.idle), pick(s.ready), pick(s.cpu), pick(s.disk), pick(s.bps), compact)
	}
	var sums []summary
	for _, name := range names {
		s := summarise(load, name, runs[name])
		sums = append(sums, s)
		line(name, s, func(x stats.Summary) float64 { return x.Median })
		if len(s.runs) > 1 {
			line("  min", s, func(x stats.Summary) float64 { return x.Min })
			line("  max", s, func(x stats.Summary) float64 { return x.Max })
		}
	}
	if slices.Contains(names, "vmagent") {
		fmt.Println(vmagentNote)
	}
	fmt.Println()
	for _, s := range sums {
		for i, r := range s.runs {
			reportRun(load, fmt.Sprintf("%s run %d", r.name, i+1), r)
		}
	}
	for _, v := range sums {
		if !isVispyr(v.name) {
			continue
		}
		fmt.Println()
		for _, o := range sums {
			if o.name == v.name {
				continue
			}
			compact := "-"
			if v.c.Median > 0 && o.c.Median > 0 {
				compact = fmt.Sprintf("×%.2f", v.c.Median/o.c.Median)
			}
			fmt.Printf("%s / %-16s (medians) samples/s ×%.2f   samples/CPU-s ×%.2f   peak RSS ×%.2f   bytes/sample ×%.2f (compacted %s)\n", v.name, o.name,
				v.sps.Median/o.sps.Median, v.spcpu.Median/o.spcpu.Median, v.peak.Median/o.peak.Median, v.bps.Median/o.bps.Median, compact)
		}
	}
}

// isVispyr reports whether target name is vispyr serve, of this checkout or
// another build (vispyr@BIN).
func isVispyr(name string) bool { return name == "vispyr" || strings.HasPrefix(name, "vispyr@") }

// reportRun prints what one run's table row does not hold.
func reportRun(load *rwload.Load, label string, r *result) {
	lat := stats.Ms(r.run.Latency)
	p := func(q float64) time.Duration {
		return time.Duration(stats.Quantile(lat, q) * float64(time.Millisecond)).Round(time.Microsecond)
	}
	fmt.Printf("%s: %v for %d requests (latency p50 %v p99 %v), %d retried, %d refused %s\n",
		label, r.run.Elapsed.Round(time.Millisecond), r.run.Requests, p(0.5), p(0.99), r.run.Retries, r.run.Failures, r.run.FirstErr)
	fmt.Printf("  disk after %s:\n    %s\n", r.flushNote, parts(r.diskParts))
	if r.skipped > 0 {
		fmt.Printf("    (not counted as storage: %.1f MB of caches and the disk guard's reserve ballast)\n", float64(r.skipped)/1e6)
	}
	if r.stored != load.Samples {
		fmt.Printf("  WARNING: stored %d of %d samples (%v)\n", r.stored, load.Samples, r.storedErr)
	}
	if r.runErr != "" {
		fmt.Printf("  %s\n", r.runErr)
	}
}

// reportStartup times n start-ups of vispyr on an empty data dir, to ready.
func reportStartup(bin, dir string, n int) {
	var readies []time.Duration
	var rsss []int64
	for i := 0; i < n; i++ {
		d := filepath.Join(dir, fmt.Sprint(i))
		os.MkdirAll(d, 0o755)
		t0 := time.Now()
		srv, _, readyURL, _, err := vispyrTarget(bin).start(bin, d)
		if err != nil {
			fmt.Println("startup:", err)
			return
		}
		if err := srv.WaitReady(readyURL, time.Minute); err != nil {
			fmt.Println("startup:", err)
			srv.Kill()
			return
		}
		readies = append(readies, time.Since(t0))
		time.Sleep(2 * time.Second)
		rss, _ := proc.Memory(srv.Pid())
		rsss = append(rsss, rss)
		srv.Stop(vispyrTarget(bin).stop)
	}
	secs := func(d []time.Duration) stats.Summary {
		return stats.Collect(d, func(x time.Duration) float64 { return x.Seconds() })
	}
	rss := stats.Collect(rsss, func(x int64) float64 { return mb(x) })
	fmt.Printf("\nvispyr serve start-up to /-/ready on an empty data dir over %d runs: %s s; idle RSS 2s later: %s MB\n",
		n, secs(readies).Format(func(v float64) string { return fmt.Sprintf("%.3f", v) }),
		rss.Format(func(v float64) string { return fmt.Sprintf("%.0f", v) }))
}

func countBodies(l *rwload.Load) int {
	n := 0
	for _, b := range l.Bodies {
		n += len(b)
	}
	return n
}

func parts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %.1fMB  ", k, float64(m[k])/1e6)
	}
	return b.String()
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }
