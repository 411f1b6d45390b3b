package logql

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/vispyr/vispyr/internal/logs"
)

// ErrLogInstant is Loki's answer to a log query sent as an instant query.
var ErrLogInstant = errors.New("log queries are not supported as an instant query type, please change your query to a range query type")

// Engine evaluates LogQL over a logs.Querier.
type Engine struct {
	q    logs.Querier
	opts Options
}

// Options bound query work; zero values take Loki's defaults.
type Options struct {
	// MaxSeries caps the series a metric query returns (Loki's max_query_series).
	MaxSeries int
	// MaxPoints caps series × steps of a range query, so one query cannot take
	// the process's memory.
	MaxPoints int
}

// NewEngine returns an engine reading q.
func NewEngine(q logs.Querier, opts Options) *Engine {
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = 500
	}
	if opts.MaxPoints <= 0 {
		opts.MaxPoints = 11000 * 500
	}
	return &Engine{q: q, opts: opts}
}

// Params describe one query. Times are inclusive for metric steps; log
// queries read [Start, End).
type Params struct {
	Tenant     string
	Query      string
	Start, End time.Time
	Step       time.Duration // 0 for an instant query
	Limit      int           // log queries: entries returned
	Direction  logs.Direction
}

// Instant reports whether p is an instant query.
func (p Params) Instant() bool { return p.Step == 0 }

// Result is a query's answer. Exactly one of Entries, Matrix, Vector or
// Scalar is set, as Type says ("streams", "matrix", "vector", "scalar").
type Result struct {
	Type    string
	Entries []Row
	Matrix  promql.Matrix
	Vector  promql.Vector
	Scalar  promql.Scalar
	Stats   Stats
}

// Row is one log line of a log query's answer with its labels by category.
type Row struct {
	Stream    labels.Labels // the stream's own labels (possibly changed by label_format/drop)
	Metadata  labels.Labels // structured metadata
	Parsed    labels.Labels // labels parsers and label_format added
	Timestamp int64
	Line      string
}

// All returns the row's labels of every category, as Loki's default
// (uncategorized) response keys streams.
func (r Row) All() labels.Labels {
	b := labels.NewBuilder(r.Stream)
	r.Metadata.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
	r.Parsed.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
	return b.Labels()
}

// Stats is what a query read, for Loki's stats object.
type Stats struct {
	LinesProcessed int64
	BytesProcessed int64
	PostFilter     int64
	ExecTime       time.Duration
}

// Exec parses and evaluates a query.
func (e *Engine) Exec(ctx context.Context, p Params) (*Result, error) {
	started := time.Now()
	expr, err := ParseExpr(p.Query)
	if err != nil {
		return nil, err
	}
	var res *Result
	switch x := expr.(type) {
	case *LogExpr:
		if p.Instant() {
			return nil, ErrLogInstant
		}
		res, err = e.execLog(ctx, p, x)
	case SampleExpr:
		res, err = e.execSample(ctx, p, x)
	}
	if err != nil {
		return nil, err
	}
	res.Stats.ExecTime = time.Since(started)
	return res, nil
}

func (e *Engine) execLog(ctx context.Context, p Params, x *LogExpr) (*Result, error) {
	pl, err := newPipeline(x.Stages)
	if err != nil {
		return nil, err
	}
	sp := logs.SelectParams{
		Matchers: x.Matchers, Start: p.Start.UnixNano(), End: p.End.UnixNano(),
		Direction: p.Direction, LineFilters: pl.pushed,
	}
	if pl.noop {
		sp.Limit = p.Limit
	}
	it, err := e.q.Select(ctx, p.Tenant, sp)
	if err != nil {
		return nil, fmt.Errorf("select: %w", err)
	}
	defer it.Close()
	res := &Result{Type: "streams"}
	for it.Next() {
		if p.Limit > 0 && len(res.Entries) >= p.Limit {
			break
		}
		if len(res.Entries)%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		stream, ent := it.At()
		res.Stats.LinesProcessed++
		res.Stats.BytesProcessed += int64(len(ent.Line))
		if pl.noop {
			res.Entries = append(res.Entries, Row{Stream: stream, Metadata: ent.Metadata, Timestamp: ent.Timestamp, Line: ent.Line})
			continue
		}
		st, ok := pl.process(stream, ent)
		if !ok {
			continue
		}
		res.Entries = append(res.Entries, Row{
			Stream: st.labels.labels(int(CatStream)), Metadata: st.labels.labels(int(CatMetadata)),
			Parsed: st.labels.labels(int(CatParsed)), Timestamp: st.ts, Line: st.line,
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read entries: %w", err)
	}
	res.Stats.PostFilter = int64(len(res.Entries))
	return res, nil
}

// steps lists the evaluation timestamps (Unix ms) of a metric query.
func steps(p Params) []int64 {
	if p.Instant() {
		return []int64{p.End.UnixMilli()}
	}
	var out []int64
	for t := p.Start; !t.After(p.End); t = t.Add(p.Step) {
		out = append(out, t.UnixMilli())
	}
	return out
}

func (e *Engine) execSample(ctx context.Context, p Params, x SampleExpr) (*Result, error) {
	if !p.Instant() && p.Step <= 0 {
		return nil, errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	ev := &evaluator{e: e, ctx: ctx, p: p, ts: steps(p)}
	if len(ev.ts) > 11000 {
		return nil, errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
	}
	m, err := ev.eval(x)
	if err != nil {
		return nil, err
	}
	res := &Result{Stats: ev.stats}
	m.series = mergeSame(m.series)
	if m.scalar {
		if p.Instant() {
			res.Type = "scalar"
			res.Scalar = promql.Scalar{T: ev.ts[0], V: m.series[0].vals[0]}
			return res, nil
		}
	}
	if len(m.series) > e.opts.MaxSeries {
		return nil, fmt.Errorf("maximum number of series (%d) reached for a single query; consider reducing query cardinality by adding more filters or aggregations", e.opts.MaxSeries)
	}
	if p.Instant() {
		res.Type = "vector"
		res.Vector = promql.Vector{}
		for _, s := range m.series {
			if s.ok[0] {
				res.Vector = append(res.Vector, promql.Sample{Metric: s.labels, T: ev.ts[0], F: s.vals[0]})
			}
		}
		if !m.sorted {
			sort.Slice(res.Vector, func(i, j int) bool {
				return labels.Compare(res.Vector[i].Metric, res.Vector[j].Metric) < 0
			})
		}
		return res, nil
	}
	res.Type = "matrix"
	res.Matrix = promql.Matrix{}
	for _, s := range m.series {
		var pts []promql.FPoint
		for i, ok := range s.ok {
			if ok {
				pts = append(pts, promql.FPoint{T: ev.ts[i], F: s.vals[i]})
			}
		}
		if len(pts) > 0 {
			res.Matrix = append(res.Matrix, promql.Series{Metric: s.labels, Floats: pts})
		}
	}
	sort.Sort(res.Matrix)
	return res, nil
}

// mergeSame joins series with identical labels (as `x or vector(0)` makes),
// the first one's value winning at a step both have.
func mergeSame(ss []*stepSeries) []*stepSeries {
	seen := make(map[string]*stepSeries, len(ss))
	out := ss[:0]
	for _, s := range ss {
		k := string(s.labels.Bytes(nil))
		prev := seen[k]
		if prev == nil {
			seen[k] = s
			out = append(out, s)
			continue
		}
		for i, ok := range s.ok {
			if ok && !prev.ok[i] {
				prev.vals[i], prev.ok[i] = s.vals[i], true
			}
		}
	}
	return out
}
