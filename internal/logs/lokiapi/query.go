package lokiapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/logs/logql"
)

// encodingFlagsHeader asks for entries whose structured metadata and parsed
// labels come apart from the stream labels (Grafana sends categorize-labels).
const encodingFlagsHeader = "X-Loki-Response-Encoding-Flags"

type queryResponse struct {
	Status string    `json:"status"`
	Data   queryData `json:"data"`
}

type queryData struct {
	ResultType    string    `json:"resultType"`
	Result        any       `json:"result"`
	Stats         statsJSON `json:"stats"`
	EncodingFlags []string  `json:"encodingFlags,omitempty"`
}

// queryRange serves /loki/api/v1/query_range: log queries answer streams,
// metric queries a matrix.
func (a *API) queryRange(r *http.Request) (any, error) {
	if err := form(r); err != nil {
		return nil, err
	}
	start, end, err := timeRange(r, defaultQuerySince)
	if err != nil {
		return nil, err
	}
	if err := a.checkLength(start, end); err != nil {
		return nil, err
	}
	p, err := a.commonParams(r)
	if err != nil {
		return nil, err
	}
	p.Start, p.End = start, end
	if p.Step, err = parseStep(r, start, end); err != nil {
		return nil, err
	}
	var interval time.Duration
	if v := r.Form.Get("interval"); v != "" {
		if interval, err = parseDuration("interval", v); err != nil {
			return nil, err
		}
	}
	return a.exec(r, p, interval)
}

// query serves /loki/api/v1/query: an instant metric query at `time`.
func (a *API) query(r *http.Request) (any, error) {
	if err := form(r); err != nil {
		return nil, err
	}
	t, err := parseTime("time", r.Form.Get("time"), time.Now())
	if err != nil {
		return nil, err
	}
	p, err := a.commonParams(r)
	if err != nil {
		return nil, err
	}
	p.Start, p.End = t, t
	return a.exec(r, p, 0)
}

func (a *API) commonParams(r *http.Request) (logql.Params, error) {
	q := r.Form.Get("query")
	if q == "" {
		return logql.Params{}, errBadRequest("query parameter is required")
	}
	limit, err := a.parseLimit(r)
	if err != nil {
		return logql.Params{}, err
	}
	dir, err := parseDirection(r.Form.Get("direction"))
	if err != nil {
		return logql.Params{}, err
	}
	return logql.Params{Tenant: tenant(r), Query: q, Limit: limit, Direction: dir}, nil
}

func (a *API) exec(r *http.Request, p logql.Params, interval time.Duration) (any, error) {
	limit := p.Limit
	if interval > 0 {
		// Thinning happens after the engine: read as much as one query may.
		p.Limit = a.lim.MaxEntries
	}
	res, err := a.engine.Exec(r.Context(), p)
	if err != nil {
		return nil, err
	}
	data := queryData{ResultType: res.Type, Stats: newStats(res)}
	switch res.Type {
	case "streams":
		rows := res.Entries
		if interval > 0 {
			rows = thin(rows, p, interval, limit)
		}
		categorize := hasFlag(r.Header.Get(encodingFlagsHeader), "categorize-labels")
		if categorize {
			data.EncodingFlags = []string{"categorize-labels"}
		}
		data.Result = streamsJSON(rows, categorize)
	case "matrix":
		data.Result = matrixJSON(res.Matrix)
	case "vector":
		data.Result = vectorJSON(res.Vector)
	case "scalar":
		data.Result = sample(res.Scalar.T, res.Scalar.V)
	}
	return queryResponse{Status: "success", Data: data}, nil
}

func hasFlag(header, flag string) bool {
	for _, f := range strings.Split(header, ",") {
		if strings.TrimSpace(f) == flag {
			return true
		}
	}
	return false
}

// thin keeps entries at least interval apart (in the query's direction), as
// Loki's interval parameter does, then up to limit of them.
func thin(rows []logql.Row, p logql.Params, interval time.Duration, limit int) []logql.Row {
	out := rows[:0]
	var next int64
	for i, row := range rows {
		due := i == 0 || (p.Direction == logs.Forward && row.Timestamp >= next) ||
			(p.Direction == logs.Backward && row.Timestamp <= next)
		if !due {
			continue
		}
		out = append(out, row)
		if p.Direction == logs.Forward {
			next = row.Timestamp + int64(interval)
		} else {
			next = row.Timestamp - int64(interval)
		}
		if len(out) == limit {
			break
		}
	}
	return out
}

type streamJSON struct {
	Stream labels.Labels `json:"stream"`
	Values [][]any       `json:"values"`
}

type entryLabels struct {
	StructuredMetadata labels.Labels `json:"structuredMetadata,omitempty"`
	Parsed             labels.Labels `json:"parsed,omitempty"`
}

// streamsJSON groups rows by label set in order of first appearance; each
// stream keeps the rows' order (the query's direction).
func streamsJSON(rows []logql.Row, categorize bool) []streamJSON {
	out := []streamJSON{}
	index := map[string]int{}
	var key []byte
	for _, row := range rows {
		ls := row.Stream
		if !categorize {
			ls = row.All()
		}
		key = ls.Bytes(key[:0])
		i, ok := index[string(key)]
		if !ok {
			i = len(out)
			index[string(key)] = i
			out = append(out, streamJSON{Stream: ls})
		}
		v := []any{strconv.FormatInt(row.Timestamp, 10), row.Line}
		if categorize {
			v = append(v, entryLabels{StructuredMetadata: row.Metadata, Parsed: row.Parsed})
		}
		out[i].Values = append(out[i].Values, v)
	}
	return out
}

type seriesJSON struct {
	Metric labels.Labels `json:"metric"`
	Values [][2]any      `json:"values,omitempty"`
	Value  *[2]any       `json:"value,omitempty"`
}

// sample is one [<unix seconds>, "<value>"] pair, as Prometheus and Loki
// print them.
func sample(tMillis int64, v float64) [2]any {
	return [2]any{json.Number(strconv.FormatFloat(float64(tMillis)/1000, 'f', -1, 64)), logql.FormatValue(v)}
}

func matrixJSON(m promql.Matrix) []seriesJSON {
	out := make([]seriesJSON, 0, len(m))
	for _, s := range m {
		sj := seriesJSON{Metric: s.Metric, Values: make([][2]any, 0, len(s.Floats))}
		for _, p := range s.Floats {
			sj.Values = append(sj.Values, sample(p.T, p.F))
		}
		out = append(out, sj)
	}
	return out
}

func vectorJSON(v promql.Vector) []seriesJSON {
	out := make([]seriesJSON, 0, len(v))
	for _, s := range v {
		p := sample(s.T, s.F)
		out = append(out, seriesJSON{Metric: s.Metric, Value: &p})
	}
	return out
}

// statsJSON is the part of Loki's query statistics Grafana shows.
type statsJSON struct {
	Summary summaryStats `json:"summary"`
	Querier struct {
		Store storeStats `json:"store"`
	} `json:"querier"`
	Ingester struct {
		TotalReached       int        `json:"totalReached"`
		TotalChunksMatched int        `json:"totalChunksMatched"`
		TotalBatches       int        `json:"totalBatches"`
		TotalLinesSent     int        `json:"totalLinesSent"`
		Store              storeStats `json:"store"`
	} `json:"ingester"`
}

type summaryStats struct {
	BytesProcessedPerSecond int64   `json:"bytesProcessedPerSecond"`
	LinesProcessedPerSecond int64   `json:"linesProcessedPerSecond"`
	TotalBytesProcessed     int64   `json:"totalBytesProcessed"`
	TotalLinesProcessed     int64   `json:"totalLinesProcessed"`
	ExecTime                float64 `json:"execTime"`
	QueueTime               float64 `json:"queueTime"`
	Subqueries              int     `json:"subqueries"`
	TotalEntriesReturned    int     `json:"totalEntriesReturned"`
	Splits                  int     `json:"splits"`
	Shards                  int     `json:"shards"`
	TotalPostFilterLines    int64   `json:"totalPostFilterLines"`
}

type storeStats struct {
	TotalChunksRef        int64      `json:"totalChunksRef"`
	TotalChunksDownloaded int64      `json:"totalChunksDownloaded"`
	ChunksDownloadTime    float64    `json:"chunksDownloadTime"`
	Chunk                 chunkStats `json:"chunk"`
}

type chunkStats struct {
	HeadChunkBytes    int64 `json:"headChunkBytes"`
	HeadChunkLines    int64 `json:"headChunkLines"`
	DecompressedBytes int64 `json:"decompressedBytes"`
	DecompressedLines int64 `json:"decompressedLines"`
	CompressedBytes   int64 `json:"compressedBytes"`
	TotalDuplicates   int64 `json:"totalDuplicates"`
	PostFilterLines   int64 `json:"postFilterLines"`
}

func newStats(res *logql.Result) statsJSON {
	st := res.Stats
	var s statsJSON
	secs := st.ExecTime.Seconds()
	s.Summary = summaryStats{
		TotalBytesProcessed: st.BytesProcessed, TotalLinesProcessed: st.LinesProcessed,
		ExecTime: secs, Subqueries: 1, Splits: 1, Shards: 1,
		TotalPostFilterLines: st.PostFilter, TotalEntriesReturned: len(res.Entries),
	}
	if secs > 0 {
		s.Summary.BytesProcessedPerSecond = int64(float64(st.BytesProcessed) / secs)
		s.Summary.LinesProcessedPerSecond = int64(float64(st.LinesProcessed) / secs)
	}
	s.Querier.Store.Chunk = chunkStats{
		DecompressedBytes: st.BytesProcessed, DecompressedLines: st.LinesProcessed, PostFilterLines: st.PostFilter,
	}
	return s
}
