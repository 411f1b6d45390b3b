// Command memory loads the same active series into Vispyr, Prometheus and
// VictoriaMetrics, one after the other on this machine, at each of several
// series counts, and prints each one's steady RSS per active series. See
// bench/README.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vispyr/vispyr/bench/internal/peers"
	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/bench/internal/rwload"
	"github.com/vispyr/vispyr/bench/internal/stats"
)

type system struct {
	name  string
	start func(dir string) (*peers.Started, error)
	stop  syscall.Signal
}

// result is one system at one series count.
type result struct {
	idle, steady, peak int64
	loadTook, loadCPU  time.Duration
}

func main() {
	var (
		sizes     = flag.String("series", "200000,1000000", "active series counts, comma-separated")
		rounds    = flag.Int("rounds", 8, "samples per series (15 s apart, ending a minute ago)")
		settle    = flag.Duration("settle", 30*time.Second, "wait after the load before reading RSS")
		repeat    = flag.Int("repeat", 1, "runs per system and size, interleaved")
		targets   = flag.String("targets", "victoria-metrics,prometheus,vispyr,vispyr-tsdbhead", "systems, in order (vispyr-ownhead, vispyr-tsdbhead: vispyr with --metrics.head=vispyr or prometheus)")
		vispyrBin = flag.String("vispyr", "", "vispyr binary (default: go build ./cmd/vispyr)")
		promBin   = flag.String("prometheus", "prometheus", "prometheus binary")
		vmBin     = flag.String("victoria-metrics", "victoria-metrics", "victoria-metrics binary")
		heapDir   = flag.String("heap-profile", "", "save Vispyr's heap profile and /metrics (admin port) at the steady RSS reading into this directory")
	)
	flag.Parse()
	heapProfileDir = *heapDir
	if err := run(*sizes, *rounds, *settle, max(*repeat, 1), strings.Split(*targets, ","), *vispyrBin, *promBin, *vmBin); err != nil {
		fmt.Fprintln(os.Stderr, "memory:", err)
		os.Exit(1)
	}
}

func run(sizes string, rounds int, settle time.Duration, repeat int, names []string, vispyrBin, promBin, vmBin string) error {
	work, err := os.MkdirTemp("", "vispyr-bench-memory-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if vispyrBin == "" {
		if vispyrBin, err = proc.BuildVispyr(work); err != nil {
			return err
		}
	}
	all := map[string]system{
		"vispyr": {"vispyr", func(dir string) (*peers.Started, error) {
			return peers.Vispyr(vispyrBin, dir, "--prometheus.self-scrape=false")
		}, syscall.SIGTERM},
		"vispyr-ownhead": {"vispyr-ownhead", func(dir string) (*peers.Started, error) {
			return peers.Vispyr(vispyrBin, dir, "--prometheus.self-scrape=false", "--metrics.head=vispyr")
		}, syscall.SIGTERM},
		"vispyr-tsdbhead": {"vispyr-tsdbhead", func(dir string) (*peers.Started, error) {
			return peers.Vispyr(vispyrBin, dir, "--prometheus.self-scrape=false", "--metrics.head=prometheus")
		}, syscall.SIGTERM},
		"prometheus": {"prometheus", func(dir string) (*peers.Started, error) {
			return peers.Prometheus(peers.LookPath(promBin), dir)
		}, syscall.SIGTERM},
		"victoria-metrics": {"victoria-metrics", func(dir string) (*peers.Started, error) {
			return peers.VictoriaMetrics(peers.LookPath(vmBin), dir)
		}, syscall.SIGINT},
	}
	for _, size := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(size))
		if err != nil {
			return fmt.Errorf("-series %q: %w", size, err)
		}
		interval := 15 * time.Second
		start := time.Now().Add(-time.Duration(rounds)*interval - time.Minute).Truncate(time.Second)
		load, err := rwload.NewLoad(n, 2000, 4, rounds, interval, start)
		if err != nil {
			return err
		}
		fmt.Printf("\n%d active series × %d rounds (bench/remotewrite's node_exporter-like series), settle %v\n", n, rounds, settle)
		results := map[string][]result{}
		for i := 0; i < repeat; i++ {
			for _, name := range names {
				sys, ok := all[name]
				if !ok {
					return fmt.Errorf("unknown target %q", name)
				}
				r, err := measure(sys, filepath.Join(work, fmt.Sprintf("%s-%d-%d", name, n, i)), load, settle)
				if err != nil {
					return fmt.Errorf("%s at %d series: %w", name, n, err)
				}
				results[name] = append(results[name], r)
			}
		}
		report(n, names, results)
	}
	return nil
}

func measure(sys system, dir string, load *rwload.Load, settle time.Duration) (result, error) {
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return result{}, err
	}
	p, err := sys.start(dir)
	if err != nil {
		return result{}, err
	}
	defer p.Kill()
	if err := p.WaitReady(p.ReadyURL, 2*time.Minute); err != nil {
		return result{}, err
	}
	time.Sleep(2 * time.Second)
	var r result
	r.idle, _ = proc.Memory(p.Pid())
	cpu := proc.CPUTime(p.Pid())
	res := load.Run(p.WriteURL)
	r.loadCPU = proc.CPUTime(p.Pid()) - cpu
	if res.Failures > 0 {
		return result{}, fmt.Errorf("load: %d requests refused, first: %s", res.Failures, res.FirstErr)
	}
	r.loadTook = res.Elapsed
	time.Sleep(settle)
	r.steady, r.peak = proc.Memory(p.Pid())
	if heapProfileDir != "" && strings.HasPrefix(sys.name, "vispyr") {
		base := strings.TrimSuffix(p.ReadyURL, "/-/ready")
		for _, f := range []struct{ path, file string }{{"/debug/pprof/heap?gc=1", ".heap.pb.gz"}, {"/metrics", ".metrics.txt"}} {
			path := filepath.Join(heapProfileDir, filepath.Base(dir)+f.file)
			if err := proc.Save(base+f.path, path, time.Minute); err != nil {
				return result{}, err
			}
			fmt.Printf("  saved %s\n", path)
		}
	}
	fmt.Printf("  %-17s loaded in %v (%.1f CPU s), RSS idle %.0f MB, steady %.0f MB, peak %.0f MB\n", sys.name,
		res.Elapsed.Round(time.Millisecond), r.loadCPU.Seconds(), mb(r.idle), mb(r.steady), mb(r.peak))
	return r, p.Stop(sys.stop)
}

func report(n int, names []string, results map[string][]result) {
	kb := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	perSeries := func(x int64) float64 { return float64(x) / 1024 / float64(n) }
	fmt.Printf("  %-17s %22s %22s %22s\n", "system", "steady RSS KB/series", "(steady−idle)/series", "peak RSS KB/series")
	steady := map[string]float64{}
	for _, name := range names {
		rs := results[name]
		s := stats.Collect(rs, func(r result) float64 { return perSeries(r.steady) })
		steady[name] = s.Median
		fmt.Printf("  %-17s %22s %22s %22s\n", name, s.Format(kb),
			stats.Collect(rs, func(r result) float64 { return perSeries(r.steady - r.idle) }).Format(kb),
			stats.Collect(rs, func(r result) float64 { return perSeries(r.peak) }).Format(kb))
	}
	for _, ours := range []string{"vispyr", "vispyr-ownhead", "vispyr-tsdbhead"} {
		v, ok := steady[ours]
		if !ok {
			continue
		}
		for _, name := range names {
			if !strings.HasPrefix(name, "vispyr") && steady[name] > 0 {
				fmt.Printf("  %s / %s steady RSS per series: ×%.2f\n", ours, name, v/steady[name])
			}
		}
	}
}

// heapProfileDir is -heap-profile: where Vispyr's heap profiles go ("" none).
var heapProfileDir string

func mb(n int64) float64 { return float64(n) / (1 << 20) }
