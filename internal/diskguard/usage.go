package diskguard

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
)

// usageCollector reports the bytes each store's directory holds (data_dir/metrics,
// traces, profiles, logs, forward queues, …), so the self-monitoring page can show
// what fills the disk. It walks at scrape time: a store keeps few, large files.
type usageCollector struct {
	dir  string
	desc *prometheus.Desc
}

func newUsageCollector(dir string) *usageCollector {
	return &usageCollector{dir: dir, desc: prometheus.NewDesc("vispyr_disk_used_bytes",
		"Bytes of the files under each store's directory in the data directory, by store.", []string{"store"}, nil)}
}

func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(dirBytes(filepath.Join(c.dir, e.Name()))), e.Name())
	}
}

// dirBytes sums the sizes of the regular files under dir; files removed while it
// walks (compaction, retention) are skipped, not errors.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}
