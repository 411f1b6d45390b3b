// Command startup times `vispyr serve` from exec to ready on a data dir whose
// metrics WAL holds -wal-bytes (1 GB), after a graceful stop and after
// kill -9, beside Prometheus 2.42 on a copy of the same TSDB. See
// bench/README.md.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vispyr/vispyr/bench/internal/peers"
	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/bench/internal/stats"
)

func main() {
	var (
		walBytes  = flag.Int64("wal-bytes", 1<<30, "write samples until the WAL holds this many bytes")
		series    = flag.Int("series", 500_000, "active series in the WAL")
		runs      = flag.Int("runs", 3, "start-ups per case")
		vispyrBin = flag.String("vispyr", "", "vispyr binary (default: go build ./cmd/vispyr)")
		promBin   = flag.String("prometheus", "prometheus", "prometheus binary (\"\": skip)")
		keep      = flag.Bool("keep", false, "keep the data dirs")
		cpuProf   = flag.String("cpuprofile", "", "also profile in-process start-ups (on the WAL as written, then after a graceful stop) into <this>.written.pprof and <this>.graceful.pprof")
		ownHead   = flag.Bool("own-head", false, "write the WAL of Vispyr's own head and start vispyr with --metrics.head=vispyr (Prometheus is skipped: it cannot read that WAL)")
		cache     = flag.String("cache", "", "keep the written TSDB under this dir and reuse it in later runs with the same -wal-bytes and -series")
	)
	flag.Parse()
	if *ownHead {
		*promBin = ""
		if *cpuProf != "" {
			fmt.Fprintln(os.Stderr, "startup: -cpuprofile profiles the TSDB's head only")
			os.Exit(2)
		}
	}
	if err := run(*walBytes, *series, max(*runs, 1), *vispyrBin, *promBin, *keep, *cache, *cpuProf, *ownHead); err != nil {
		fmt.Fprintln(os.Stderr, "startup:", err)
		os.Exit(1)
	}
}

func run(walBytes int64, series, runs int, vispyrBin, promBin string, keep bool, cache, cpuProf string, ownHead bool) error {
	work, err := os.MkdirTemp("", "vispyr-bench-startup-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("data kept in", work)
	} else {
		defer os.RemoveAll(work)
	}
	if vispyrBin == "" {
		if vispyrBin, err = proc.BuildVispyr(work); err != nil {
			return err
		}
	}
	vdir := filepath.Join(work, "vispyr")
	if err := writtenTSDB(filepath.Join(vdir, "data", "metrics"), walBytes, series, cache, ownHead); err != nil {
		return err
	}

	if cpuProf != "" { // before any start-up touches the TSDB
		if err := profileStartups(filepath.Join(vdir, "data", "metrics"), work, cpuProf); err != nil {
			return err
		}
	}
	// Each case opens its own copy, taken before any start-up touches it.
	var fdir, pdir string
	fdir = filepath.Join(work, "vispyr-foreground")
	if err := copyDir(filepath.Join(vdir, "data", "metrics"), filepath.Join(fdir, "data", "metrics")); err != nil {
		return fmt.Errorf("copy the TSDB: %w", err)
	}
	if promBin != "" {
		pdir = filepath.Join(work, "prometheus")
		if err := copyDir(filepath.Join(vdir, "data", "metrics"), filepath.Join(pdir, "data")); err != nil {
			return fmt.Errorf("copy the TSDB for Prometheus: %w", err)
		}
	}
	vispyr := func(extra ...string) func(dir string) (*peers.Started, error) {
		return func(dir string) (*peers.Started, error) {
			args := []string{"--prometheus.self-scrape=false"}
			if ownHead {
				args = append(args, "--metrics.head=vispyr")
			}
			return peers.Vispyr(vispyrBin, dir, append(args, extra...)...)
		}
	}
	type startCase struct {
		name       string
		start      func(string) (*peers.Started, error)
		dir        string
		waitReplay bool // also time until the background replay ended
	}
	cases := []startCase{
		{"vispyr", vispyr(), vdir, true},
		{"vispyr (replay before ready)", vispyr("--metrics.background-replay-min-wal-bytes=0"), fdir, false},
	}
	if pdir != "" {
		cases = append(cases, startCase{"prometheus 2.42", func(dir string) (*peers.Started, error) {
			return peers.Prometheus(peers.LookPath(promBin), dir)
		}, pdir, false})
	}
	for _, c := range cases {
		// The first start-up replays the WAL as written; its graceful stop
		// leaves what the system's own stops leave (Vispyr: a head snapshot).
		first, err := startOnce(c.start, c.dir, false, c.waitReplay)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		var clean, killed, cleanCPU, killedCPU []float64
		for i := 0; i < runs; i++ {
			// The first start-up follows a graceful stop; it ends in kill -9,
			// which the second one recovers from. Nothing is written in
			// between, so that is the best case of a crash: one long after
			// the last graceful stop replays the WAL written since, up to the
			// whole of it as on the first start-up.
			d, err := startOnce(c.start, c.dir, true, c.waitReplay)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			clean, cleanCPU = append(clean, d.wall.Seconds()), append(cleanCPU, d.cpu.Seconds())
			if d, err = startOnce(c.start, c.dir, false, c.waitReplay); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			killed, killedCPU = append(killed, d.wall.Seconds()), append(killedCPU, d.cpu.Seconds())
		}
		s := func(v float64) string { return fmt.Sprintf("%.2f", v) }
		fmt.Printf("%-28s exec to ready, s (CPU s): on the WAL as written %.2f (%.2f); (median (min–max) of %d) after its own graceful stop %s (%s); after kill -9 with nothing written since that stop %s (%s); load average %s\n",
			c.name, first.wall.Seconds(), first.cpu.Seconds(), runs, stats.Of(clean).Format(s), stats.Of(cleanCPU).Format(s),
			stats.Of(killed).Format(s), stats.Of(killedCPU).Format(s), loadAverage())
		if c.waitReplay {
			fmt.Printf("%-28s on the WAL as written, the background replay ended (every sample queryable) at %.2f s (%.2f CPU s), %d MB of head files\n",
				"", first.replayed.Seconds(), first.replayedCPU.Seconds(), first.replayMB)
		}
	}
	fmt.Printf("\nvispyr's start-up log (last run):\n%s", progressLines(filepath.Join(vdir, "vispyr.log")))
	return nil
}

// took is one start-up's wall time to ready and the CPU time the process
// used by then: on a machine shared with other work, CPU time says more.
// With a background replay, also when it ended (0 without one) and the
// bytes it had to replay at ready.
type took struct {
	wall, cpu             time.Duration
	replayed, replayedCPU time.Duration
	replayMB              int64
}

// startOnce times one start-up to ready on dir, and with waitReplay until
// Vispyr's background replay ended; it ends the process with SIGTERM, or
// with SIGKILL when kill is set (the next start-up then recovers from a
// crash).
func startOnce(start func(string) (*peers.Started, error), dir string, kill, waitReplay bool) (took, error) {
	t0 := time.Now()
	p, err := start(dir)
	if err != nil {
		return took{}, err
	}
	if err := p.WaitReady(p.ReadyURL, 30*time.Minute); err != nil {
		p.Kill()
		return took{}, err
	}
	t := took{wall: time.Since(t0), cpu: proc.CPUTime(p.Pid())}
	if waitReplay {
		metrics := strings.TrimSuffix(p.ReadyURL, "/-/ready") + "/metrics"
		for first := true; ; first = false {
			n, err := replayPending(metrics)
			if err != nil {
				p.Kill()
				return took{}, err
			}
			if first {
				t.replayMB = n >> 20
			}
			if n == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.replayed, t.replayedCPU = time.Since(t0), proc.CPUTime(p.Pid())
	}
	if kill {
		p.Kill()
		time.Sleep(time.Second) // the kernel releases the process's files and locks
		return t, nil
	}
	return t, p.Stop(syscall.SIGTERM)
}

// replayPending reads vispyr_metrics_wal_replay_pending_bytes from Vispyr's /metrics.
func replayPending(url string) (int64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "vispyr_metrics_wal_replay_pending_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no vispyr_metrics_wal_replay_pending_bytes in %s", url)
}

// progressLines are the log lines that say how the metrics store's start-up
// went (WAL replay progress and the time it took).
func progressLines(log string) string {
	b, _ := os.ReadFile(log)
	var out strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "WAL") || strings.Contains(l, "metrics store") || strings.Contains(l, "vispyr is ready") ||
			strings.Contains(l, "eplay") {
			out.WriteString("  " + l + "\n")
		}
	}
	return out.String()
}

// writtenTSDB writes the benchmark's TSDB into dir, or copies it from
// cache, where a run with the same walBytes and series left it.
func writtenTSDB(dir string, walBytes int64, series int, cache string, ownHead bool) error {
	cached := ""
	if cache != "" {
		cached = filepath.Join(cache, fmt.Sprintf("wal%d-series%d", walBytes, series))
		if ownHead {
			cached += "-own-head"
		}
		if _, err := os.Stat(filepath.Join(cached, "done")); err == nil {
			fmt.Println("TSDB copied from", cached)
			return copyDir(filepath.Join(cached, "metrics"), dir)
		}
		if err := os.RemoveAll(cached); err != nil {
			return err
		}
	}
	t0 := time.Now()
	w, err := writeWAL(dir, walBytes, series, ownHead)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d series × %d rounds = %d samples in %v: WAL %.0f MB, chunks_head %.0f MB\n", series, w.rounds,
		int64(series)*int64(w.rounds), time.Since(t0).Round(time.Second), mb(w.walBytes), mb(w.headChunkBytes))
	if cached == "" {
		return nil
	}
	if err := copyDir(dir, filepath.Join(cached, "metrics")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cached, "done"), nil, 0o644)
}

func copyDir(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		return fmt.Errorf("copy %s: %v %s", from, err, out)
	}
	return nil
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute averages.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }
