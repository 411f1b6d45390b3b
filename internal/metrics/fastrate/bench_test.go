package fastrate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
)

// benchQueries are bench/query's range queries (bench/README.md, "query").
var benchQueries = []string{
	`sum by (job) (rate(node_network_receive_bytes_total[5m]))`,
	`histogram_quantile(0.99, sum by (le) (rate(traces_spanmetrics_latency_bucket[5m])))`,
	`topk(5, sum by (instance) (rate(node_cpu_seconds_total[5m])))`,
	`count({__name__=~".+"})`,
}

// benchDB is bench/query's data at a fifth of the scale (its
// -series 9680): node_exporter-like series, 100 per instance over eight
// jobs, and span-metrics buckets as the last twentieth, 480 rounds 15 s
// apart, all in the head as after bench/query's load.
func benchDB(b *testing.B, series int) (*tsdb.DB, time.Time, time.Time) {
	db, err := tsdb.Open(b.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	names := []string{"node_cpu_seconds_total", "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
		"node_disk_read_bytes_total", "node_disk_written_bytes_total", "node_context_switches_total",
		"node_memory_MemAvailable_bytes", "node_filesystem_avail_bytes", "node_load1", "node_hwmon_temp_celsius"}
	jobs := []string{"node", "api", "db", "cache", "ingress", "batch", "search", "queue"}
	les := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}
	cdf := []float64{0.05, 0.12, 0.3, 0.5, 0.7, 0.85, 0.93, 0.97, 0.99, 0.995, 0.999, 1}
	node := series - series/20
	lset := func(s int) labels.Labels {
		if s < node {
			inst := s / 100
			return labels.FromStrings("__name__", names[(s%100)/10], "device", "dev"+strconv.Itoa(s%10),
				"instance", fmt.Sprintf("host-%04d:9100", inst), "job", jobs[inst%len(jobs)])
		}
		j := s - node
		g := j / len(les)
		return labels.FromStrings("__name__", "traces_spanmetrics_latency_bucket", "job", "tempo", "le", les[j%len(les)],
			"service", "svc-"+strconv.Itoa(g/10), "span_name", "span-"+strconv.Itoa(g%10))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	end := time.UnixMilli(1_700_000_000_000)
	const rounds = 480
	start := end.Add(-(rounds - 1) * 15 * time.Second)
	vals := make([]float64, series)
	ls := make([]labels.Labels, series)
	for s := range ls {
		ls[s] = lset(s)
	}
	for r := 0; r < rounds; r++ {
		app := db.Appender(context.Background())
		ts := start.Add(time.Duration(r) * 15 * time.Second).UnixMilli()
		for s := range series {
			switch {
			case s >= node:
				j := s - node
				vals[s] += float64(int(cdf[j%len(les)] * float64(50+(j/len(les))%50)))
			case (s%100)/10 >= 6:
				vals[s] = float64(rng.IntN(1_000_000)) / 100
			default:
				vals[s] += float64(rng.IntN(10_000)) / 100
			}
			if _, err := app.Append(0, ls[s], ts, vals[s]); err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	return db, start, end
}

// cpuTime is the process's user and system CPU time in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func benchEngine() *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute,
		LookbackDelta: 5 * time.Minute, EnableAtModifier: true, EnableNegativeOffset: true, EnableDelayedNameRemoval: true})
}

// BenchmarkQueries runs bench/query's range queries over its data's span
// at its 15 s step, with the engine alone and through this package.
func BenchmarkQueries(b *testing.B) {
	db, start, end := benchDB(b, 9680)
	plain := benchEngine()
	for _, e := range []struct {
		name string
		eng  promql.QueryEngine
	}{{"engine", plain}, {"fastrate", New(plain, Options{MaxSamples: 50_000_000})}} {
		for i, qs := range benchQueries {
			b.Run(fmt.Sprintf("%s/q%d", e.name, i), func(b *testing.B) {
				cpu0 := cpuTime()
				for b.Loop() {
					q, err := e.eng.NewRangeQuery(context.Background(), disjointDB{db}, nil, qs, start, end, 15*time.Second)
					if err != nil {
						b.Fatal(err)
					}
					if res := q.Exec(context.Background()); res.Err != nil {
						b.Fatal(res.Err)
					}
					q.Close()
				}
				// CPU time, as the machine's other work slows the wall clock.
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
