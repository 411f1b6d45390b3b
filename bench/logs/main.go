// Command logs measures Vispyr's log store side by side with VictoriaLogs: it
// starts each on a fresh data dir and free loopback ports, pushes both the
// same pre-built Loki push requests (protobuf, snappy), and prints ingest
// lines/s, peak RSS, bytes per line on disk, and the latency of
// `{service_name="x"} |= "needle"` and `sum by (level) (rate(...[1m]))`
// (VictoriaLogs: the same filters in LogsQL). See bench/README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/bench/internal/stats"
)

type result struct {
	linesPerSec   float64
	cpu           time.Duration
	peakIngest    int64 // VmHWM after the load
	peakEnd       int64 // VmHWM after the queries too
	disk          int64
	diskParts     map[string]int64
	retries       int
	needle, level []time.Duration
	needleLines   int
	levelLines    float64
	queryErr      error
}

func main() {
	var (
		lines     = flag.Int("lines", 500_000, "log lines to send (the issue's goals are for 10 000 000)")
		span      = flag.Duration("span", time.Hour, "time the lines' timestamps spread over, ending a minute ago")
		batch     = flag.Int("batch", 1000, "lines per push request")
		senders   = flag.Int("senders", 4, "concurrent senders")
		queries   = flag.Int("queries", 10, "runs of each query (0: ingest only)")
		repeat    = flag.Int("repeat", 1, "runs per system, interleaved; every figure is median (min–max)")
		targets   = flag.String("targets", "vispyr,victoria-logs", "systems to run")
		vispyrBin = flag.String("vispyr", "", "vispyr binary (default: go build ./cmd/vispyr)")
		vlogsBin  = flag.String("victoria-logs", "", "victoria-logs binary (default: on PATH or in ~/go/bin; .ci/install.d/45-logs.sh installs it)")
		keep      = flag.Bool("keep", false, "keep the data dirs")
	)
	flag.Parse()
	if err := run(*lines, *batch, *senders, *queries, max(*repeat, 1), *span, *targets, *vispyrBin, *vlogsBin, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "logs:", err)
		os.Exit(1)
	}
}

func run(lines, batch, senders, queries, repeat int, span time.Duration, targets, vispyrBin, vlogsBin string, keep bool) error {
	work, err := os.MkdirTemp("", "vispyr-bench-logs-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	var systems []*system
	for _, t := range strings.Split(targets, ",") {
		switch t {
		case "vispyr":
			if vispyrBin == "" {
				if vispyrBin, err = proc.BuildVispyr(work); err != nil {
					return err
				}
			}
			systems = append(systems, vispyrSystem(vispyrBin))
		case "victoria-logs":
			bin := findBin(vlogsBin, "victoria-logs")
			if bin == "" {
				return errors.New("victoria-logs not found: run .ci/install.d/45-logs.sh or pass -victoria-logs")
			}
			systems = append(systems, victoriaLogsSystem(bin))
		default:
			return fmt.Errorf("unknown target %q", t)
		}
	}
	t0 := time.Now()
	load := buildLoad(lines, batch, senders, span)
	fmt.Printf("load: %d lines (%.0f B each on average) in %d requests of %d lines, %d streams, %s of timestamps; built in %s\n",
		load.lines, float64(load.rawBytes)/float64(load.lines), len(load.reqs), batch, services*levelKinds, span, time.Since(t0).Round(time.Millisecond))
	results := map[string][]*result{}
	for r := 0; r < repeat; r++ {
		for _, sys := range systems {
			res, err := runOnce(sys, filepath.Join(work, fmt.Sprintf("%s-%d", sys.name, r)), load, senders, queries)
			if err != nil {
				return fmt.Errorf("%s: %w", sys.name, err)
			}
			results[sys.name] = append(results[sys.name], res)
		}
	}
	report(systems, results, load, queries)
	return nil
}

func runOnce(sys *system, dir string, l *Load, senders, queries int) (*result, error) {
	srv, base, err := sys.start(sys.bin, dir)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Kill()
		}
	}()
	r := &result{}
	cpu0 := proc.CPUTime(srv.Pid())
	took, retries, err := l.send(base+sys.pushPath, senders)
	if err != nil {
		return nil, err
	}
	r.retries = retries
	r.linesPerSec = float64(l.lines) / took.Seconds()
	r.cpu = proc.CPUTime(srv.Pid()) - cpu0
	_, r.peakIngest = proc.Memory(srv.Pid())
	if err := sys.flush(base); err != nil {
		return nil, err
	}
	if queries > 0 {
		r.queryErr = runQueries(sys, base, l, queries, r)
	}
	_, r.peakEnd = proc.Memory(srv.Pid())
	stopped = true
	if err := srv.Stop(sys.stop); err != nil {
		return nil, fmt.Errorf("stop: %w", err)
	}
	r.disk, r.diskParts = proc.DiskUsage(filepath.Join(dir, sys.dataDir), diskGroup)
	return r, nil
}

// runQueries times each query; the needle must find exactly the needles sent
// for that service, or the figure would time a wrong answer.
func runQueries(sys *system, base string, l *Load, n int, r *result) error {
	svc := l.needleService()
	for i := 0; i < n; i++ {
		t := time.Now()
		got, err := sys.needle(base, l, svc)
		if err != nil {
			return err
		}
		r.needle = append(r.needle, time.Since(t))
		if got != l.needles[svc] {
			return fmt.Errorf("needle query found %d lines, %d were sent", got, l.needles[svc])
		}
		r.needleLines = got
		t = time.Now()
		total, err := sys.byLevel(base, l)
		if err != nil {
			return err
		}
		r.level = append(r.level, time.Since(t))
		r.levelLines = total
	}
	return nil
}

// row is one figure of the report, measured per run.
type row struct {
	name string
	f    func(*result) float64
	fmt  func(float64) string
	pool func(*result) []time.Duration // a latency: every run's timings in one median (min–max)
}

func report(systems []*system, results map[string][]*result, l *Load, queries int) {
	ms := func(v float64) string { return fmt.Sprintf("%.1f ms", v) }
	mb := func(v float64) string { return fmt.Sprintf("%.0f MiB", v/(1<<20)) }
	rows := []row{
		{"ingest lines/s", func(r *result) float64 { return r.linesPerSec }, func(v float64) string { return fmt.Sprintf("%.0f", v) }, nil},
		{"lines per CPU-second", func(r *result) float64 { return float64(l.lines) / max(r.cpu.Seconds(), 0.001) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }, nil},
		{"peak RSS (ingest)", func(r *result) float64 { return float64(r.peakIngest) }, mb, nil},
		{"peak RSS (ingest + queries)", func(r *result) float64 { return float64(r.peakEnd) }, mb, nil},
		{"disk bytes/line", func(r *result) float64 { return float64(r.disk) / float64(l.lines) }, func(v float64) string { return fmt.Sprintf("%.1f", v) }, nil},
		{"push retries", func(r *result) float64 { return float64(r.retries) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }, nil},
	}
	if queries > 0 {
		rows = append(rows,
			row{name: `needle median ({service_name="svc-NN"} |= "needle")`, pool: func(r *result) []time.Duration { return r.needle }, fmt: ms},
			row{name: "sum by (level) (rate([1m])) median", pool: func(r *result) []time.Duration { return r.level }, fmt: ms})
	}
	fmt.Printf("\n%-52s", "")
	for _, s := range systems {
		fmt.Printf("%-34s", s.name)
	}
	fmt.Println()
	for _, row := range rows {
		fmt.Printf("%-52s", row.name)
		for _, s := range systems {
			rs := results[s.name]
			if row.pool == nil {
				fmt.Printf("%-34s", stats.Collect(rs, row.f).Format(row.fmt))
				continue
			}
			if slices.ContainsFunc(rs, func(r *result) bool { return r.queryErr != nil }) {
				fmt.Printf("%-34s", "error")
				continue
			}
			var ms []float64
			for _, r := range rs {
				for _, d := range row.pool(r) {
					ms = append(ms, float64(d)/float64(time.Millisecond))
				}
			}
			fmt.Printf("%-34s", stats.Of(ms).Format(row.fmt))
		}
		fmt.Println()
	}
	fmt.Println()
	for _, s := range systems {
		r := results[s.name][len(results[s.name])-1]
		var parts []string
		for k, v := range r.diskParts {
			parts = append(parts, fmt.Sprintf("%s %.1f MiB", k, float64(v)/(1<<20)))
		}
		slices.Sort(parts)
		fmt.Printf("%s: disk (%s) %s", s.name, s.dataDir, strings.Join(parts, ", "))
		if r.queryErr != nil {
			fmt.Printf("; queries failed: %v", r.queryErr)
		} else if queries > 0 {
			fmt.Printf("; needle found %d lines (sent %d); the per-level rate adds up to %.0f of %d lines", r.needleLines, l.needles[l.needleService()], r.levelLines, l.lines)
		}
		fmt.Println()
	}
}
