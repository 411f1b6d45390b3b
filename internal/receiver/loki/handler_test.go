package loki

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vispyr/vispyr/internal/logs"
)

// encodePush builds a PushRequest as Loki's clients send it (protobuf, snappy).
func encodePush(lbls, line string, ts time.Time, meta map[string]string) []byte {
	var tsb []byte
	tsb = protowire.AppendTag(tsb, 1, protowire.VarintType)
	tsb = protowire.AppendVarint(tsb, uint64(ts.Unix()))
	tsb = protowire.AppendTag(tsb, 2, protowire.VarintType)
	tsb = protowire.AppendVarint(tsb, uint64(ts.Nanosecond()))
	var e []byte
	e = protowire.AppendTag(e, 1, protowire.BytesType)
	e = protowire.AppendBytes(e, tsb)
	e = protowire.AppendTag(e, 2, protowire.BytesType)
	e = protowire.AppendString(e, line)
	for k, v := range meta {
		var p []byte
		p = protowire.AppendTag(p, 1, protowire.BytesType)
		p = protowire.AppendString(p, k)
		p = protowire.AppendTag(p, 2, protowire.BytesType)
		p = protowire.AppendString(p, v)
		e = protowire.AppendTag(e, 3, protowire.BytesType)
		e = protowire.AppendBytes(e, p)
	}
	var s []byte
	s = protowire.AppendTag(s, 1, protowire.BytesType)
	s = protowire.AppendString(s, lbls)
	s = protowire.AppendTag(s, 2, protowire.BytesType)
	s = protowire.AppendBytes(s, e)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendBytes(req, s)
	return snappy.Encode(nil, req)
}

func newServer(t *testing.T, cfg logs.Config) (*httptest.Server, *logs.Store) {
	t.Helper()
	st, err := logs.Open(t.TempDir(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mux := http.NewServeMux()
	NewHandler(st, 1<<20, slog.New(slog.NewTextHandler(io.Discard, nil))).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, st
}

func post(t *testing.T, url, ctype, enc string, body []byte) (int, string) {
	t.Helper()
	return postPath(t, url+"/loki/api/v1/push", ctype, enc, body)
}

func postPath(t *testing.T, url, ctype, enc string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	req.Header.Set("X-Scope-OrgID", "team-a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPushProtoAndJSON(t *testing.T) {
	srv, st := newServer(t, logs.Config{})
	now := time.Now()
	code, msg := post(t, srv.URL, "application/x-protobuf", "", encodePush(`{app="shop", env="prod"}`, "level=error msg=boom", now, map[string]string{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}))
	if code != http.StatusNoContent {
		t.Fatalf("proto push: %d %s", code, msg)
	}
	js := `{"streams":[{"stream":{"app":"shop","env":"prod"},"values":[["` + itoa(now.UnixNano()+1) + `","second line",{"span_id":"00f067aa0ba902b7"}],["` + itoa(now.UnixNano()+2) + `","third"]]}]}`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(js))
	zw.Close()
	if code, msg := post(t, srv.URL, "application/json", "gzip", gz.Bytes()); code != http.StatusNoContent {
		t.Fatalf("json push: %d %s", code, msg)
	}
	it, err := st.Select(context.Background(), "team-a", logs.SelectParams{
		Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "service_name", "shop")},
		Start:    now.UnixNano(), End: now.UnixNano() + 10, Direction: logs.Forward})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for it.Next() {
		ls, e := it.At()
		got = append(got, ls.Get("env")+"|"+e.Line+"|"+e.Metadata.Get("trace_id")+e.Metadata.Get("span_id")+"|"+e.Metadata.Get("detected_level"))
	}
	want := "prod|level=error msg=boom|4bf92f3577b34da6a3ce929d0e0e4736|error,prod|second line|00f067aa0ba902b7|unknown,prod|third||unknown"
	if strings.Join(got, ",") != want {
		t.Fatalf("stored:\n%s\nwant:\n%s", strings.Join(got, ","), want)
	}
}

func TestPushErrorsAsLoki(t *testing.T) {
	srv, _ := newServer(t, logs.Config{MaxLineSize: 8})
	f := func(name, ctype string, body []byte, wantCode int, wantMsg string) {
		t.Helper()
		code, msg := post(t, srv.URL, ctype, "", body)
		if code != wantCode || !strings.Contains(msg, wantMsg) {
			t.Errorf("%s: %d %q, want %d with %q", name, code, msg, wantCode, wantMsg)
		}
	}
	f("bad snappy", "application/x-protobuf", []byte("not snappy"), 400, "snappy")
	f("bad labels", "application/x-protobuf", encodePush(`{app=}`, "x", time.Now(), nil), 400, "error parsing labels")
	f("bad json", "application/json", []byte(`{"streams":[{"stream":{"a":"b"},"values":[["notanumber","x"]]}]}`), 400, "timestamp")
	f("line too long", "application/x-protobuf", encodePush(`{app="a"}`, "0123456789", time.Now(), nil), 400, "Max entry size '8' bytes exceeded")
	f("too big", "application/json", bytes.Repeat([]byte(" "), 2<<20), 413, "too large")
}

// The legacy path takes the protobuf as the v1 path does, and JSON in the
// legacy shape (labels string, RFC 3339 timestamps), as Loki 3 still does.
func TestLegacyPushPath(t *testing.T) {
	srv, st := newServer(t, logs.Config{})
	now := time.Now().Truncate(time.Microsecond)
	legacy := `{"streams":[{"labels":"{app=\"legacy\", env=\"dev\"}","entries":[` +
		`{"ts":"` + now.Format(time.RFC3339Nano) + `","line":"first","structuredMetadata":{"trace_id":"0af7651916cd43dd8448eb211c80319c"}},` +
		`{"ts":"` + now.Add(time.Millisecond).Format(time.RFC3339Nano) + `","line":"second"}]}]}`
	if code, msg := postPath(t, srv.URL+"/api/prom/push", "application/json", "", []byte(legacy)); code != http.StatusNoContent {
		t.Fatalf("legacy json push: %d %s", code, msg)
	}
	if code, msg := postPath(t, srv.URL+"/api/prom/push", "application/x-protobuf", "", encodePush(`{app="legacy", env="dev"}`, "third", now.Add(2*time.Millisecond), nil)); code != http.StatusNoContent {
		t.Fatalf("legacy proto push: %d %s", code, msg)
	}
	it, err := st.Select(context.Background(), "team-a", logs.SelectParams{
		Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", "legacy")},
		Start:    now.UnixNano(), End: now.UnixNano() + 1e9, Direction: logs.Forward})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for it.Next() {
		ls, e := it.At()
		got = append(got, fmt.Sprintf("%s|%d|%s|%s", ls.Get("env"), e.Timestamp-now.UnixNano(), e.Line, e.Metadata.Get("trace_id")))
	}
	want := "dev|0|first|0af7651916cd43dd8448eb211c80319c,dev|1000000|second|,dev|2000000|third|"
	if strings.Join(got, ",") != want {
		t.Fatalf("stored:\n%s\nwant:\n%s", strings.Join(got, ","), want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func FuzzDecodeProto(f *testing.F) {
	f.Add(encodePush(`{app="a"}`, "line", time.Unix(1, 2), map[string]string{"k": "v"}))
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if raw, err := snappy.Decode(nil, b); err == nil {
			decodeProto(raw)
		}
		decodeProto(b)
	})
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":"v"}]]}]}`))
	f.Add([]byte(`{"streams":[{"values":[[]]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) { decodeJSON(b) })
}

func FuzzDecodeLegacyJSON(f *testing.F) {
	f.Add([]byte(`{"streams":[{"labels":"{a=\"b\"}","entries":[{"ts":"2024-01-02T03:04:05.123456789Z","line":"x","structuredMetadata":{"k":"v"}}]}]}`))
	f.Add([]byte(`{"streams":[{"labels":"","entries":[{}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) { decodeLegacyJSON(b) })
}
