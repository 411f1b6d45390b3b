package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// APIResponse is the Prometheus HTTP API envelope.
type APIResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`

	HTTPStatus int    `json:"-"`
	Body       string `json:"-"`
}

// QueryData is the data of a query or query_range answer.
type QueryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// Series is one element of a matrix or vector result.
type Series struct {
	Metric map[string]string `json:"metric"`
	Values []SamplePair      `json:"values"`
	Value  *SamplePair       `json:"value"`
}

// SamplePair is [<unix seconds float>, "<value>"].
type SamplePair struct {
	T float64
	V string
}

func (s *SamplePair) UnmarshalJSON(b []byte) error {
	var raw [2]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw[0], &s.T); err != nil {
		return fmt.Errorf("decode sample time: %w", err)
	}
	if err := json.Unmarshal(raw[1], &s.V); err != nil {
		return fmt.Errorf("decode sample value: %w", err)
	}
	return nil
}

// Float parses the sample value.
func (s SamplePair) Float() float64 {
	f, _ := strconv.ParseFloat(s.V, 64)
	return f
}

// Millis returns the sample time in Unix milliseconds.
func (s SamplePair) Millis() int64 { return int64(s.T*1000 + 0.5) }

// API calls the Prometheus-compatible API at base (e.g. "http://127.0.0.1:9090").
type API struct {
	Base   string
	Client *http.Client
}

// NewAPI returns an API client for base.
func NewAPI(base string) *API {
	return &API{Base: base, Client: &http.Client{Timeout: 30 * time.Second}}
}

// Get sends GET path?params.
func (a *API) Get(t testing.TB, path string, params url.Values) *APIResponse {
	t.Helper()
	u := a.Base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	resp, err := a.Client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return decodeAPI(t, "GET "+path, resp)
}

// PostForm sends POST path with a form body, as Grafana does by default.
func (a *API) PostForm(t testing.TB, path string, form url.Values) *APIResponse {
	t.Helper()
	resp, err := a.Client.Post(a.Base+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return decodeAPI(t, "POST "+path, resp)
}

func decodeAPI(t testing.TB, what string, resp *http.Response) *APIResponse {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read body: %v", what, err)
	}
	r := &APIResponse{HTTPStatus: resp.StatusCode, Body: string(b)}
	if err := json.Unmarshal(b, r); err != nil {
		r.Status = "" // not the envelope; callers check HTTPStatus/Body
	}
	return r
}

// MustSucceed fails the test unless the answer is a 200 success.
func (r *APIResponse) MustSucceed(t testing.TB) *APIResponse {
	t.Helper()
	if r.HTTPStatus != http.StatusOK || r.Status != "success" {
		t.Fatalf("want 200 success, got %d: %s", r.HTTPStatus, truncate(r.Body, 2000))
	}
	return r
}

// Query decodes data as a query result.
func (r *APIResponse) Query(t testing.TB) (resultType string, series []Series) {
	t.Helper()
	var d QueryData
	if err := json.Unmarshal(r.Data, &d); err != nil {
		t.Fatalf("decode query data: %v: %s", err, truncate(r.Body, 2000))
	}
	if d.ResultType == "matrix" || d.ResultType == "vector" {
		if err := json.Unmarshal(d.Result, &series); err != nil {
			t.Fatalf("decode %s: %v", d.ResultType, err)
		}
	}
	return d.ResultType, series
}

// QueryRange runs query_range over [start, end] and returns the matrix.
func (a *API) QueryRange(t testing.TB, query string, start, end time.Time, step time.Duration) []Series {
	t.Helper()
	r := a.Get(t, "/api/v1/query_range", url.Values{
		"query": {query},
		"start": {FormatTime(start)},
		"end":   {FormatTime(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}).MustSucceed(t)
	typ, s := r.Query(t)
	if typ != "matrix" {
		t.Fatalf("query_range %q: resultType %q, want matrix", query, typ)
	}
	return s
}

// Instant runs an instant query at ts.
func (a *API) Instant(t testing.TB, query string, ts time.Time) (string, []Series, *APIResponse) {
	t.Helper()
	r := a.Get(t, "/api/v1/query", url.Values{"query": {query}, "time": {FormatTime(ts)}}).MustSucceed(t)
	typ, s := r.Query(t)
	return typ, s, r
}

// Eventually retries f every 250ms until it returns true or timeout
// passes, then fails with the last reason f gave.
func Eventually(t testing.TB, timeout time.Duration, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %s", timeout, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// FormatTime renders t as Unix seconds with millisecond precision.
func FormatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
