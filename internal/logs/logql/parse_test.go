package logql

import (
	"strings"
	"testing"
)

// validQueries are queries Grafana, Logs Drilldown and users send; each must
// parse, and print back to a query that parses to the same text.
var validQueries = []string{
	`{app="foo"}`,
	`{app="foo", env!="dev", pod=~"api-.*", ns!~"kube-.*"}`,
	"{app=`foo`} |= `error`",
	`{app="foo"} |= "error" != "timeout" |~ "5\\d\\d" !~ "health"`,
	`{app="foo"} |= "a" or "b" != "c" or "d"`,
	`{app="foo"} |> "<_> level=error <_>" !> "<_> debug <_>"`,
	`{app="foo"} | json`,
	`{app="foo"} | json first_server="servers[0]", ua="request.headers[\"User-Agent\"]"`,
	`{app="foo"} | logfmt`,
	`{app="foo"} | logfmt --strict --keep-empty`,
	`{app="foo"} | logfmt level, msg="message"`,
	`{app="foo"} | pattern "<ip> - - <_> \"<method> <uri> <_>\" <status> <size>"`,
	`{app="foo"} | regexp "(?P<method>\\w+) (?P<path>[^ ]+)"`,
	`{app="foo"} | unpack | decolorize`,
	`{app="foo"} | logfmt | level="error" | status >= 400 | duration > 1.5s | size > 20KB`,
	`{app="foo"} | logfmt | level="error" or level="warn"`,
	`{app="foo"} | logfmt | level="error", status=500`,
	`{app="foo"} | logfmt | level="error" and (status >= 500 or status == 429)`,
	`{app="foo"} | json | __error__=""`,
	`{app="foo"} | line_format "{{.level}} {{.msg | ToUpper}} {{__line__}}"`,
	`{app="foo"} | label_format lvl=level, svc="{{.app}}-{{.env}}"`,
	`{app="foo"} | drop level, pod="x" | keep app, level`,
	`{app="foo"} # a comment`,
	`rate({app="foo"}[5m])`,
	`count_over_time({app="foo"} |= "error" [1m])`,
	`count_over_time({app="foo"}[1m] |= "error")`,
	`bytes_over_time({app="foo"}[1h] offset 1d)`,
	`bytes_rate({app="foo"}[30s])`,
	`sum by (level) (rate({app="foo"} | logfmt [1m]))`,
	`sum(rate({app="foo"}[1m])) by (level)`,
	`sum without (pod) (count_over_time({app="foo"}[1m]))`,
	`topk(5, sum by (path) (rate({app="foo"} | json [5m])))`,
	`bottomk(3, count_over_time({app="foo"}[5m]))`,
	`quantile_over_time(0.99, {app="foo"} | logfmt | unwrap duration(latency) | __error__="" [5m]) by (path)`,
	`sum_over_time({app="foo"} | logfmt | unwrap bytes(size) [1m])`,
	`avg_over_time({app="foo"} | json | unwrap latency [1m]) without (pod)`,
	`max_over_time({app="foo"} | logfmt | unwrap latency [1m])`,
	`sum(rate({app="foo"}[1m])) / sum(rate({app="bar"}[1m])) * 100`,
	`sum(rate({app="foo"}[1m])) > bool 10`,
	`sum by (a) (rate({app="foo"}[1m])) / on (a) group_left sum by (a) (rate({app="bar"}[1m]))`,
	`sum(count_over_time({app="foo"}[1m])) or vector(0)`,
	`-sum(rate({app="foo"}[1m]))`,
	`2 ^ 3 ^ 2`,
	`label_replace(rate({app="foo"}[1m]), "dst", "$1", "app", "(.*)")`,
	`sum by (level) (count_over_time({service_name="x"} | detected_level=~"err.*" [1m]))`,
}

func TestParseValid(t *testing.T) {
	for _, q := range validQueries {
		e, err := ParseExpr(q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		again, err := ParseExpr(e.String())
		if err != nil {
			t.Errorf("%s: printed %s does not parse: %v", q, e.String(), err)
			continue
		}
		if again.String() != e.String() {
			t.Errorf("%s: round trip %q != %q", q, again.String(), e.String())
		}
	}
}

func TestParseErrors(t *testing.T) {
	f := func(q, want string) {
		t.Helper()
		_, err := ParseExpr(q)
		if err == nil {
			t.Errorf("%s: parsed, want error %q", q, want)
			return
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q, want it to contain %q", q, err, want)
		}
	}
	f(`{app="foo"`, "parse error at line 1, col 11: syntax error: unexpected $end")
	f(`{app=foo}`, "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting STRING")
	f(`{}`, "parse error at line 1, col 2: syntax error: unexpected }, expecting IDENTIFIER")
	f(`{app=~".*"}`, "parse error : queries require at least one regexp or equality matcher")
	f(`{app="foo"} |= "a" |`, "parse error at line 1, col 21: syntax error: unexpected $end")
	f("{app=\"foo\"}\n| json |= ", "parse error at line 2, col 11: syntax error: unexpected $end, expecting STRING")
	f(`rate({app="foo"})`, "syntax error: unexpected ), expecting [")
	f(`sum_over_time({app="foo"}[1m])`, "invalid aggregation sum_over_time without unwrap")
	f(`rate({app="foo"} | unwrap x [1m])`, "invalid aggregation rate with unwrap")
	f(`{app="foo"} | unwrap x`, "syntax error: unexpected IDENTIFIER")
	f(`{app="foo"} |~ "("`, "invalid regex")
	f(`{app="foo"} | regexp "(a)"`, "at least one named capture must be supplied")
	f(`{app="foo"} | pattern "<a><b>"`, "consecutive captures")
	f(`{app="foo"} | line_format "{{.a"`, "invalid line template")
	f(`{app="foo"} + 1`, "syntax error: unexpected +")
	f(`{app="foo"} | status > 1zz`, "syntax error: unexpected NUMBER")
	f(`{app="foo" "bar"`, "syntax error: unexpected STRING")
	f(`topk(x, rate({app="foo"}[1m]))`, "unexpected IDENTIFIER, expecting NUMBER")
	f(`{app="foo"} |= "unterminated`, "literal not terminated")
}
