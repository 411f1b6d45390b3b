// Command rules measures the CPU that evaluating 1,000 Prometheus rules over
// 100k series every 15 s costs Vispyr, with Debian's Prometheus on the same
// rule file and the same samples running beside it in the same run: RED rules
// over span metrics, node_exporter-mixin rules over hosts, and the shipped
// default rules. It then checks that each one's recorded series are what the
// other's PromQL says of the same expressions.
//
//	go run ./bench/rules            # -h for flags
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/bench/internal/stats"
)

func main() {
	services := flag.Int("services", 50, "services writing span metrics (432 series and 16 rules each)")
	hosts := flag.Int("hosts", 285, "hosts writing node_exporter series (275 each)")
	clusters := flag.Int("clusters", 5, "clusters the hosts are in (36 node rules each)")
	history := flag.Duration("history", 35*time.Minute, "samples written before the first round")
	rounds := flag.Int("rounds", 4, "measured evaluation rounds (after one warm-up round)")
	interval := flag.Duration("interval", 15*time.Second, "evaluation interval")
	promBin := flag.String("prometheus", "/usr/bin/prometheus", "Prometheus binary")
	cpuProfile := flag.String("cpuprofile", "", "write Vispyr's CPU profile of the measured rounds to this file (go tool pprof)")
	vispyrBin := flag.String("vispyr", "", "vispyr binary (default: go build ./cmd/vispyr)")
	flag.Parse()
	// Samples 15 s apart, from -history before the start to however long
	// loading takes (at most an hour) plus 9 minutes.
	now := time.Now()
	l := newLoad(*services, *hosts, *clusters, now.Add(-*history), now.Add(69*time.Minute), 15*time.Second)
	if err := run(l, *rounds, *interval, *vispyrBin, *promBin, *cpuProfile); err != nil {
		log.Fatal(err)
	}
}

type target struct {
	name       string
	srv        *proc.Server
	writeURL   string
	metricsURL string
	queryURL   string // the Prometheus API's base URL
	adminURL   string // Vispyr's admin port (/debug/pprof); empty for Prometheus
}

func run(load *load, rounds int, interval time.Duration, vispyrBin, promBin, cpuProfile string) error {
	work, err := os.MkdirTemp("", "bench-rules-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if vispyrBin == "" {
		if vispyrBin, err = proc.BuildVispyr(work); err != nil {
			return err
		}
	}
	groups, err := ruleSet(load, interval)
	if err != nil {
		return err
	}
	st, err := statsOf(groups)
	if err != nil {
		return err
	}
	ruleFile := filepath.Join(work, "rules.yml")
	b, err := ruleYAML(groups)
	if err != nil {
		return err
	}
	if err := os.WriteFile(ruleFile, b, 0o644); err != nil {
		return err
	}
	promCfg := filepath.Join(work, "prometheus.yml")
	cfg := fmt.Sprintf("global:\n  evaluation_interval: %s\nrule_files: [%q]\n", interval, ruleFile)
	if err := os.WriteFile(promCfg, []byte(cfg), 0o644); err != nil {
		return err
	}

	var targets []*target
	defer func() {
		for _, t := range targets {
			t.srv.Stop(syscall.SIGTERM)
		}
	}()
	v, err := startVispyr(vispyrBin, work, promCfg)
	if err != nil {
		return err
	}
	targets = append(targets, v)
	p, err := startPrometheus(promBin, work, promCfg)
	if err != nil {
		return err
	}
	targets = append(targets, p)

	fmt.Printf("load: %d series, a sample every %s from %s before the start (%d services, %d hosts)\n",
		load.series(), load.step, time.Since(load.start).Round(time.Second), load.services, load.hosts)
	fmt.Printf("rules: %d in %d groups of %d to %d, every %s; %d selectors in them, %d distinct\n",
		st.rules, st.groups, st.minGroup, st.maxGroup, interval, st.selectorReads, st.selectors)
	if err := loadAll(load, targets); err != nil {
		return err
	}

	// One warm-up round, then CPU per round for both, side by side.
	time.Sleep(interval)
	cpu := map[string][]float64{}
	last := map[string]time.Duration{}
	before := map[string]map[string]float64{}
	for _, t := range targets {
		last[t.name] = proc.CPUTime(t.srv.Pid())
		before[t.name], _ = scrape(t.metricsURL)
	}
	profiled := make(chan error, 1)
	if cpuProfile != "" {
		go func() { profiled <- proc.CPUProfile(v.adminURL, cpuProfile, time.Duration(rounds)*interval) }()
	} else {
		profiled <- nil
	}
	for r := 0; r < rounds; r++ {
		begin := time.Now()
		time.Sleep(interval)
		wall := time.Since(begin)
		for _, t := range targets {
			c := proc.CPUTime(t.srv.Pid())
			cpu[t.name] = append(cpu[t.name], 100*(c-last[t.name]).Seconds()/wall.Seconds())
			last[t.name] = c
		}
	}

	if err := <-profiled; err != nil {
		return err
	}
	if cpuProfile != "" {
		fmt.Printf("vispyr: CPU profile of the measured rounds in %s\n", cpuProfile)
	}
	fmt.Printf("\n%-11s %-38s %-22s %-6s %-9s %s\n", "target", "CPU % of one core (median [min–max])",
		"slowest group's last s", "rules", "failures", "missed (in the measured rounds)")
	for _, t := range targets {
		sum, max := scrape(t.metricsURL)
		s := stats.Of(cpu[t.name])
		b := before[t.name]
		fmt.Printf("%-11s %-38s %-22.3f %-6.0f %-9.0f %.0f\n", t.name,
			fmt.Sprintf("%.1f [%.1f–%.1f] n=%d", s.Median, s.Min, s.Max, s.N),
			max["prometheus_rule_group_last_duration_seconds"], sum["prometheus_rule_group_rules"],
			sum["prometheus_rule_evaluation_failures_total"]-b["prometheus_rule_evaluation_failures_total"],
			sum["prometheus_rule_group_iterations_missed_total"]-b["prometheus_rule_group_iterations_missed_total"])
	}
	return checkAgreement(v, p, groups)
}

// checkAgreement compares a sample of recorded series both ways: a service's
// RED group, the overview, a cluster's node recording rules.
func checkAgreement(v, p *target, groups []ruleGroup) error {
	var sampled []sampledRule
	for _, g := range groups {
		m, ok := map[string]string{"red-svc-00": `service="svc-00"`, "red-svc-03": `service="svc-03"`,
			"red-overview": "", "node-exporter.rules-c0": `cluster="c0"`}[g.Name]
		for _, r := range g.Rules {
			if ok {
				sampled = append(sampled, sampledRule{rule: r, matchers: m})
			}
		}
	}
	fmt.Println()
	for _, pair := range [][2]*target{{v, p}, {p, v}} {
		a, err := checkRecorded(pair[0], pair[1], sampled)
		if err != nil {
			return err
		}
		fmt.Printf("%s's recorded series vs %s's PromQL at the same instants: %s\n", pair[0].name, pair[1].name, a)
	}
	return nil
}

// loadAll writes the load to every target at once, in passes: each pass
// sends the samples from where the last one ended to 8.5 minutes from now
// (the receivers refuse more than 10 minutes ahead), until a pass has less
// than a minute to send. Every round then reads full windows, and nothing is
// written while CPU is measured.
func loadAll(l *load, targets []*target) error {
	start, sent := time.Now(), 0
	for {
		upto := l.pointsUntil(time.Now().Add(8*time.Minute + 30*time.Second))
		if upto == l.points {
			return fmt.Errorf("loading took over %s", time.Since(start).Round(time.Second))
		}
		if upto-sent < 4 {
			fmt.Printf("loaded in %v: %d samples per series, %d in all, to each target\n",
				time.Since(start).Round(time.Millisecond), sent, sent*l.series())
			return nil
		}
		errs := make(chan error, len(targets))
		for _, t := range targets {
			go func() {
				if err := l.send(t.writeURL, sent, upto); err != nil {
					errs <- fmt.Errorf("%s: %w", t.name, err)
					return
				}
				errs <- nil
			}()
		}
		for range targets {
			if err := <-errs; err != nil {
				return err
			}
		}
		sent = upto
	}
}

func startVispyr(bin, work, promCfg string) (*target, error) {
	dir := filepath.Join(work, "vispyr")
	addrs := map[string]string{}
	args := []string{"serve", "--data-dir=" + dir, "--prometheus.config.file=" + promCfg, "--prometheus.self-scrape=false"}
	for _, flagName := range []string{"metrics.listen-address", "otlp.grpc-address", "otlp.http-address",
		"admin.listen-address", "health.listen-address", "tempo.listen-address",
		"pyroscope.listen-address", "pyroscope.ingest-address", "ui.listen-address", "loki.listen-address", "faro.listen-address"} {
		a, err := proc.FreeAddr()
		if err != nil {
			return nil, err
		}
		addrs[flagName] = a
		args = append(args, "--"+flagName+"="+a)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	srv, err := proc.Start(filepath.Join(work, "vispyr.log"), bin, args...)
	if err != nil {
		return nil, err
	}
	admin := "http://" + addrs["admin.listen-address"]
	if err := srv.WaitReady(admin+"/-/ready", time.Minute); err != nil {
		return nil, fmt.Errorf("vispyr: %w", err)
	}
	api := "http://" + addrs["metrics.listen-address"]
	return &target{name: "vispyr", srv: srv, writeURL: api + "/api/v1/write", queryURL: api,
		metricsURL: admin + "/metrics", adminURL: admin}, nil
}

func startPrometheus(bin, work, promCfg string) (*target, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	srv, err := proc.Start(filepath.Join(work, "prometheus.log"), bin,
		"--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(work, "prometheus"),
		"--web.listen-address="+addr, "--web.enable-remote-write-receiver")
	if err != nil {
		return nil, err
	}
	u := "http://" + addr
	if err := srv.WaitReady(u+"/-/ready", time.Minute); err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	return &target{name: "prometheus", srv: srv, writeURL: u + "/api/v1/write", queryURL: u, metricsURL: u + "/metrics"}, nil
}

// scrape sums each metric family of a /metrics page over its series and
// takes its largest value.
func scrape(u string) (sum, max map[string]float64) {
	sum, max = map[string]float64{}, map[string]float64{}
	resp, err := http.Get(u)
	if err != nil {
		return sum, max
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name = line[:i]
			_, rest, ok = strings.Cut(line[strings.LastIndexByte(line, '}')+1:], " ")
		}
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64); err == nil {
			sum[name] += v
			if v > max[name] {
				max[name] = v
			}
		}
	}
	return sum, max
}
