// Command soak runs `vispyr serve` for a long time under a steady load of
// every ingest signal plus queries, and reports its RSS, goroutines and open
// file descriptors over time, every refused or failed request, and at the
// end whether everything acknowledged can still be read back. See
// bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/test/load"
)

func main() {
	var (
		duration  = flag.Duration("duration", 30*time.Minute, "how long to run the load")
		scale     = flag.Float64("scale", 1, "multiplies every rate below")
		writes    = flag.Float64("writes", 10, "remote-write requests per second (a sample for each of the same 500 series)")
		traces    = flag.Float64("traces", 20, "OTLP trace requests per second (one trace of 20 spans each)")
		profiles  = flag.Float64("profiles", 2, "Pyroscope ingest requests per second (ten services in turn)")
		logs      = flag.Float64("logs", 10, "Loki pushes per second (20 lines each, ten streams in turn)")
		queries   = flag.Float64("queries", 1, "query rounds per second (a PromQL range query, a TraceQL search, a flame graph, two LogQL queries)")
		every     = flag.Duration("report", 0, "report interval (default: a thirtieth of -duration, at least 5s)")
		vispyrBin = flag.String("vispyr", "", "vispyr binary (default: go build ./cmd/vispyr)")
		keep      = flag.Bool("keep", false, "keep the data dir")

		overload = flag.Float64("overload", 0, "instead of the steady rates: measure each signal's sustainable rate (what is acknowledged flat out for -probe), then offer this many times it for -duration")
		probe    = flag.Duration("probe", 15*time.Second, "with -overload: how long to send flat out to measure the sustainable rate")
		clients  = flag.Int("clients", 256, "with -overload: concurrent clients per signal")
		ceiling  = flag.Int64("max-memory", 1<<30, "with -overload: limits.max_memory_bytes given to vispyr, which its peak RSS must stay under")
	)
	flag.Parse()
	if *every <= 0 {
		*every = max(*duration/30, 5*time.Second)
	}
	var err error
	if *overload > 0 {
		err = overloadRun{factor: *overload, probe: *probe, duration: *duration, every: *every, senders: *clients,
			queries: *queries, ceiling: *ceiling, bin: *vispyrBin, keep: *keep}.run()
	} else {
		rates := map[string]float64{load.Metrics: *writes * *scale, load.Traces: *traces * *scale,
			load.Profiles: *profiles * *scale, load.Logs: *logs * *scale, "queries": *queries * *scale}
		err = run(*duration, *every, rates, *vispyrBin, *keep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type endpoints struct {
	load.Target
	admin string
}

// startServer builds vispyr unless bin is given and starts it on a fresh data
// dir with args added; cleanup removes the dir unless keep.
func startServer(bin string, keep bool, args ...string) (srv *proc.Server, ep endpoints, log string, cleanup func(), err error) {
	work, err := os.MkdirTemp("", "vispyr-soak-")
	if err != nil {
		return nil, ep, "", nil, err
	}
	cleanup = func() { os.RemoveAll(work) }
	if keep {
		fmt.Println("data kept in", work)
		cleanup = func() {}
	}
	if bin == "" {
		if bin, err = proc.BuildVispyr(work); err != nil {
			cleanup()
			return nil, ep, "", nil, err
		}
	}
	if srv, ep, err = start(bin, work, args...); err != nil {
		cleanup()
		return nil, ep, "", nil, err
	}
	return srv, ep, filepath.Join(work, "vispyr.log"), cleanup, nil
}

func run(duration, every time.Duration, rates map[string]float64, bin string, keep bool) error {
	srv, ep, log, cleanup, err := startServer(bin, keep)
	if err != nil {
		return err
	}
	defer cleanup()
	defer srv.Stop(syscall.SIGTERM)

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	shape := load.DefaultShape
	shape.Fixed = true
	d := load.New(ep.Target, shape)
	fmt.Printf("soak: %v of remote write %.1f/s, traces %.1f/s, profiles %.1f/s, loki pushes %.1f/s, queries %.1f/s (log %s)\n",
		duration, rates[load.Metrics], rates[load.Traces], rates[load.Profiles], rates[load.Logs], rates["queries"], log)

	var wg sync.WaitGroup
	q := &querier{ep: ep, run: d.Run()}
	for name, send := range map[string]func(context.Context) bool{
		load.Metrics: d.RemoteWrite, load.Traces: d.Trace, load.Profiles: d.Profile, load.Logs: d.Log, "queries": q.round,
	} {
		wg.Go(func() { steady(ctx, rates[name], send) })
	}
	start := time.Now()
	fmt.Printf("%8s %9s %9s %6s %5s  %s\n", "elapsed", "rss MiB", "peak MiB", "gorout", "fds", "acknowledged / refused-or-failed so far")
	report := func() {
		rss, hwm := proc.Memory(srv.Pid())
		st := d.Stats()
		var parts []string
		for _, sig := range signals {
			parts = append(parts, fmt.Sprintf("%s %d/%d", sig, st.Acked[sig], refused(st.Codes[sig])))
		}
		parts = append(parts, fmt.Sprintf("queries %d/%d", q.ok.Load(), q.failed.Load()))
		fmt.Printf("%8s %9d %9d %6d %5d  %s\n", time.Since(start).Round(time.Second), rss>>20, hwm>>20,
			goroutines(ep.admin), fds(srv.Pid()), strings.Join(parts, ", "))
	}
	t := time.NewTicker(every)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-t.C:
			report()
		}
	}
	t.Stop()
	wg.Wait()
	report()

	for _, e := range q.errors() {
		fmt.Println("failed query:", e)
	}
	missing, bad, err := verify(d)
	if err != nil {
		return err
	}
	fmt.Printf("failed queries %d\n", q.failed.Load())
	if missing > 0 || bad > 0 || q.failed.Load() > 0 {
		return fmt.Errorf("%d acknowledged items lost, %d bad answers, %d failed queries", missing, bad, q.failed.Load())
	}
	return nil
}

// verify prints the driver's bad answers and reads back everything it had
// acknowledged, printing what is lost.
func verify(d *load.Driver) (missing, bad int, err error) {
	st := d.Stats()
	for _, b := range st.Bad {
		fmt.Println("bad answer:", b)
	}
	vctx, vcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer vcancel()
	lost, err := d.Verify(vctx)
	if err != nil {
		return 0, 0, fmt.Errorf("read back: %w", err)
	}
	for i, m := range lost {
		if i == 20 {
			fmt.Printf("... and %d more\n", len(lost)-20)
			break
		}
		fmt.Println("lost:", m)
	}
	st = d.Stats()
	fmt.Printf("acknowledged %v; lost %d; bad answers %d\n", st.Acked, len(lost), len(st.Bad))
	// More stored than acknowledged is no loss: requests cancelled in flight
	// when the run ended, or answered 429/503 yet stored, are counted here.
	fmt.Printf("stored (samples, log lines) %v; cancelled in flight at the end %v\n", st.Stored, st.Cancelled)
	return len(lost), len(st.Bad), nil
}

// steady calls send rate times a second, evenly spaced, until ctx ends;
// slow answers delay the next call rather than piling calls up.
func steady(ctx context.Context, rate float64, send func(context.Context) bool) {
	if rate <= 0 {
		return
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			send(ctx)
		}
	}
}

func refused(codes map[int]int) int {
	n := 0
	for c, k := range codes {
		if c/100 != 2 {
			n += k
		}
	}
	return n
}

func start(bin, work string, extra ...string) (*proc.Server, endpoints, error) {
	var ep endpoints
	addrs := map[string]*string{"--metrics.listen-address": &ep.Metrics, "--otlp.http-address": &ep.OTLPHTTP,
		"--pyroscope.ingest-address": &ep.PyroscopeIngest, "--tempo.listen-address": &ep.Tempo,
		"--pyroscope.listen-address": &ep.Pyroscope, "--loki.listen-address": &ep.Loki, "--admin.listen-address": &ep.admin}
	args := []string{"serve", "--data-dir=" + filepath.Join(work, "data")}
	for flag, p := range addrs {
		a, err := proc.FreeAddr()
		if err != nil {
			return nil, ep, err
		}
		*p = a
		args = append(args, flag+"="+a)
	}
	for _, flag := range []string{"--otlp.grpc-address", "--health.listen-address", "--ui.listen-address", "--faro.listen-address"} {
		a, err := proc.FreeAddr()
		if err != nil {
			return nil, ep, err
		}
		args = append(args, flag+"="+a)
	}
	srv, err := proc.Start(filepath.Join(work, "vispyr.log"), bin, append(args, extra...)...)
	if err != nil {
		return nil, ep, err
	}
	if err := srv.WaitReady("http://"+ep.admin+"/-/ready", time.Minute); err != nil {
		srv.Kill()
		return nil, ep, err
	}
	return srv, ep, nil
}

// goroutines reads go_goroutines from the admin port's /metrics (-1 when
// it cannot).
func goroutines(admin string) int {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(n)
		}
	}
	return -1
}

func fds(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(es)
}

// querier runs the queries a dashboard refresh makes, over the soak's data.
type querier struct {
	ep  endpoints
	run string

	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
}

func (q *querier) round(ctx context.Context) bool {
	now := time.Now()
	start := strconv.FormatInt(now.Add(-15*time.Minute).Unix(), 10)
	end := strconv.FormatInt(now.Unix(), 10)
	ok := q.get(ctx, "promql", "http://"+q.ep.Metrics+"/api/v1/query_range?"+url.Values{
		"query": {fmt.Sprintf(`sum(count_over_time(load_test{run=%q}[1m]))`, q.run)}, "start": {start}, "end": {end}, "step": {"15"}}.Encode())
	ok = q.get(ctx, "traceql", "http://"+q.ep.Tempo+"/api/search?"+url.Values{
		"q": {fmt.Sprintf(`{resource.service.name="load-%s" && span.http.route="/r/1"}`, q.run)}, "limit": {"20"}, "start": {start}, "end": {end}}.Encode()) && ok
	body := fmt.Sprintf(`{"profile_typeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds","label_selector":"{}","start":%d,"end":%d,"max_nodes":1024}`,
		now.Add(-15*time.Minute).UnixMilli(), now.UnixMilli())
	ok = q.post(ctx, "flame graph", "http://"+q.ep.Pyroscope+"/querier.v1.QuerierService/SelectMergeStacktraces", body) && ok
	startNS, endNS := strconv.FormatInt(now.Add(-15*time.Minute).UnixNano(), 10), strconv.FormatInt(now.UnixNano(), 10)
	ok = q.get(ctx, "logql lines", "http://"+q.ep.Loki+"/loki/api/v1/query_range?"+url.Values{
		"query": {fmt.Sprintf(`{run=%q, stream="3"} |= "line=7" | logfmt | push > 100`, q.run)}, "limit": {"100"}, "start": {startNS}, "end": {endNS}}.Encode()) && ok
	ok = q.get(ctx, "logql metric", "http://"+q.ep.Loki+"/loki/api/v1/query_range?"+url.Values{
		"query": {fmt.Sprintf(`sum by (stream) (count_over_time({run=%q}[1m]))`, q.run)}, "start": {startNS}, "end": {endNS}, "step": {"15"}}.Encode()) && ok
	return ok
}

func (q *querier) get(ctx context.Context, what, u string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	return q.do(ctx, what, req)
}

func (q *querier) post(ctx context.Context, what, u, body string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	return q.do(ctx, what, req)
}

func (q *querier) do(ctx context.Context, what string, req *http.Request) bool {
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if ctx.Err() != nil {
		return false // the soak ended mid-query
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	} else {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			msg = fmt.Sprintf("%d %.200s", resp.StatusCode, b)
		}
	}
	if msg == "" {
		q.ok.Add(1)
		return true
	}
	q.failed.Add(1)
	q.mu.Lock()
	if len(q.errs) < 20 {
		q.errs = append(q.errs, what+": "+msg)
	}
	q.mu.Unlock()
	return false
}

func (q *querier) errors() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.errs...)
}
