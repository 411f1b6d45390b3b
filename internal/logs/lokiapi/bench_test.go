package lokiapi

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

// BenchmarkQueryRange measures Loki API answers over 200k lines in 10
// streams spread over an hour: a needle search (limit 100) and a per-level
// rate at Grafana's default ~250 steps, encoding included.
//
//	go test ./internal/logs/lokiapi -run XXX -bench QueryRange -benchtime 20x
func BenchmarkQueryRange(b *testing.B) {
	st, err := logs.Open(b.TempDir(), logs.Config{}, discard())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-time.Hour)
	const lines, streams = 200_000, 10
	levels := []string{"info", "warn", "error", "debug"}
	for batch := 0; batch < lines; batch += 10_000 {
		req := &logpush.Request{}
		for s := range streams {
			ls := labels.FromStrings("app", fmt.Sprintf("svc%d", s), "env", "prod")
			var es []logs.Entry
			for i := batch + s; i < batch+10_000; i += streams {
				line := fmt.Sprintf("level=%s user=u%d path=/api/items/%d took=%dms", levels[i%4], i%97, i, i%500)
				if i%1000 == 0 {
					line += " needle"
				}
				es = append(es, logs.Entry{Timestamp: start.Add(time.Duration(i) * time.Hour / lines).UnixNano(), Line: line})
			}
			req.Streams = append(req.Streams, logs.Stream{Labels: ls, Entries: es})
		}
		if err := st.ConsumeLogs(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	h := New(st, logs.QueryLimits{}, discard()).Handler()
	run := func(b *testing.B, q string) {
		p := url.Values{"query": {q}, "start": {strconv.FormatInt(start.UnixNano(), 10)}, "end": {strconv.FormatInt(end.UnixNano(), 10)}, "limit": {"100"}}
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "/loki/api/v1/query_range?"+p.Encode(), nil))
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	}
	b.Run("needle", func(b *testing.B) { run(b, `{env="prod"} |= "needle"`) })
	b.Run("rate_by_level", func(b *testing.B) { run(b, `sum by (level) (rate({env="prod"} | logfmt [1m]))`) })
}
