package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/vispyr/vispyr/internal/prommgr"
)

// ruleGroup and rule are a rule file's groups as Prometheus reads them.
type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	Record string            `yaml:"record,omitempty"`
	Alert  string            `yaml:"alert,omitempty"`
	Expr   string            `yaml:"expr"`
	For    string            `yaml:"for,omitempty"`
	Labels map[string]string `yaml:"labels,omitempty"`
}

func record(name, expr string) rule { return rule{Record: name, Expr: expr} }

func alert(name, expr, forDur, severity string) rule {
	return rule{Alert: name, Expr: expr, For: forDur, Labels: map[string]string{"severity": severity}}
}

// ruleSet is the bench's rules, 1,000 with the defaults, as a team running
// services and hosts has them:
//   - per service, a group of RED recording rules and alerts over the span
//     metrics (rates, error ratios, latency quantiles per service and span
//     name; multi-window error-ratio and p99 alerts), 16 rules;
//   - one overview group over all services, 14 rules;
//   - per cluster of hosts, node_exporter-mixin recording rules (12) and
//     alerts (24);
//   - Vispyr's shipped default rules, at the bench's interval.
func ruleSet(l *load, interval time.Duration) ([]ruleGroup, error) {
	iv := model.Duration(interval).String()
	var groups []ruleGroup
	for s := 0; s < l.services; s++ {
		groups = append(groups, ruleGroup{Name: fmt.Sprintf("red-"+serviceLabelFormat, s), Interval: iv,
			Rules: redRules(fmt.Sprintf(serviceLabelFormat, s))})
	}
	groups = append(groups, ruleGroup{Name: "red-overview", Interval: iv, Rules: overviewRules()})
	for c := 0; c < l.clusters; c++ {
		sel := fmt.Sprintf(`job="node", cluster="c%d"`, c)
		groups = append(groups,
			ruleGroup{Name: fmt.Sprintf("node-exporter.rules-c%d", c), Interval: iv, Rules: nodeRecordingRules(sel)},
			ruleGroup{Name: fmt.Sprintf("node-exporter-c%d", c), Interval: iv, Rules: nodeAlerts(sel)})
	}
	shipped, err := shippedRules(interval)
	if err != nil {
		return nil, err
	}
	return append(groups, shipped...), nil
}

func redRules(svc string) []rule {
	calls := fmt.Sprintf(`traces_spanmetrics_calls_total{service=%q, span_kind="SPAN_KIND_SERVER"}`, svc)
	errs := fmt.Sprintf(`traces_spanmetrics_calls_total{service=%q, span_kind="SPAN_KIND_SERVER", status_code="STATUS_CODE_ERROR"}`, svc)
	client := fmt.Sprintf(`traces_spanmetrics_calls_total{service=%q, span_kind="SPAN_KIND_CLIENT"}`, svc)
	lat := func(suffix string) string {
		return fmt.Sprintf(`traces_spanmetrics_latency_%s{service=%q, span_kind="SPAN_KIND_SERVER"}`, suffix, svc)
	}
	ratio := func(by, w string) string {
		return fmt.Sprintf("sum by (%s) (rate(%s[%s]))\n/\nsum by (%s) (rate(%s[%s]))", by, errs, w, by, calls, w)
	}
	q := func(phi, by string) string {
		return fmt.Sprintf("histogram_quantile(%s, sum by (%s, le) (rate(%s[5m])))", phi, by, lat("bucket"))
	}
	return []rule{
		record("service:requests:rate1m", fmt.Sprintf("sum by (service) (rate(%s[1m]))", calls)),
		record("service:requests:rate5m", fmt.Sprintf("sum by (service) (rate(%s[5m]))", calls)),
		record("service:errors:rate5m", fmt.Sprintf("sum by (service) (rate(%s[5m]))", errs)),
		record("service:error_ratio:rate5m", ratio("service", "5m")),
		record("service:error_ratio:rate30m", ratio("service", "30m")),
		record("service_span:requests:rate5m", fmt.Sprintf("sum by (service, span_name) (rate(%s[5m]))", calls)),
		record("service_span:error_ratio:rate5m", ratio("service, span_name", "5m")),
		record("service:latency_seconds:p50_5m", q("0.5", "service")),
		record("service:latency_seconds:p90_5m", q("0.9", "service")),
		record("service:latency_seconds:p99_5m", q("0.99", "service")),
		record("service_span:latency_seconds:p99_5m", q("0.99", "service, span_name")),
		record("service:latency_seconds:mean5m", fmt.Sprintf("sum by (service) (rate(%s[5m]))\n/\nsum by (service) (rate(%s[5m]))", lat("sum"), lat("count"))),
		record("service_span:client_requests:rate5m", fmt.Sprintf("sum by (service, span_name) (rate(%s[5m]))", client)),
		alert("ServiceErrorRatioHigh", fmt.Sprintf("service:error_ratio:rate5m{service=%q} > 0.05\nand\nservice:error_ratio:rate30m{service=%q} > 0.05", svc, svc), "2m", "critical"),
		alert("ServiceLatencyP99High", q("0.99", "service")+" > 1", "5m", "warning"),
		alert("ServiceNoTraffic", fmt.Sprintf("sum by (service) (rate(%s[5m])) == 0", calls), "10m", "warning"),
	}
}

func overviewRules() []rule {
	const (
		calls  = `traces_spanmetrics_calls_total{span_kind="SPAN_KIND_SERVER"}`
		errs   = `traces_spanmetrics_calls_total{span_kind="SPAN_KIND_SERVER", status_code="STATUS_CODE_ERROR"}`
		bucket = `traces_spanmetrics_latency_bucket{span_kind="SPAN_KIND_SERVER"}`
	)
	return []rule{
		record("global:requests:rate5m", "sum(rate("+calls+"[5m]))"),
		record("global:errors:rate5m", "sum(rate("+errs+"[5m]))"),
		record("global:error_ratio:rate5m", "global:errors:rate5m / global:requests:rate5m"),
		record("span_kind:requests:rate5m", "sum by (span_kind) (rate(traces_spanmetrics_calls_total[5m]))"),
		record("status_code:requests:rate5m", "sum by (status_code) (rate(traces_spanmetrics_calls_total[5m]))"),
		record("global:latency_seconds:p50_5m", "histogram_quantile(0.5, sum by (le) (rate("+bucket+"[5m])))"),
		record("global:latency_seconds:p99_5m", "histogram_quantile(0.99, sum by (le) (rate("+bucket+"[5m])))"),
		record("top10:service_latency_seconds:p99_5m", "topk(10, histogram_quantile(0.99, sum by (service, le) (rate("+bucket+"[5m]))))"),
		record("top10:service_errors:rate5m", "topk(10, sum by (service) (rate("+errs+"[5m])))"),
		record("global:services:count", "count(count by (service) (traces_spanmetrics_calls_total))"),
		record("global:operations:count", "count(count by (service, span_name) ("+calls+"))"),
		record("span:requests:rate1m", "sum by (service, span_name, span_kind) (rate(traces_spanmetrics_calls_total[1m]))"),
		alert("GlobalErrorRatioHigh", "global:error_ratio:rate5m > 0.05", "5m", "critical"),
		alert("ServiceErrorBudgetBurn", "sum by (service) (rate("+errs+"[30m]))\n/\nsum by (service) (rate("+calls+"[30m])) > 0.02", "5m", "warning"),
	}
}

// diskDevices is the mixin's device selector.
const diskDevices = `device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)"`

// nodeRecordingRules are node_exporter's mixin recording rules for the hosts sel picks.
func nodeRecordingRules(sel string) []rule {
	net := func(what string) rule {
		return record("instance:node_network_"+what+"_excluding_lo:rate5m",
			fmt.Sprintf(`sum without (device) (rate(node_network_%s_total{%s, device!="lo"}[5m]))`, what, sel))
	}
	return []rule{
		record("instance:node_num_cpu:sum", fmt.Sprintf(`count without (cpu, mode) (node_cpu_seconds_total{%s, mode="idle"})`, sel)),
		record("instance:node_cpu_utilisation:rate5m", fmt.Sprintf(`1 - avg without (cpu) (sum without (mode) (rate(node_cpu_seconds_total{%s, mode=~"idle|iowait|steal"}[5m])))`, sel)),
		record("instance:node_load1_per_cpu:ratio", fmt.Sprintf(`node_load1{%s} / instance:node_num_cpu:sum{%s}`, sel, sel)),
		record("instance:node_memory_utilisation:ratio", fmt.Sprintf(`1 - (
  node_memory_MemAvailable_bytes{%[1]s}
  or
  (node_memory_Buffers_bytes{%[1]s} + node_memory_Cached_bytes{%[1]s} + node_memory_MemFree_bytes{%[1]s} + node_memory_Slab_bytes{%[1]s})
) / node_memory_MemTotal_bytes{%[1]s}`, sel)),
		record("instance:node_vmstat_pgmajfault:rate5m", fmt.Sprintf(`rate(node_vmstat_pgmajfault{%s}[5m])`, sel)),
		record("instance_device:node_disk_io_time_seconds:rate5m", fmt.Sprintf(`rate(node_disk_io_time_seconds_total{%s, %s}[5m])`, sel, diskDevices)),
		record("instance_device:node_disk_io_time_weighted_seconds:rate5m", fmt.Sprintf(`rate(node_disk_io_time_weighted_seconds_total{%s, %s}[5m])`, sel, diskDevices)),
		net("receive_bytes"), net("transmit_bytes"), net("receive_drop"), net("transmit_drop"),
		record("cluster:node_cpu:ratio_rate5m", fmt.Sprintf(`avg without (instance) (instance:node_cpu_utilisation:rate5m{%s})`, sel)),
	}
}

// nodeAlerts are node_exporter's mixin alerts for the hosts sel picks;
// predict_linear reads 30m where the mixin reads 6h, for the bench loads 35
// minutes of samples.
func nodeAlerts(sel string) []rule {
	fs := sel + `, fstype!=""`
	spaceFilling := func(pct, forDur, sev string) rule {
		return alert("NodeFilesystemSpaceFillingUp", fmt.Sprintf(`(
  node_filesystem_avail_bytes{%[1]s} / node_filesystem_size_bytes{%[1]s} * 100 < %[2]s
and
  predict_linear(node_filesystem_avail_bytes{%[1]s}[30m], 24*60*60) < 0
and
  node_filesystem_readonly{%[1]s} == 0
)`, fs, pct), forDur, sev)
	}
	outOfSpace := func(pct, sev string) rule {
		return alert("NodeFilesystemAlmostOutOfSpace", fmt.Sprintf(`(
  node_filesystem_avail_bytes{%[1]s} / node_filesystem_size_bytes{%[1]s} * 100 < %[2]s
and
  node_filesystem_readonly{%[1]s} == 0
)`, fs, pct), "30m", sev)
	}
	filesFilling := func(pct, sev string) rule {
		return alert("NodeFilesystemFilesFillingUp", fmt.Sprintf(`(
  node_filesystem_files_free{%[1]s} / node_filesystem_files{%[1]s} * 100 < %[2]s
and
  predict_linear(node_filesystem_files_free{%[1]s}[30m], 4*60*60) < 0
and
  node_filesystem_readonly{%[1]s} == 0
)`, fs, pct), "1h", sev)
	}
	outOfFiles := func(pct, sev string) rule {
		return alert("NodeFilesystemAlmostOutOfFiles", fmt.Sprintf(`(
  node_filesystem_files_free{%[1]s} / node_filesystem_files{%[1]s} * 100 < %[2]s
and
  node_filesystem_readonly{%[1]s} == 0
)`, fs, pct), "1h", sev)
	}
	netErrs := func(dir string) rule {
		return alert("NodeNetwork"+strings.ToUpper(dir[:1])+dir[1:]+"Errs",
			fmt.Sprintf(`rate(node_network_%[2]s_errs_total{%[1]s}[2m]) / rate(node_network_%[2]s_packets_total{%[1]s}[2m]) > 0.01`, sel, dir), "1h", "warning")
	}
	return []rule{
		spaceFilling("15", "1h", "warning"), spaceFilling("10", "1h", "critical"),
		outOfSpace("5", "warning"), outOfSpace("3", "critical"),
		filesFilling("40", "warning"), filesFilling("20", "critical"),
		outOfFiles("5", "warning"), outOfFiles("3", "critical"),
		netErrs("receive"), netErrs("transmit"),
		alert("NodeHighNumberConntrackEntriesUsed", fmt.Sprintf(`(node_nf_conntrack_entries{%[1]s} / node_nf_conntrack_entries_limit{%[1]s}) > 0.75`, sel), "", "warning"),
		alert("NodeTextFileCollectorScrapeError", fmt.Sprintf(`node_textfile_scrape_error{%s} == 1`, sel), "", "warning"),
		alert("NodeClockSkewDetected", fmt.Sprintf(`(
  node_timex_offset_seconds{%[1]s} > 0.05
and
  deriv(node_timex_offset_seconds{%[1]s}[5m]) >= 0
)
or
(
  node_timex_offset_seconds{%[1]s} < -0.05
and
  deriv(node_timex_offset_seconds{%[1]s}[5m]) <= 0
)`, sel), "10m", "warning"),
		alert("NodeClockNotSynchronising", fmt.Sprintf(`min_over_time(node_timex_sync_status{%[1]s}[5m]) == 0 and node_timex_maxerror_seconds{%[1]s} >= 16`, sel), "10m", "warning"),
		alert("NodeFileDescriptorLimit", fmt.Sprintf(`(node_filefd_allocated{%[1]s} * 100 / node_filefd_maximum{%[1]s} > 70)`, sel), "15m", "warning"),
		alert("NodeFileDescriptorLimit", fmt.Sprintf(`(node_filefd_allocated{%[1]s} * 100 / node_filefd_maximum{%[1]s} > 90)`, sel), "15m", "critical"),
		alert("NodeCPUHighUsage", fmt.Sprintf(`sum without (mode) (avg without (cpu) (rate(node_cpu_seconds_total{%s, mode!~"idle|iowait"}[2m]))) * 100 > 90`, sel), "15m", "info"),
		alert("NodeSystemSaturation", fmt.Sprintf(`node_load1{%[1]s} / count without (cpu, mode) (node_cpu_seconds_total{%[1]s, mode="idle"}) > 2`, sel), "15m", "warning"),
		alert("NodeMemoryMajorPagesFaults", fmt.Sprintf(`rate(node_vmstat_pgmajfault{%s}[5m]) > 500`, sel), "15m", "warning"),
		alert("NodeMemoryHighUtilization", fmt.Sprintf(`100 - (node_memory_MemAvailable_bytes{%[1]s} / node_memory_MemTotal_bytes{%[1]s} * 100) > 90`, sel), "15m", "warning"),
		alert("NodeDiskIOSaturation", fmt.Sprintf(`rate(node_disk_io_time_weighted_seconds_total{%s, %s}[5m]) > 10`, sel, diskDevices), "30m", "warning"),
		alert("NodeSystemdServiceFailed", fmt.Sprintf(`node_systemd_unit_state{%s, state="failed"} == 1`, sel), "5m", "warning"),
		alert("NodeSwapping", fmt.Sprintf(`rate(node_vmstat_pswpin{%s}[5m]) > 1000`, sel), "15m", "warning"),
		alert("NodeDown", fmt.Sprintf(`up{%s} == 0`, sel), "5m", "critical"),
	}
}

// shippedRules are Vispyr's default rules with their default thresholds,
// evaluated at the bench's interval.
func shippedRules(interval time.Duration) ([]ruleGroup, error) {
	var c prommgr.Config
	c.Defaults()
	c.DefaultRules.Interval = interval
	b, err := prommgr.RenderDefaultRules(c.DefaultRules)
	if err != nil {
		return nil, err
	}
	var f struct {
		Groups []ruleGroup `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("shipped rules: %w", err)
	}
	return f.Groups, nil
}

func ruleYAML(groups []ruleGroup) ([]byte, error) {
	return yaml.Marshal(map[string][]ruleGroup{"groups": groups})
}

// ruleStats counts rules, the sizes of groups and the distinct selectors
// (sets of label matchers) the rules read.
type ruleStats struct {
	rules, groups, minGroup, maxGroup int
	selectors, selectorReads          int
}

func statsOf(groups []ruleGroup) (ruleStats, error) {
	st := ruleStats{groups: len(groups), minGroup: 1 << 30}
	distinct := map[string]bool{}
	for _, g := range groups {
		st.rules += len(g.Rules)
		st.minGroup, st.maxGroup = min(st.minGroup, len(g.Rules)), max(st.maxGroup, len(g.Rules))
		for _, r := range g.Rules {
			expr, err := promParser.ParseExpr(r.Expr)
			if err != nil {
				return st, fmt.Errorf("group %s: %q: %w", g.Name, r.Expr, err)
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					ms := make([]string, len(vs.LabelMatchers))
					for i, m := range vs.LabelMatchers {
						ms[i] = m.String()
					}
					slices.Sort(ms)
					distinct[strings.Join(ms, ",")] = true
					st.selectorReads++
				}
				return nil
			})
		}
	}
	st.selectors = len(distinct)
	return st, nil
}

var promParser = parser.NewParser(parser.Options{})
