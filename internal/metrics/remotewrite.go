package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/limits"
)

// remoteWriteGuard checks what Prometheus's write handler does not: body size
// before and after snappy, series per request, and bytes in flight. Everything that
// passes goes to the stock handler, which appends and answers with the exact codes
// and v2 headers senders expect.
type remoteWriteGuard struct {
	next     http.Handler
	limits   config.Limits
	inflight *limits.Inflight
	rejected *prometheus.CounterVec
}

func newRemoteWriteGuard(next http.Handler, l config.Limits, inflight *limits.Inflight, reg prometheus.Registerer) *remoteWriteGuard {
	return &remoteWriteGuard{
		next:     next,
		limits:   l,
		inflight: inflight,
		rejected: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_remote_write_rejected_requests_total",
			Help: "Remote-write requests refused before reaching storage, by reason.",
		}, []string{"reason"}),
	}
}

func (g *remoteWriteGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := limits.ReadBody(r, g.limits.MaxRequestBytes)
	if err != nil {
		g.reject(w, "too_large", http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		g.reject(w, "encoding", http.StatusUnsupportedMediaType,
			fmt.Sprintf("unsupported Content-Encoding %q: remote write uses snappy", enc))
		return
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		g.reject(w, "bad_snappy", http.StatusBadRequest, "decode snappy: "+err.Error())
		return
	}
	if int64(n) > g.limits.MaxRequestBytes {
		g.reject(w, "too_large", http.StatusRequestEntityTooLarge,
			fmt.Sprintf("decompressed body of %d bytes is over the limit of %d", n, g.limits.MaxRequestBytes))
		return
	}
	cost := int64(len(body) + n)
	if !g.inflight.Acquire(cost) {
		g.rejected.WithLabelValues("overloaded").Inc()
		limits.WriteOverloaded(w, "too many bytes being ingested at once; retry later")
		return
	}
	defer g.inflight.Release(cost)

	if series, err := countSeries(body, r.Header.Get("Content-Type")); err != nil {
		g.reject(w, "bad_protobuf", http.StatusBadRequest, err.Error())
		return
	} else if series > g.limits.MaxSeriesPerRequest {
		g.reject(w, "too_many_series", http.StatusBadRequest,
			fmt.Sprintf("request has %d series, over the limit of %d", series, g.limits.MaxSeriesPerRequest))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	g.next.ServeHTTP(w, r)
}

func (g *remoteWriteGuard) reject(w http.ResponseWriter, reason string, code int, msg string) {
	g.rejected.WithLabelValues(reason).Inc()
	http.Error(w, msg, code)
}

// countSeries counts the top-level time series of a v1 (field 1) or v2 (field 5)
// write request without decoding them, by walking the outer protobuf fields.
func countSeries(compressed []byte, contentType string) (int, error) {
	raw, err := snappy.Decode(nil, compressed)
	if err != nil {
		return 0, fmt.Errorf("decode snappy: %w", err)
	}
	field := protowire.Number(1)
	if strings.Contains(contentType, "io.prometheus.write.v2.Request") {
		field = 5
	}
	n := 0
	for len(raw) > 0 {
		num, typ, l := protowire.ConsumeTag(raw)
		if l < 0 {
			return 0, errors.New("decode protobuf: malformed field tag")
		}
		raw = raw[l:]
		l = protowire.ConsumeFieldValue(num, typ, raw)
		if l < 0 {
			return 0, fmt.Errorf("decode protobuf: malformed field %d", num)
		}
		if num == field && typ == protowire.BytesType {
			n++
		}
		raw = raw[l:]
	}
	return n, nil
}
