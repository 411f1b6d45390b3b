// Command remotewrite runs the same Prometheus remote-write load against
// Vispyr, Prometheus and VictoriaMetrics, one after the other on this
// machine, and prints ingest rate, memory and disk use for each, plus
// Vispyr's ratios to the others. See bench/README.md.
package main

import (
	"flag"
	"fmt"
	"github.com/vispyr/vispyr/bench/internal/proc"
	"os"
	"os/exec"
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
	run               *RunResult
	samplesPerSec     float64
	disk, compacted   int64
	skipped           int64
	diskParts         map[string]int64
	stored            int64
	storedErr         error
	flushNote, runErr string
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
		startups  = flag.Int("startup-runs", 3, "extra empty start-ups of vispyr to time (median reported)")
		keep      = flag.Bool("keep", false, "keep the data dirs")
		repeat    = flag.Int("repeat", 1, "runs per target, interleaved; the median run by samples/s is reported")
		extra     = flag.String("vispyr-args", "", "extra flags for vispyr serve, space-separated")
	)
	flag.Parse()
	vispyrExtraArgs = strings.Fields(*extra)
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
	if slices.Contains(names, "vispyr") && vispyrBin == "" {
		if vispyrBin, err = proc.BuildVispyr(work); err != nil {
			return err
		}
	}

	// Timestamps end a minute ago, so every target accepts and shows them.
	start := time.Now().Add(-time.Duration(rounds)*interval - time.Minute).Truncate(time.Second)
	t0 := time.Now()
	load, err := NewLoad(series, batch, senders, rounds, interval, start)
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
				tg = prometheusTarget(lookPath(promBin))
			case "victoria-metrics":
				tg = victoriaMetricsTarget(lookPath(vmBin))
			default:
				return fmt.Errorf("unknown target %q", name)
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
	var results []*result
	for _, name := range names {
		rs := runs[name]
		slices.SortFunc(rs, func(a, b *result) int { return int(a.samplesPerSec - b.samplesPerSec) })
		results = append(results, rs[len(rs)/2])
	}
	if repeat > 1 {
		fmt.Printf("\nmedian run of %d per target:\n", repeat)
	}
	report(load, results)
	if slices.Contains(names, "vispyr") && startups > 0 {
		reportStartup(vispyrBin, filepath.Join(work, "startup"), startups)
	}
	return nil
}

func runTarget(tg target, dir string, load *Load) (*result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &result{name: tg.name}
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
	if tg.afterStop != nil {
		var err error
		if r.compacted, err = tg.afterStop(filepath.Join(dir, "data")); err != nil {
			r.flushNote += "; offline snapshot failed: " + err.Error()
		} else {
			r.flushNote += "; compacted size from an offline TSDB snapshot of the stopped data dir"
		}
	}
	return r, nil
}

func report(load *Load, results []*result) {
	fmt.Println()
	fmt.Printf("%-17s %12s %12s %9s %9s %9s %9s %10s %8s %10s %12s\n",
		"target", "samples/s", "samples/CPUs", "peak RSS", "idle RSS", "ready", "CPU s", "disk MB", "B/sample", "compact B/s", "stored")
	for _, r := range results {
		compact := "-"
		if r.compacted > 0 {
			compact = fmt.Sprintf("%.3f", float64(r.compacted)/float64(load.Samples))
		}
		stored := fmt.Sprint(r.stored)
		if r.storedErr != nil {
			stored = "err"
		}
		fmt.Printf("%-17s %12.0f %12.0f %8.0fM %8.0fM %9v %9.1f %10.1f %8.3f %10s %12s\n",
			r.name, r.samplesPerSec, float64(load.Samples)/r.cpu.Seconds(), mb(r.peakRSS), mb(r.idleRSS), r.ready.Round(time.Millisecond),
			r.cpu.Seconds(), float64(r.disk)/1e6, float64(r.disk)/float64(load.Samples), compact, stored)
	}
	fmt.Println()
	for _, r := range results {
		slices.SortFunc(r.run.Latency, func(a, b time.Duration) int { return int(a - b) })
		p := func(q float64) time.Duration {
			if len(r.run.Latency) == 0 {
				return 0
			}
			return r.run.Latency[int(q*float64(len(r.run.Latency)-1))].Round(time.Microsecond)
		}
		fmt.Printf("%s: %v for %d requests (latency p50 %v p99 %v), %d retried, %d refused %s\n",
			r.name, r.run.Elapsed.Round(time.Millisecond), r.run.Requests, p(0.5), p(0.99), r.run.Retries, r.run.Failures, r.run.FirstErr)
		fmt.Printf("  disk after %s:\n    %s\n", r.flushNote, parts(r.diskParts))
		if r.skipped > 0 {
			fmt.Printf("    (not counted as storage: %.1f MB of caches)\n", float64(r.skipped)/1e6)
		}
		if r.stored != load.Samples {
			fmt.Printf("  WARNING: stored %d of %d samples (%v)\n", r.stored, load.Samples, r.storedErr)
		}
		if r.runErr != "" {
			fmt.Printf("  %s\n", r.runErr)
		}
	}
	var v *result
	for _, r := range results {
		if r.name == "vispyr" {
			v = r
		}
	}
	if v == nil {
		return
	}
	fmt.Println()
	for _, o := range results {
		if o == v {
			continue
		}
		compact := "-"
		if v.compacted > 0 && o.compacted > 0 {
			compact = fmt.Sprintf("×%.2f", float64(v.compacted)/float64(o.compacted))
		}
		fmt.Printf("vispyr / %-16s samples/s ×%.2f   samples/CPU-s ×%.2f   peak RSS ×%.2f   bytes/sample ×%.2f (compacted %s)\n", o.name,
			v.samplesPerSec/o.samplesPerSec, o.cpu.Seconds()/v.cpu.Seconds(), float64(v.peakRSS)/float64(o.peakRSS),
			float64(v.disk)/float64(o.disk), compact)
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
	slices.Sort(readies)
	slices.Sort(rsss)
	fmt.Printf("\nvispyr serve start-up to /-/ready on an empty data dir: median %v (min %v, max %v) over %d runs; idle RSS 2s later: median %.0f MB\n",
		readies[n/2].Round(time.Millisecond), readies[0].Round(time.Millisecond), readies[n-1].Round(time.Millisecond), n, mb(rsss[n/2]))
}

func lookPath(bin string) string {
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	return bin
}

func countBodies(l *Load) int {
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
