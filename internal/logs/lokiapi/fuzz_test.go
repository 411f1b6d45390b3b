package lokiapi

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/logs"
)

// FuzzQueryParams sends arbitrary query strings to every endpoint: each
// answer is a success or a 4xx, never a panic or a 500.
func FuzzQueryParams(f *testing.F) {
	for _, s := range []string{
		"query=%7Bapp%3D%22a%22%7D&start=0&end=1700000000000000000&limit=5&direction=forward",
		"query=sum%28rate%28%7Bapp%3D%22a%22%7D%5B1m%5D%29%29&start=1.5&end=2024-01-01T00:00:00Z&step=1ms",
		"query=vector%281%29%2Bvector%281%29&time=4000000000",
		"query=%7Bapp%3D%22a%22%7D&interval=1e308&since=-5m&step=NaN",
		"match[]=%7Bapp%3D~%22.%2B%22%7D&start=99999999999999999999",
		"query=%7Bapp%3D%22a%22%7D&targetLabels=,app,,&aggregateBy=labels&limit=0",
		"start=9223372036854775807&end=-9223372036854775808&step=1y",
	} {
		f.Add(s)
	}
	st, err := logs.Open(f.TempDir(), logs.Config{}, discard())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	h := New(st, logs.QueryLimits{Timeout: 2 * time.Second}, discard()).Handler()
	paths := []string{"/loki/api/v1/query", "/loki/api/v1/query_range", "/loki/api/v1/labels", "/loki/api/v1/label/app/values",
		"/loki/api/v1/series", "/loki/api/v1/index/stats", "/loki/api/v1/index/volume", "/loki/api/v1/index/volume_range",
		"/loki/api/v1/detected_fields", "/loki/api/v1/detected_labels", "/loki/api/v1/patterns"}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, p := range paths {
			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path = p
			req.URL.RawQuery = raw
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("%s?%s: %d %s", p, raw, w.Code, w.Body.String())
			}
		}
	})
}

func TestParseTimeAsLoki(t *testing.T) {
	f := func(in string, want time.Time) {
		t.Helper()
		got, err := parseTime("start", in, time.Time{})
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	f("1700000000", time.Unix(1700000000, 0))
	f("1700000000123456789", time.Unix(0, 1700000000123456789))
	f("1700000000.5", time.Unix(1700000000, 5e8))
	f("2024-01-02T03:04:05.5Z", time.Date(2024, 1, 2, 3, 4, 5, 5e8, time.UTC))
	f("4000000000", time.Unix(4000000000, 0)) // ten digits: seconds, as Loki reads them
	if _, err := parseTime("start", "soon", time.Time{}); err == nil {
		t.Error("soon parsed")
	}
}
