package promwrite

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// TestSimpleRequestsRefused checks that a body a web page could send
// cross-origin without a CORS preflight (no Content-Type, text/plain, a form)
// stores nothing and gets 415 with Prometheus's content-type message, while
// the same body with the remote-write Content-Type is stored.
func TestSimpleRequestsRefused(t *testing.T) {
	good := encode(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "up"), Samples: samples(base)}}})
	p := newPair(t, defaultOpts(), 0, 0)
	for _, ct := range []string{"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/write", strings.NewReader(string(good)))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		p.mine.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnsupportedMediaType || !strings.Contains(rec.Body.String(), "expected application/x-protobuf") {
			t.Errorf("Content-Type %q: %d %q, want 415 naming application/x-protobuf", ct, rec.Code, rec.Body.String())
		}
	}
	if got := dump(t, p.mineData); got != "" {
		t.Fatalf("refused requests stored data:\n%s", got)
	}
	if r := post(p.mine, good, "application/x-protobuf", ""); r.code != http.StatusNoContent {
		t.Fatalf("remote-write Content-Type without Content-Encoding: %+v, want 204", r)
	}
}
