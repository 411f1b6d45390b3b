// Command query loads the same remote-write data into Vispyr, Prometheus and
// VictoriaMetrics, one after the other on this machine, then times the
// dashboard queries against each, cold (first request after start) and warm,
// with each one's query cache off and on. See bench/README.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vispyr/vispyr/bench/internal/peers"
	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/bench/internal/rwload"
)

// system is one target and the configurations it is queried in.
type system struct {
	name    string
	start   func(dir string, extra ...string) (*peers.Started, error)
	stop    syscall.Signal
	configs []config
	// flush makes everything loaded searchable (VictoriaMetrics buffers).
	flush func(api string)
}

type config struct {
	label string
	args  []string
}

// timing is what one configuration of one system measured.
type timing struct {
	system, config string
	cold, warm     map[string][]time.Duration // by query name
	answers        map[string]answer          // the last answer per query
	rss            int64                      // after the queries
}

type options struct {
	step, interval time.Duration
	runs, repeat   int
	cpuProfile     string
	keep           bool
}

func main() {
	var (
		series    = flag.Int("series", 48400, "distinct series (a twentieth are span-metrics histogram buckets)")
		rounds    = flag.Int("rounds", 480, "samples per series")
		interval  = flag.Duration("interval", 15*time.Second, "time between a series' samples")
		step      = flag.Duration("step", 15*time.Second, "range query step")
		runs      = flag.Int("runs", 10, "warm runs of every query per configuration")
		repeat    = flag.Int("repeat", 1, "cold start-ups (and warm series) per configuration")
		targets   = flag.String("targets", "victoria-metrics,prometheus,vispyr", "systems, in order; vispyr@BIN: vispyr serve of another build; vispyr-ownhead, vispyr-tsdbhead: vispyr with --metrics.head=vispyr or prometheus")
		vispyrBin = flag.String("vispyr", "", "vispyr binary (default: go build ./cmd/vispyr)")
		promBin   = flag.String("prometheus", "prometheus", "prometheus binary")
		vmBin     = flag.String("victoria-metrics", "victoria-metrics", "victoria-metrics binary")
		cpuProf   = flag.String("cpuprofile", "", "write Vispyr's CPU profile over warm uncached queries to this file")
		keep      = flag.Bool("keep", false, "keep the data dirs")
	)
	flag.Parse()
	o := options{step: *step, interval: *interval, runs: *runs, repeat: max(*repeat, 1), cpuProfile: *cpuProf, keep: *keep}
	if err := run(*series, *rounds, strings.Split(*targets, ","), *vispyrBin, *promBin, *vmBin, o); err != nil {
		fmt.Fprintln(os.Stderr, "query:", err)
		os.Exit(1)
	}
}

func systems(vispyrBin, promBin, vmBin string) map[string]system {
	vispyr := func(name string, args ...string) system {
		return system{name: name, stop: syscall.SIGTERM,
			start: func(dir string, extra ...string) (*peers.Started, error) {
				return peers.Vispyr(vispyrBin, dir, append(append([]string{"--prometheus.self-scrape=false"}, args...), extra...)...)
			},
			configs: []config{{"results cache off", []string{"--metrics.results-cache-max-bytes=0"}}, {"results cache on", nil}}}
	}
	return map[string]system{
		"vispyr":          vispyr("vispyr"),
		"vispyr-ownhead":  vispyr("vispyr-ownhead", "--metrics.head=vispyr"),
		"vispyr-tsdbhead": vispyr("vispyr-tsdbhead", "--metrics.head=prometheus"),
		"prometheus": {name: "prometheus", stop: syscall.SIGTERM,
			start: func(dir string, extra ...string) (*peers.Started, error) {
				return peers.Prometheus(peers.LookPath(promBin), dir, extra...)
			},
			configs: []config{{"no cache", nil}}},
		"victoria-metrics": {name: "victoria-metrics", stop: syscall.SIGINT,
			start: func(dir string, extra ...string) (*peers.Started, error) {
				return peers.VictoriaMetrics(peers.LookPath(vmBin), dir, extra...)
			},
			configs: []config{{"cache off", []string{"-search.disableCache"}}, {"cache on", nil}},
			flush:   func(api string) { _, _ = client.Get(api + "/internal/force_flush") }},
	}
}

func run(series, rounds int, names []string, vispyrBin, promBin, vmBin string, o options) error {
	work, err := os.MkdirTemp("", "vispyr-bench-query-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("data kept in", work)
	} else {
		defer os.RemoveAll(work)
	}
	if vispyrBin == "" {
		if vispyrBin, err = proc.BuildVispyr(work); err != nil {
			return err
		}
	}
	fmt.Printf("queries over the data's span, step %v: 1 cold and %d warm runs per start-up, %d start-up(s) per configuration\n\n",
		o.step, o.runs, o.repeat)

	all := systems(vispyrBin, promBin, vmBin)
	var timings []*timing
	for i, name := range names {
		sys, ok := all[name]
		if bin, another := strings.CutPrefix(name, "vispyr@"); another {
			// Another build, for a before/after in one run.
			sys, ok = systems(bin, promBin, vmBin)["vispyr"], true
			sys.name = name
		}
		if !ok {
			return fmt.Errorf("unknown target %q", name)
		}
		// Data ending a minute before each target's own load: a results
		// cache recomputes the steps near now, so every target must be
		// queried as soon after its data's end as the others.
		load, start, end, err := newLoad(series, rounds, o)
		if err != nil {
			return err
		}
		// A data dir per target, the same system twice included.
		ts, err := measure(sys, filepath.Join(work, fmt.Sprintf("%d-%s", i, filepath.Base(name))), load, start, end, o)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		timings = append(timings, ts...)
	}
	report(timings, o)
	return nil
}

// newLoad encodes the samples of rounds ending a minute ago.
func newLoad(series, rounds int, o options) (load *rwload.Load, start, end time.Time, err error) {
	start = time.Now().Add(-time.Duration(rounds)*o.interval - time.Minute).Truncate(time.Minute)
	t0 := time.Now()
	load, err = rwload.NewShaped(dashboardShape(series), series, 2000, 4, rounds, o.interval, start)
	if err != nil {
		return nil, start, end, err
	}
	end = start.Add(time.Duration(rounds-1) * o.interval)
	fmt.Printf("load: %d series × %d rounds = %d samples, %.1f MB snappy (encoded in %v), %s – %s\n",
		series, rounds, load.Samples, float64(load.EncodedBytes)/1e6, time.Since(t0).Round(time.Millisecond),
		start.Format(time.TimeOnly), end.Format(time.TimeOnly))
	return load, start, end, nil
}

// measure loads the data into sys, then queries it in each configuration.
func measure(sys system, dir string, load *rwload.Load, start, end time.Time, o options) ([]*timing, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p, err := sys.start(dir, sys.configs[0].args...)
	if err != nil {
		return nil, err
	}
	defer func() { p.Kill() }()
	if err := p.WaitReady(p.ReadyURL, 2*time.Minute); err != nil {
		return nil, err
	}
	fmt.Printf("%s: loading…", sys.name)
	res := load.Run(p.WriteURL)
	if res.Failures > 0 {
		return nil, fmt.Errorf("load: %d requests refused, first: %s", res.Failures, res.FirstErr)
	}
	if sys.flush != nil {
		sys.flush(p.APIURL)
	}
	if err := waitStored(p.APIURL, load, end); err != nil {
		return nil, err
	}
	fmt.Printf(" %v (%.0f samples/s)\n", res.Elapsed.Round(time.Millisecond), float64(load.Samples)/res.Elapsed.Seconds())

	var out []*timing
	for i, c := range sys.configs {
		t := &timing{system: sys.name, config: c.label, cold: map[string][]time.Duration{},
			warm: map[string][]time.Duration{}, answers: map[string]answer{}}
		for r := 0; r < o.repeat; r++ {
			if i > 0 || r > 0 { // a fresh process: empty caches
				if err := p.Stop(sys.stop); err != nil {
					return nil, fmt.Errorf("stop: %w", err)
				}
				if p, err = sys.start(dir, c.args...); err != nil {
					return nil, err
				}
				if err := p.WaitReady(p.ReadyURL, 5*time.Minute); err != nil {
					return nil, err
				}
				// Vispyr is ready before a large WAL is replayed (it
				// replays in the background): time queries over all the
				// data, as after the load.
				if err := waitStored(p.APIURL, load, end); err != nil {
					return nil, err
				}
			}
			if err := queryRuns(t, p.APIURL, start, end, o); err != nil {
				return nil, fmt.Errorf("%s: %w", c.label, err)
			}
		}
		t.rss, _ = proc.Memory(p.Pid())
		fmt.Printf("  %s: done, RSS %.0f MB\n", c.label, float64(t.rss)/(1<<20))
		out = append(out, t)
		if sys.name == "vispyr" && i == 0 && o.cpuProfile != "" {
			if err := profile(p, start, end, o); err != nil {
				fmt.Println("  profile:", err)
			}
		}
	}
	if err := p.Stop(sys.stop); err != nil {
		return nil, fmt.Errorf("stop: %w", err)
	}
	disk, _ := proc.DiskUsage(filepath.Join(dir, "data"), func(string) string { return "" })
	fmt.Printf("  data dir after a graceful stop: %.0f MB\n", float64(disk)/1e6)
	return out, nil
}

// queryRuns asks every query once cold, then o.runs times warm, in turn.
func queryRuns(t *timing, api string, start, end time.Time, o options) error {
	qs := dashboardQueries()
	for r := 0; r <= o.runs; r++ {
		for _, q := range qs {
			a := ask(api, q, start, end, o.step)
			if a.err != nil {
				return a.err
			}
			if r == 0 {
				t.cold[q.name] = append(t.cold[q.name], a.took)
			} else {
				t.warm[q.name] = append(t.warm[q.name], a.took)
			}
			t.answers[q.name] = a
		}
	}
	return nil
}

// waitStored polls until the system counts every sample loaded, name by
// name (Prometheus 2.42 refuses one sum over every name: count_over_time
// drops the names, so series of different names collide).
func waitStored(api string, load *rwload.Load, end time.Time) error {
	span := time.Duration(load.Rounds) * load.Interval
	names := append(nodeNames[:], "traces_spanmetrics_latency_bucket")
	var last string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		total := 0.0
		for _, name := range names {
			n, err := peers.Scalar(client, api, fmt.Sprintf(`sum(count_over_time(%s[%ds]))`, name, int(span.Seconds())), end)
			if err != nil {
				last = err.Error()
			}
			total += n
		}
		if total == float64(load.Samples) {
			return nil
		}
		last = fmt.Sprintf("%.0f %s", total, last)
	}
	return fmt.Errorf("the system did not count %d samples within 2 minutes (last: %s)", load.Samples, last)
}

// profile writes Vispyr's CPU profile over warm uncached query runs.
func profile(p *peers.Started, start, end time.Time, o options) error {
	admin := strings.TrimSuffix(p.ReadyURL, "/-/ready")
	const secs = 20
	done := make(chan error, 1)
	go func() { done <- proc.CPUProfile(admin, o.cpuProfile, secs*time.Second) }()
	for deadline := time.Now().Add(secs * time.Second); time.Now().Before(deadline); {
		for _, q := range dashboardQueries() {
			ask(p.APIURL, q, start, end, o.step)
		}
	}
	if err := <-done; err != nil {
		return err
	}
	fmt.Printf("  CPU profile of %ds of uncached queries: %s (go tool pprof -top %s)\n", secs, o.cpuProfile, o.cpuProfile)
	return nil
}
