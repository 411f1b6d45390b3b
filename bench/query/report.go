package main

import (
	"fmt"
	"strings"

	"github.com/vispyr/vispyr/bench/internal/stats"
)

// report prints, per query, each system and configuration's cold and warm
// latencies, then Vispyr's ratios to VictoriaMetrics.
func report(ts []*timing, o options) {
	ms := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	fmt.Printf("\nlatency in ms: cold = first request after a start-up (median (min–max) of %d start-up(s));\n", o.repeat)
	fmt.Printf("warm = the next %d × %d: median, p99 and min–max\n", o.runs, o.repeat)
	for _, q := range dashboardQueries() {
		fmt.Printf("\n%s\n", q.name)
		fmt.Printf("  %-36s %22s %9s %9s %18s %8s\n", "system", "cold", "warm p50", "warm p99", "warm min–max", "result")
		for _, t := range ts {
			cold, warm := stats.Of(stats.Ms(t.cold[q.name])), stats.Ms(t.warm[q.name])
			w := stats.Of(warm)
			fmt.Printf("  %-36s %22s %9.1f %9.1f %18s %8d\n", t.system+", "+t.config, cold.Format(ms), w.Median,
				stats.Quantile(warm, .99), ms(w.Min)+"–"+ms(w.Max), t.answers[q.name].series)
		}
	}
	ratios(ts)
	equalAnswers(ts)
}

// ratios prints Vispyr's warm medians over VictoriaMetrics', cache off to
// cache off and cache on to cache on (the goals: ≤ 1.5 and ≤ 1.0).
func ratios(ts []*timing) {
	find := func(sys, cfg string) *timing {
		for _, t := range ts {
			if t.system == sys && t.config == cfg {
				return t
			}
		}
		return nil
	}
	var pairs [][2]*timing
	for _, t := range ts {
		if !strings.HasPrefix(t.system, "vispyr") {
			continue
		}
		switch t.config {
		case "results cache off":
			pairs = append(pairs, [2]*timing{t, find("victoria-metrics", "cache off")}, [2]*timing{t, find("prometheus", "no cache")})
		case "results cache on":
			pairs = append(pairs, [2]*timing{t, find("victoria-metrics", "cache on")})
		}
	}
	fmt.Println()
	for _, p := range pairs {
		if p[0] == nil || p[1] == nil {
			continue
		}
		fmt.Printf("%s (%s) / %s (%s), warm medians:\n", p[0].system, p[0].config, p[1].system, p[1].config)
		for _, q := range dashboardQueries() {
			v, o := stats.Of(stats.Ms(p[0].warm[q.name])).Median, stats.Of(stats.Ms(p[1].warm[q.name])).Median
			fmt.Printf("  ×%-6.2f %s\n", v/o, q.name)
		}
	}
}

// equalAnswers checks that each system answered the same in every
// configuration: a cache must not change an answer.
func equalAnswers(ts []*timing) {
	for i, a := range ts {
		for _, b := range ts[i+1:] {
			if a.system != b.system {
				continue
			}
			same := true
			for name, x := range a.answers {
				if b.answers[name].digest != x.digest {
					same = false
					fmt.Printf("WARNING: %s answers %q differently with %s and %s\n", a.system, name, a.config, b.config)
				}
			}
			if same {
				fmt.Printf("%s: every answer identical with %s and %s\n", a.system, a.config, b.config)
			}
		}
	}
}
