package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/bench/internal/stats"
)

// Long-retention mode (-days N): N days of back-dated samples, written in
// time order, so every target cuts and compacts blocks as it would over N
// days; Vispyr runs with its long-term tier on. Disk is then counted per
// tier from the stopped data dirs: the blocks' own meta.json say how many
// samples each holds.

// longDays is -days; longAfter is Vispyr's metrics.longterm.after in that mode.
var (
	longDays  int
	longAfter time.Duration
)

// longTermArgs are Vispyr's flags in long-retention mode: the tier on, and
// retention past the back-dated start so no sample is refused as too old.
func longTermArgs() []string {
	return []string{"--metrics.longterm.enabled=true", "--metrics.longterm.after=" + longAfter.String(),
		fmt.Sprintf("--metrics.retention=%dh", (longDays+2)*24)}
}

// tier is one storage tier's bytes and samples.
type tier struct {
	name           string
	bytes, samples int64
}

func (t tier) bps() float64 {
	if t.samples == 0 {
		return 0
	}
	return float64(t.bytes) / float64(t.samples)
}

type blockMeta struct {
	NumSamples int64 `json:"numSamples"` // long-term blocks
	MinTime    int64 `json:"minTime"`
	MaxTime    int64 `json:"maxTime"`
	Stats      struct {
		NumSamples int64 `json:"numSamples"` // TSDB blocks
	} `json:"stats"`
}

// blocksIn sums the size and samples of the block dirs (those with a
// meta.json) directly under dir.
func blocksIn(dir string, name string) tier {
	t := tier{name: name}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name(), "meta.json"))
		if err != nil || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		var m blockMeta
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		size, _ := proc.DiskUsage(filepath.Join(dir, e.Name()), diskGroup)
		t.bytes += size
		t.samples += m.NumSamples + m.Stats.NumSamples
	}
	return t
}

// measureTiers counts a stopped target's data dir by tier.
func measureTiers(name, dataDir string, r *result, loadSamples int64) []tier {
	switch name {
	case "vispyr":
		lt := blocksIn(filepath.Join(dataDir, "metrics", "longterm"), "long-term blocks")
		tb := blocksIn(filepath.Join(dataDir, "metrics"), "TSDB blocks")
		total, _ := proc.DiskUsage(filepath.Join(dataDir, "metrics"), diskGroup)
		head := tier{name: "head (WAL, chunks)", bytes: total - lt.bytes - tb.bytes, samples: loadSamples - lt.samples - tb.samples}
		return []tier{lt, tb, head}
	case "prometheus":
		tb := blocksIn(dataDir, "TSDB blocks")
		total, _ := proc.DiskUsage(dataDir, diskGroup)
		return []tier{tb, {name: "head (WAL, chunks)", bytes: total - tb.bytes, samples: loadSamples - tb.samples}}
	default:
		return []tier{{name: "all data", bytes: r.disk, samples: loadSamples}}
	}
}

// waitLongTerm waits until Vispyr has moved every day that ended longAfter
// before the last sample into long-term blocks and the TSDB dropped them.
func waitLongTerm(dataDir string, lastSample time.Time, start time.Time) string {
	cutoff := lastSample.Add(-longAfter)
	want := 0
	for d := start.UTC().Truncate(24 * time.Hour); !d.Add(24 * time.Hour).After(cutoff); d = d.Add(24 * time.Hour) {
		want++
	}
	metricsDir := filepath.Join(dataDir, "metrics")
	deadline := time.Now().Add(10 * time.Minute)
	for {
		lt := countBlocks(filepath.Join(metricsDir, "longterm"), func(blockMeta) bool { return true })
		// A TSDB block moves with its whole UTC day, once the day ended
		// longAfter before the last sample.
		old := countBlocks(metricsDir, func(m blockMeta) bool {
			dayEnd := time.UnixMilli(m.MinTime).UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
			return m.MaxTime > 0 && !dayEnd.After(cutoff)
		})
		if lt >= want && old == 0 {
			return fmt.Sprintf("%d days moved to the long-term tier", lt)
		}
		if time.Now().After(deadline) {
			return fmt.Sprintf("timed out: %d of %d days moved, %d old TSDB blocks left", lt, want, old)
		}
		time.Sleep(2 * time.Second)
	}
}

func countBlocks(dir string, pick func(blockMeta) bool) int {
	n := 0
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name(), "meta.json"))
		var m blockMeta
		if err == nil && !strings.HasSuffix(e.Name(), ".tmp") && json.Unmarshal(raw, &m) == nil && pick(m) {
			n++
		}
	}
	return n
}

// reportTiers prints bytes per sample by tier and Vispyr's long-term tier
// against VictoriaMetrics'.
func reportTiers(names []string, runs map[string][]*result) {
	fmt.Printf("\nlong retention (%d days), disk by tier (median over runs; MB, samples, bytes/sample):\n", longDays)
	medians := map[string]float64{}
	for _, name := range names {
		rs := runs[name]
		if len(rs) == 0 || len(rs[0].tiers) == 0 {
			continue
		}
		for i, t0 := range rs[0].tiers {
			pick := func(f func(tier) float64) stats.Summary {
				return stats.Collect(rs, func(r *result) float64 { return f(r.tiers[i]) })
			}
			bps := pick(tier.bps)
			medians[name+"/"+t0.name] = bps.Median
			fmt.Printf("  %-17s %-20s %9.1f MB %12.0f  %s B/sample\n", name, t0.name,
				pick(func(t tier) float64 { return float64(t.bytes) / 1e6 }).Median,
				pick(func(t tier) float64 { return float64(t.samples) }).Median,
				bps.Format(func(v float64) string { return fmt.Sprintf("%.3f", v) }))
		}
	}
	lt, vm := medians["vispyr/long-term blocks"], medians["victoria-metrics/all data"]
	if lt > 0 && vm > 0 {
		fmt.Printf("vispyr long-term / victoria-metrics bytes/sample: ×%.2f", lt/vm)
		if p := medians["prometheus/TSDB blocks"]; p > 0 {
			fmt.Printf("   (vispyr long-term / prometheus blocks: ×%.2f)", lt/p)
		}
		fmt.Println()
	}
}
