// Command startup times `vispyr serve` from exec to ready on a data dir whose
// metrics WAL holds -wal-bytes (1 GB), after a graceful stop and after
// kill -9, beside Prometheus 2.42 on a copy of the same TSDB. See
// bench/README.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	)
	flag.Parse()
	if err := run(*walBytes, *series, max(*runs, 1), *vispyrBin, *promBin, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "startup:", err)
		os.Exit(1)
	}
}

func run(walBytes int64, series, runs int, vispyrBin, promBin string, keep bool) error {
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
	t0 := time.Now()
	w, err := writeWAL(filepath.Join(vdir, "data", "metrics"), walBytes, series)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d series × %d rounds = %d samples in %v: WAL %.0f MB, chunks_head %.0f MB\n", series, w.rounds,
		int64(series)*int64(w.rounds), time.Since(t0).Round(time.Second), mb(w.walBytes), mb(w.headChunkBytes))

	var pdir string
	if promBin != "" { // Prometheus opens the same TSDB: a copy, before Vispyr touches it
		pdir = filepath.Join(work, "prometheus")
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			return err
		}
		if out, err := exec.Command("cp", "-a", filepath.Join(vdir, "data", "metrics"), filepath.Join(pdir, "data")).CombinedOutput(); err != nil {
			return fmt.Errorf("copy the TSDB for Prometheus: %v %s", err, out)
		}
	}
	vispyr := func(dir string) (*peers.Started, error) {
		return peers.Vispyr(vispyrBin, dir, "--prometheus.self-scrape=false")
	}
	cases := []struct {
		name  string
		start func(string) (*peers.Started, error)
		dir   string
	}{{"vispyr", vispyr, vdir}}
	if pdir != "" {
		cases = append(cases, struct {
			name  string
			start func(string) (*peers.Started, error)
			dir   string
		}{"prometheus 2.42", func(dir string) (*peers.Started, error) {
			return peers.Prometheus(peers.LookPath(promBin), dir)
		}, pdir})
	}
	for _, c := range cases {
		// The first start-up replays the WAL as written; its graceful stop
		// leaves what the system's own stops leave (Vispyr: a head snapshot).
		first, err := startOnce(c.start, c.dir, false)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		var clean, killed []float64
		for i := 0; i < runs; i++ {
			// The first start-up follows a graceful stop; it ends in kill -9,
			// which the second one recovers from.
			d, err := startOnce(c.start, c.dir, true)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			clean = append(clean, d.Seconds())
			if d, err = startOnce(c.start, c.dir, false); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			killed = append(killed, d.Seconds())
		}
		s := func(v float64) string { return fmt.Sprintf("%.2f", v) }
		fmt.Printf("%-16s exec to ready, s: on the WAL as written %.2f; (median (min–max) of %d) after its own graceful stop %s; after kill -9 %s\n",
			c.name, first.Seconds(), runs, stats.Of(clean).Format(s), stats.Of(killed).Format(s))
	}
	fmt.Printf("\nvispyr's start-up log (last run):\n%s", progressLines(filepath.Join(vdir, "vispyr.log")))
	return nil
}

// startOnce times one start-up to ready on dir; it ends the process with
// SIGTERM, or with SIGKILL when kill is set (the next start-up then
// recovers from a crash).
func startOnce(start func(string) (*peers.Started, error), dir string, kill bool) (time.Duration, error) {
	t0 := time.Now()
	p, err := start(dir)
	if err != nil {
		return 0, err
	}
	if err := p.WaitReady(p.ReadyURL, 10*time.Minute); err != nil {
		p.Kill()
		return 0, err
	}
	took := time.Since(t0)
	if kill {
		p.Kill()
		time.Sleep(time.Second) // the kernel releases the process's files and locks
		return took, nil
	}
	return took, p.Stop(syscall.SIGTERM)
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

func mb(n int64) float64 { return float64(n) / (1 << 20) }
