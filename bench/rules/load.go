package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// load is the same samples for every target, as a small production setup
// writes them: span metrics of services (Vispyr's generator names) and
// node_exporter series of hosts, up to `points` samples `step` apart from
// start. Values come from a seeded generator, so every target gets the very
// same, however many passes it takes to send them.
type load struct {
	services, hosts, clusters int
	start                     time.Time
	step                      time.Duration
	points                    int
}

func newLoad(services, hosts, clusters int, from, to time.Time, step time.Duration) *load {
	return &load{services: services, hosts: hosts, clusters: clusters, start: from, step: step,
		points: int(to.Sub(from)/step) + 1}
}

// pointsUntil is how many points are at or before t.
func (l *load) pointsUntil(t time.Time) int {
	if t.Before(l.start) {
		return 0
	}
	return min(l.points, int(t.Sub(l.start)/l.step)+1)
}

// Series per service and per host, as written below.
const (
	spanOps            = 12 // 8 server span names, 4 client ones
	serverOps          = 8
	latencyBounds      = 14
	spanSeriesPerOp    = 2 * (1 + latencyBounds + 1 + 1 + 1) // per status: calls, buckets and +Inf, count, sum
	spanSeriesPerSvc   = spanOps * spanSeriesPerOp
	nodeSeriesPerHost  = 275
	serviceLabelFormat = "svc-%02d"
)

// latencyBoundsText are Tempo's (and Vispyr's generator's) default latency
// buckets, 2 ms doubling to 16.384 s, as the le label spells them.
var latencyBoundsText = func() []string {
	var s []string
	for b := 0.002; b < 17; b *= 2 {
		s = append(s, strconv.FormatFloat(b, 'f', -1, 64))
	}
	return s
}()

func (l *load) series() int { return l.services*spanSeriesPerSvc + l.hosts*nodeSeriesPerHost }

// emitFunc takes one series: label pairs (name, value, ...) and a value per point.
type emitFunc func(labels []string, values []float64) error

// each generates every series in a fixed order.
func (l *load) each(emit emitFunc) error {
	rng := rand.New(rand.NewSource(1))
	for s := 0; s < l.services; s++ {
		if err := l.service(rng, s, emit); err != nil {
			return err
		}
	}
	for h := 0; h < l.hosts; h++ {
		if err := l.host(rng, h, emit); err != nil {
			return err
		}
	}
	return nil
}

var opNames = [spanOps]string{
	"GET /api/items", "GET /api/items/{id}", "POST /api/items", "PUT /api/items/{id}",
	"DELETE /api/items/{id}", "GET /api/search", "GET /healthz", "POST /api/checkout",
	"SELECT items", "INSERT items", "GET cache", "POST payments/charge",
}

// service writes the span metrics of one service: per span name and status
// code, calls, the latency histogram's buckets, count and sum. A few services
// fail often or are slow, so the RED alerts have something to find.
func (l *load) service(rng *rand.Rand, s int, emit emitFunc) error {
	svc := fmt.Sprintf(serviceLabelFormat, s)
	errFrac := 0.001 + 0.01*rng.Float64()
	if s%17 == 3 {
		errFrac = 0.12
	}
	for o, op := range opNames {
		kind := "SPAN_KIND_SERVER"
		if o >= serverOps {
			kind = "SPAN_KIND_CLIENT"
		}
		reqRate := 0.2 + 40*math.Pow(rng.Float64(), 2) // requests per second
		median := 0.004 * math.Exp(4*rng.Float64())    // 4 ms to 220 ms
		if s%13 == 5 && o == 0 {
			median = 1.5
		}
		for _, status := range []string{"STATUS_CODE_UNSET", "STATUS_CODE_ERROR"} {
			frac := 1 - errFrac
			if status == "STATUS_CODE_ERROR" {
				frac = errFrac
			}
			base := []string{"service", svc, "span_kind", kind, "span_name", op, "status_code", status}
			if err := l.histogram(rng, base, reqRate*frac, median, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

// histogram writes calls and a latency histogram for requests at rate whose
// latencies are log-normal around median.
func (l *load) histogram(rng *rand.Rand, base []string, rate, median float64, emit emitFunc) error {
	const sigma = 0.8
	nb := len(latencyBoundsText) + 1
	calls := make([]float64, l.points)
	sum := make([]float64, l.points)
	buckets := make([][]float64, nb)
	for b := range buckets {
		buckets[b] = make([]float64, l.points)
	}
	var c, sm float64
	cum := make([]float64, nb)
	for p := 0; p < l.points; p++ {
		n := math.Round(rate * l.step.Seconds() * (0.7 + 0.6*rng.Float64()))
		c += n
		sm += n * median * math.Exp(sigma*sigma/2) * (0.9 + 0.2*rng.Float64())
		for b := 0; b < nb; b++ {
			f := 1.0
			if b < nb-1 {
				le, _ := strconv.ParseFloat(latencyBoundsText[b], 64)
				f = 0.5 * math.Erfc(-(math.Log(le)-math.Log(median))/(sigma*math.Sqrt2))
			}
			cum[b] += math.Round(n * f)
			buckets[b][p] = cum[b]
		}
		calls[p], sum[p] = c, math.Round(sm*1e6)/1e6
	}
	with := func(name string, extra ...string) []string {
		return append(append([]string{"__name__", name}, base...), extra...)
	}
	if err := emit(with("traces_spanmetrics_calls_total"), calls); err != nil {
		return err
	}
	for b := range buckets {
		le := "+Inf"
		if b < nb-1 {
			le = latencyBoundsText[b]
		}
		if err := emit(with("traces_spanmetrics_latency_bucket", "le", le), buckets[b]); err != nil {
			return err
		}
	}
	if err := emit(with("traces_spanmetrics_latency_count"), buckets[nb-1]); err != nil {
		return err
	}
	return emit(with("traces_spanmetrics_latency_sum"), sum)
}

// values makes series values point by point.
type values struct {
	rng    *rand.Rand
	points int
}

// counter grows by step on average, ±jitter of it; whole makes whole steps.
func (v values) counter(step, jitter float64, whole bool) []float64 {
	out := make([]float64, v.points)
	x := math.Round(step * 1000 * v.rng.Float64())
	for p := range out {
		d := step * (1 - jitter + 2*jitter*v.rng.Float64())
		if whole {
			d = math.Round(d)
		} else {
			d = math.Round(d*100) / 100
		}
		x += d
		out[p] = x
	}
	return out
}

// gauge wanders around mean by ±noise of it; whole rounds to integers.
func (v values) gauge(mean, noise float64, whole bool) []float64 {
	out := make([]float64, v.points)
	for p := range out {
		x := mean * (1 - noise + 2*noise*v.rng.Float64())
		if whole {
			x = math.Round(x)
		}
		out[p] = x
	}
	return out
}

// drift moves from start by step per point.
func (v values) drift(start, step float64) []float64 {
	out := make([]float64, v.points)
	for p := range out {
		out[p] = math.Round(start + step*float64(p))
	}
	return out
}

func (v values) constant(x float64) []float64 {
	out := make([]float64, v.points)
	for p := range out {
		out[p] = x
	}
	return out
}

var (
	cpuModes   = []string{"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"}
	memGauges  = []string{"MemAvailable", "MemTotal", "MemFree", "Buffers", "Cached", "Slab", "SwapTotal", "SwapFree", "Active", "Inactive", "Dirty", "Writeback", "Mapped", "Shmem", "PageTables", "Committed_AS", "CommitLimit", "AnonPages", "KernelStack", "VmallocUsed"}
	vmstat     = []string{"pgmajfault", "pgfault", "pgpgin", "pgpgout", "pswpin", "pswpout"}
	mounts     = [][3]string{{"/", "/dev/sda1", "ext4"}, {"/var", "/dev/sda2", "ext4"}, {"/data", "/dev/nvme0n1p1", "ext4"}, {"/run", "tmpfs", "tmpfs"}, {"/dev/shm", "tmpfs", "tmpfs"}, {"/var/lib/docker/overlay2", "overlay", "overlay"}}
	netDevices = []string{"lo", "eth0", "eth1", "docker0"}
	disks      = []string{"sda", "sdb", "nvme0n1", "dm-0"}
	units      = []string{"sshd.service", "cron.service", "docker.service", "containerd.service", "kubelet.service", "node-exporter.service", "systemd-journald.service", "systemd-resolved.service", "chrony.service", "backup.service"}
	unitStates = []string{"activating", "active", "deactivating", "failed", "inactive"}
)

// host writes what node_exporter exposes of one host (nodeSeriesPerHost
// series). A few hosts are busy, short of memory, filling a disk or have a
// failed unit, so the node alerts have something to find.
func (l *load) host(rng *rand.Rand, h int, emit emitFunc) error {
	v := values{rng: rng, points: l.points}
	id := []string{"cluster", "c" + strconv.Itoa(h%l.clusters), "instance", fmt.Sprintf("node-%03d:9100", h), "job", "node"}
	n := 0
	put := func(name string, vals []float64, extra ...string) error {
		n++
		return emit(append(append([]string{"__name__", name}, id...), extra...), vals)
	}
	sec := l.step.Seconds()
	busy := 0.05 + 0.5*rng.Float64()
	if h%29 == 7 {
		busy = 0.97
	}
	for c := 0; c < 8; c++ {
		for _, mode := range cpuModes {
			share := map[string]float64{"idle": 1 - busy, "iowait": 0.04 * busy, "irq": 0.01 * busy, "nice": 0.01 * busy,
				"softirq": 0.02 * busy, "steal": 0.02 * busy, "system": 0.3 * busy, "user": 0.6 * busy}[mode]
			if err := put("node_cpu_seconds_total", v.counter(sec*share, 0.3, false), "cpu", strconv.Itoa(c), "mode", mode); err != nil {
				return err
			}
		}
	}
	for i, name := range []string{"node_load1", "node_load5", "node_load15"} {
		if err := put(name, v.gauge(8*busy, 0.3/float64(i+1), false)); err != nil {
			return err
		}
	}
	total := float64(int64(16<<30) << (h % 3))
	avail := 0.3 + 0.5*rng.Float64()
	if h%31 == 11 {
		avail = 0.05
	}
	for _, m := range memGauges {
		mean, noise := total*0.05*rng.Float64(), 0.1
		switch m {
		case "MemTotal", "SwapTotal", "CommitLimit":
			mean, noise = total, 0
		case "MemAvailable":
			mean = total * avail
		}
		if err := put("node_memory_"+m+"_bytes", v.gauge(mean, noise, true)); err != nil {
			return err
		}
	}
	for _, m := range vmstat {
		if err := put("node_vmstat_"+m, v.counter(20+200*rng.Float64(), 0.5, true)); err != nil {
			return err
		}
	}
	for i, mt := range mounts {
		size := float64(int64(100<<30) << (i % 4))
		free := size * (0.2 + 0.6*rng.Float64())
		shrink := 0.0
		if h%23 == 4 && mt[0] == "/data" {
			free, shrink = size*0.08, 2<<20
		}
		files := 6.5e6
		fs := []string{"device", mt[1], "fstype", mt[2], "mountpoint", mt[0]}
		for _, s := range []struct {
			name string
			vals []float64
		}{
			{"node_filesystem_avail_bytes", v.drift(free, -shrink)},
			{"node_filesystem_free_bytes", v.drift(free+size*0.05, -shrink)},
			{"node_filesystem_size_bytes", v.constant(size)},
			{"node_filesystem_files", v.constant(files)},
			{"node_filesystem_files_free", v.gauge(files*0.9, 0.01, true)},
			{"node_filesystem_readonly", v.constant(0)},
			{"node_filesystem_device_error", v.constant(0)},
		} {
			if err := put(s.name, s.vals, fs...); err != nil {
				return err
			}
		}
	}
	for _, dev := range netDevices {
		pkts := 100 + 5000*rng.Float64()
		for _, dir := range []string{"receive", "transmit"} {
			for _, s := range []struct {
				name string
				step float64
			}{{"bytes", pkts * 800 * sec}, {"packets", pkts * sec}, {"errs", 0.05}, {"drop", 0.2}} {
				if err := put("node_network_"+dir+"_"+s.name+"_total", v.counter(s.step, 0.5, true), "device", dev); err != nil {
					return err
				}
			}
		}
		if err := put("node_network_up", v.constant(1), "device", dev); err != nil {
			return err
		}
		if err := put("node_network_mtu_bytes", v.constant(1500), "device", dev); err != nil {
			return err
		}
	}
	for _, dev := range disks {
		for _, s := range []struct {
			name  string
			step  float64
			whole bool
		}{{"reads_completed_total", 50 * sec, true}, {"writes_completed_total", 80 * sec, true},
			{"read_bytes_total", 4e5 * sec, true}, {"written_bytes_total", 9e5 * sec, true},
			{"io_time_seconds_total", 0.2 * sec * busy, false}, {"io_time_weighted_seconds_total", 0.5 * sec * busy, false},
			{"read_time_seconds_total", 0.05 * sec, false}, {"write_time_seconds_total", 0.1 * sec, false}} {
			if err := put("node_disk_"+s.name, v.counter(s.step, 0.4, s.whole), "device", dev); err != nil {
				return err
			}
		}
		if err := put("node_disk_io_now", v.gauge(2, 1, true), "device", dev); err != nil {
			return err
		}
	}
	for _, s := range []struct {
		name string
		vals []float64
	}{
		{"node_nf_conntrack_entries", v.gauge(20000, 0.2, true)},
		{"node_nf_conntrack_entries_limit", v.constant(262144)},
		{"node_filefd_allocated", v.gauge(5000, 0.1, true)},
		{"node_filefd_maximum", v.constant(9.2e18)},
		{"node_timex_offset_seconds", v.gauge(0.0001, 1, false)},
		{"node_timex_maxerror_seconds", v.gauge(0.2, 0.5, false)},
		{"node_timex_sync_status", v.constant(1)},
		{"node_textfile_scrape_error", v.constant(0)},
		{"node_context_switches_total", v.counter(2e4*sec, 0.3, true)},
		{"node_intr_total", v.counter(1e4*sec, 0.3, true)},
		{"node_forks_total", v.counter(20*sec, 0.5, true)},
		{"node_procs_running", v.gauge(4, 0.5, true)},
		{"node_procs_blocked", v.gauge(1, 1, true)},
		{"up", v.constant(1)},
	} {
		if err := put(s.name, s.vals); err != nil {
			return err
		}
	}
	for u, unit := range units {
		for _, st := range unitStates {
			failed, on := h%37 == 2 && u == len(units)-1, 0.0
			if (st == "active" && !failed) || (st == "failed" && failed) {
				on = 1
			}
			if err := put("node_systemd_unit_state", v.constant(on), "name", unit, "state", st); err != nil {
				return err
			}
		}
	}
	if n != nodeSeriesPerHost {
		return fmt.Errorf("host wrote %d series, want %d", n, nodeSeriesPerHost)
	}
	return nil
}

// send writes points [from, to) of every series, 1,000 series per request.
func (l *load) send(url string, from, to int) error {
	client := &http.Client{Timeout: time.Minute}
	var ts []prompb.TimeSeries
	flush := func() error {
		if len(ts) == 0 {
			return nil
		}
		raw, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
		if err != nil {
			return err
		}
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("remote write: %s: %s", resp.Status, body)
		}
		ts = ts[:0]
		return nil
	}
	err := l.each(func(lv []string, vals []float64) error {
		s := prompb.TimeSeries{Samples: make([]prompb.Sample, 0, to-from)}
		for i := 0; i < len(lv); i += 2 {
			s.Labels = append(s.Labels, prompb.Label{Name: lv[i], Value: lv[i+1]})
		}
		slices.SortFunc(s.Labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
		for p := from; p < to; p++ {
			s.Samples = append(s.Samples, prompb.Sample{Value: vals[p], Timestamp: l.start.Add(time.Duration(p) * l.step).UnixMilli()})
		}
		ts = append(ts, s)
		if len(ts) == 1000 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}
