package pyroscope

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/vispyr/vispyr/internal/pipeline/profile"
)

type sinkStore struct{}

func (sinkStore) ConsumeProfiles(_ context.Context, b *profile.Batch) error { return b.Validate() }

// FuzzIngest drives the whole /ingest decoder (query parameters, formats, multipart,
// pprof) with arbitrary input: it must answer, never panic, and never 5xx.
func FuzzIngest(f *testing.F) {
	f.Add("name=app.cpu{env=prod}&from=1700000000&until=1700000010", "binary/octet-stream", []byte("main;work 10\n"))
	f.Add("name=app&format=lines&from=1700000000000", "application/octet-stream", []byte("a;b\na;c\n"))
	f.Add("name=app&format=pprof", "application/octet-stream", []byte{0x1f, 0x8b, 8, 0})
	f.Add("name=app", "multipart/form-data; boundary=zz", []byte("--zz\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\n\x0a\x02\x08\x01\r\n--zz--\r\n"))
	f.Add("name=a{b=\"c,d\"}&from=1700000000000000000", "application/octet-stream", []byte("x 1"))
	h := NewHandler(sinkStore{}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	f.Fuzz(func(t *testing.T, query, contentType string, body []byte) {
		if _, err := url.ParseQuery(query); err != nil {
			return
		}
		req := httptest.NewRequest(http.MethodPost, "/ingest?"+url.PathEscape(query), bytes.NewReader(body))
		req.URL.RawQuery = query
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, query, rec.Body.String())
		}
	})
}
