// Package profilesapi serves the Pyroscope query API (querier.v1 and settings.v1
// over connect) from a profiles.Store, as Grafana's Pyroscope datasource and the
// Explore Profiles app call it.
package profilesapi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	settingsv1 "github.com/grafana/pyroscope/api/gen/proto/go/settings/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/settings/v1/settingsv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/profiles"
)

// Option configures the handler.
type Option func(*querier)

// WithQueryMemory bounds the memory of each merge or series query to max
// bytes (profiles.query_max_memory_bytes), charged to shared, the budget of
// all running queries, and held until the answer is written.
func WithQueryMemory(max int64, shared *limits.Inflight) Option {
	return func(q *querier) { q.queryMaxBytes, q.queryMemory = max, shared }
}

// NewHandler serves /querier.v1.QuerierService/* and /settings.v1.SettingsService/*.
func NewHandler(store *profiles.Store, logger *slog.Logger, opts ...Option) http.Handler {
	mux := http.NewServeMux()
	q := &querier{store: store, logger: logger}
	for _, o := range opts {
		o(q)
	}
	path, h := querierv1connect.NewQuerierServiceHandler(q)
	mux.Handle(path, h)
	path, h = settingsv1connect.NewSettingsServiceHandler(settings{})
	mux.Handle(path, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t := r.Header.Get("X-Scope-OrgID"); t != "" {
			r = r.WithContext(pipeline.WithTenant(r.Context(), t))
		}
		if q.queryMaxBytes > 0 {
			mem := limits.NewQueryMemory(q.queryMaxBytes, "profiles.query_max_memory_bytes", q.queryMemory)
			defer mem.Release() // once the answer is written
			r = r.WithContext(context.WithValue(r.Context(), queryMemoryKey{}, mem))
		}
		// Grafana datasources pointed at https://host/pyroscope call the same
		// procedures under that prefix.
		if p, ok := strings.CutPrefix(r.URL.Path, "/pyroscope/"); ok {
			r = r.Clone(r.Context())
			r.URL.Path = "/" + p
			r.URL.RawPath = ""
		}
		mux.ServeHTTP(w, r)
	})
}

type querier struct {
	querierv1connect.UnimplementedQuerierServiceHandler
	store         *profiles.Store
	logger        *slog.Logger
	queryMaxBytes int64
	queryMemory   *limits.Inflight
}

// queryMemoryKey holds the request's *limits.QueryMemory in its context.
type queryMemoryKey struct{}

func queryMemory(ctx context.Context) *limits.QueryMemory {
	m, _ := ctx.Value(queryMemoryKey{}).(*limits.QueryMemory)
	return m
}

// queryError gives a merge or series query's failure the code Pyroscope's
// clients act on: a query past its memory bound must be narrowed
// (invalid_argument), one that finds the shared budget spent may retry
// (resource_exhausted), one past profiles.query_timeout is deadline_exceeded.
func queryError(what string, err error) error {
	switch {
	case errors.Is(err, limits.ErrQueryMemory):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, limits.ErrQueriesBusy):
		return connect.NewError(connect.CodeResourceExhausted, err)
	case errors.Is(err, profiles.ErrQueryTimeout):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// timeRange converts the API's Unix milliseconds to inclusive nanoseconds; an
// empty range means all time.
func timeRange(start, end int64) (int64, int64) {
	if start == 0 && end == 0 {
		return 0, 1<<63 - 1
	}
	return msToNanos(start), msToNanos(end) + 999_999
}

// maxMillis is the last millisecond whose last nanosecond fits int64 (2262).
const maxMillis int64 = (math.MaxInt64 - 999_999) / 1_000_000

// msToNanos converts Unix milliseconds to nanoseconds, clamped to what int64
// holds: a far-future end or a very negative start would otherwise wrap to
// the opposite end of time and select nothing, or everything.
func msToNanos(ms int64) int64 {
	return min(max(ms, -maxMillis), maxMillis) * 1e6
}

func invalid(format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(format, args...))
}

// selector builds a store selector from the common request fields.
func selector(ctx context.Context, typeID, labelSelector string, start, end int64) (profiles.Selector, error) {
	ms, err := profiles.ParseSelector(labelSelector)
	if err != nil {
		return profiles.Selector{}, invalid("%v", err)
	}
	if typeID != "" {
		if _, err := profiles.ParseProfileType(typeID); err != nil {
			return profiles.Selector{}, invalid("%v", err)
		}
	}
	s, e := timeRange(start, end)
	return profiles.Selector{Tenant: pipeline.Tenant(ctx), Start: s, End: e, TypeID: typeID, Matchers: ms}, nil
}

// selectors returns one selector per matcher string (results are their union); no
// matchers select everything.
func selectors(ctx context.Context, matchers []string, start, end int64) ([]profiles.Selector, error) {
	if len(matchers) == 0 {
		matchers = []string{""}
	}
	out := make([]profiles.Selector, 0, len(matchers))
	for _, m := range matchers {
		sel, err := selector(ctx, "", m, start, end)
		if err != nil {
			return nil, err
		}
		out = append(out, sel)
	}
	return out, nil
}

func (q *querier) ProfileTypes(ctx context.Context, req *connect.Request[querierv1.ProfileTypesRequest]) (*connect.Response[querierv1.ProfileTypesResponse], error) {
	sel, err := selector(ctx, "", "", req.Msg.Start, req.Msg.End)
	if err != nil {
		return nil, err
	}
	resp := &querierv1.ProfileTypesResponse{}
	for _, pt := range q.store.ProfileTypes(sel) {
		resp.ProfileTypes = append(resp.ProfileTypes, &typesv1.ProfileType{
			ID: pt.ID(), Name: pt.Name, SampleType: pt.SampleType, SampleUnit: pt.SampleUnit,
			PeriodType: pt.PeriodType, PeriodUnit: pt.PeriodUnit,
		})
	}
	return connect.NewResponse(resp), nil
}

func (q *querier) LabelNames(ctx context.Context, req *connect.Request[typesv1.LabelNamesRequest]) (*connect.Response[typesv1.LabelNamesResponse], error) {
	sels, err := selectors(ctx, req.Msg.Matchers, req.Msg.Start, req.Msg.End)
	if err != nil {
		return nil, err
	}
	set := map[string]struct{}{}
	for _, sel := range sels {
		for _, n := range q.store.LabelNames(sel) {
			set[n] = struct{}{}
		}
	}
	return connect.NewResponse(&typesv1.LabelNamesResponse{Names: sorted(set)}), nil
}

func (q *querier) LabelValues(ctx context.Context, req *connect.Request[typesv1.LabelValuesRequest]) (*connect.Response[typesv1.LabelValuesResponse], error) {
	if req.Msg.Name == "" {
		return nil, invalid("name: missing label name")
	}
	sels, err := selectors(ctx, req.Msg.Matchers, req.Msg.Start, req.Msg.End)
	if err != nil {
		return nil, err
	}
	set := map[string]struct{}{}
	for _, sel := range sels {
		for _, v := range q.store.LabelValues(sel, req.Msg.Name) {
			set[v] = struct{}{}
		}
	}
	return connect.NewResponse(&typesv1.LabelValuesResponse{Names: sorted(set)}), nil
}

func (q *querier) Series(ctx context.Context, req *connect.Request[querierv1.SeriesRequest]) (*connect.Response[querierv1.SeriesResponse], error) {
	sels, err := selectors(ctx, req.Msg.Matchers, req.Msg.Start, req.Msg.End)
	if err != nil {
		return nil, err
	}
	seen := map[uint64]bool{}
	resp := &querierv1.SeriesResponse{}
	for _, sel := range sels {
		for _, ls := range q.store.Series(sel, req.Msg.LabelNames) {
			if seen[ls.Hash()] {
				continue
			}
			seen[ls.Hash()] = true
			resp.LabelsSet = append(resp.LabelsSet, &typesv1.Labels{Labels: labelPairs(ls)})
		}
	}
	return connect.NewResponse(resp), nil
}

// maxNodes applies Pyroscope's defaults and limits to a request's max_nodes.
func maxNodes(n *int64) (int64, error) {
	if n == nil || *n == 0 {
		return profiles.DefaultMaxNodes, nil
	}
	if *n < 0 || *n > profiles.MaxMaxNodes {
		return 0, invalid("max_nodes: %d is outside 1..%d", *n, profiles.MaxMaxNodes)
	}
	return *n, nil
}

// filter builds the span/trace/call-site sample filter; nil when none is given.
func filter(spans, traces []string, sts *typesv1.StackTraceSelector) (*profiles.SampleFilter, error) {
	var site []string
	if sts != nil {
		for _, l := range sts.CallSite {
			site = append(site, l.GetName())
		}
	}
	if len(spans) == 0 && len(traces) == 0 && len(site) == 0 {
		return nil, nil
	}
	f := &profiles.SampleFilter{SpanIDs: map[uint64]struct{}{}, TraceIDs: map[string]struct{}{}, CallSite: site}
	for _, s := range spans {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != 8 {
			return nil, invalid("span_selector: %q is not a 16-digit hex span ID", s)
		}
		var id uint64
		for _, x := range b {
			id = id<<8 | uint64(x)
		}
		f.SpanIDs[id] = struct{}{}
	}
	for _, t := range traces {
		f.TraceIDs[strings.ToLower(t)] = struct{}{}
	}
	return f, nil
}

func (q *querier) mergeTree(ctx context.Context, typeID, labelSelector string, start, end int64, f *profiles.SampleFilter) (*profiles.Tree, profiles.ProfileType, error) {
	pt, err := profiles.ParseProfileType(typeID)
	if err != nil {
		return nil, pt, invalid("profile_typeID: %v", err)
	}
	sel, err := selector(ctx, typeID, labelSelector, start, end)
	if err != nil {
		return nil, pt, err
	}
	sel.Memory = queryMemory(ctx)
	tree, err := q.store.MergeTree(ctx, sel, f)
	if err != nil {
		return nil, pt, queryError("merge profiles", err)
	}
	return tree, pt, nil
}

func (q *querier) SelectMergeStacktraces(ctx context.Context, req *connect.Request[querierv1.SelectMergeStacktracesRequest]) (*connect.Response[querierv1.SelectMergeStacktracesResponse], error) {
	m := req.Msg
	n, err := maxNodes(m.MaxNodes)
	if err != nil {
		return nil, err
	}
	f, err := filter(m.SpanSelector, m.TraceIdSelector, m.StackTraceSelector)
	if err != nil {
		return nil, err
	}
	tree, pt, err := q.mergeTree(ctx, m.ProfileTypeID, m.LabelSelector, m.Start, m.End, f)
	if err != nil {
		return nil, err
	}
	resp := &querierv1.SelectMergeStacktracesResponse{}
	if m.Format == querierv1.ProfileFormat_PROFILE_FORMAT_PPROF {
		s, e := timeRange(m.Start, m.End)
		resp.Pprof = &querierv1.PprofProfile{Profile: tree.Pprof(pt, s, e)}
	} else {
		resp.Flamegraph = tree.FlameGraph(n)
	}
	return connect.NewResponse(resp), nil
}

func (q *querier) SelectMergeSpanProfile(ctx context.Context, req *connect.Request[querierv1.SelectMergeSpanProfileRequest]) (*connect.Response[querierv1.SelectMergeSpanProfileResponse], error) {
	m := req.Msg
	n, err := maxNodes(m.MaxNodes)
	if err != nil {
		return nil, err
	}
	f, err := filter(m.SpanSelector, nil, nil)
	if err != nil {
		return nil, err
	}
	if f == nil {
		// An empty span selector must not silently return every sample.
		return nil, invalid("span_selector: at least one span ID is required")
	}
	tree, _, err := q.mergeTree(ctx, m.ProfileTypeID, m.LabelSelector, m.Start, m.End, f)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&querierv1.SelectMergeSpanProfileResponse{Flamegraph: tree.FlameGraph(n)}), nil
}

func (q *querier) SelectMergeProfile(ctx context.Context, req *connect.Request[querierv1.SelectMergeProfileRequest]) (*connect.Response[googlev1.Profile], error) {
	m := req.Msg
	f, err := filter(nil, m.TraceIdSelector, m.StackTraceSelector)
	if err != nil {
		return nil, err
	}
	tree, pt, err := q.mergeTree(ctx, m.ProfileTypeID, m.LabelSelector, m.Start, m.End, f)
	if err != nil {
		return nil, err
	}
	s, e := timeRange(m.Start, m.End)
	return connect.NewResponse(tree.Pprof(pt, s, e)), nil
}

func (q *querier) SelectSeries(ctx context.Context, req *connect.Request[querierv1.SelectSeriesRequest]) (*connect.Response[querierv1.SelectSeriesResponse], error) {
	m := req.Msg
	if m.Step <= 0 {
		return nil, invalid("step: must be a positive number of seconds")
	}
	if _, err := profiles.ParseProfileType(m.ProfileTypeID); err != nil {
		return nil, invalid("profile_typeID: %v", err)
	}
	sel, err := selector(ctx, m.ProfileTypeID, m.LabelSelector, m.Start, m.End)
	if err != nil {
		return nil, err
	}
	agg := profiles.AggregateSum
	if m.Aggregation != nil && *m.Aggregation == typesv1.TimeSeriesAggregationType_TIME_SERIES_AGGREGATION_TYPE_AVERAGE {
		agg = profiles.AggregateAvg
	}
	if !(m.Step > 0) { // NaN too
		return nil, invalid("step: %v must be a positive number of seconds", m.Step)
	}
	// A step past int64 nanoseconds is one bucket for all time.
	step := int64(math.MaxInt64)
	if m.Step < math.MaxInt64/1e9 {
		step = int64(m.Step * 1e9)
	}
	// Align buckets to whole steps from the request start, in milliseconds.
	sel.Start = msToNanos(m.Start)
	sel.Memory = queryMemory(ctx)
	series, err := q.store.SelectSeries(ctx, sel, step, m.GroupBy, agg)
	if err != nil {
		return nil, queryError("select series", err)
	}
	if m.Limit != nil && *m.Limit > 0 && int64(len(series)) > *m.Limit {
		series = topSeries(series, int(*m.Limit))
	}
	resp := &querierv1.SelectSeriesResponse{}
	for _, s := range series {
		out := &typesv1.Series{Labels: labelPairs(s.Labels)}
		for _, p := range s.Points {
			out.Points = append(out.Points, &typesv1.Point{Timestamp: p.T / 1e6, Value: p.V})
		}
		resp.Series = append(resp.Series, out)
	}
	return connect.NewResponse(resp), nil
}

func (q *querier) Diff(ctx context.Context, req *connect.Request[querierv1.DiffRequest]) (*connect.Response[querierv1.DiffResponse], error) {
	l, r := req.Msg.Left, req.Msg.Right
	if l == nil || r == nil {
		return nil, invalid("left and right are required")
	}
	n, err := maxNodes(r.MaxNodes)
	if err != nil {
		return nil, err
	}
	lf, err := filter(nil, nil, l.StackTraceSelector)
	if err != nil {
		return nil, err
	}
	rf, err := filter(nil, nil, r.StackTraceSelector)
	if err != nil {
		return nil, err
	}
	lt, _, err := q.mergeTree(ctx, l.ProfileTypeID, l.LabelSelector, l.Start, l.End, lf)
	if err != nil {
		return nil, err
	}
	rt, _, err := q.mergeTree(ctx, r.ProfileTypeID, r.LabelSelector, r.Start, r.End, rf)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&querierv1.DiffResponse{Flamegraph: profiles.Diff(lt, rt, n)}), nil
}

// GetProfileStats tells the Explore Profiles app whether any data arrived yet.
func (q *querier) GetProfileStats(ctx context.Context, _ *connect.Request[typesv1.GetProfileStatsRequest]) (*connect.Response[typesv1.GetProfileStatsResponse], error) {
	ok, oldest, newest := q.store.Stats(pipeline.Tenant(ctx))
	resp := &typesv1.GetProfileStatsResponse{DataIngested: ok}
	if ok {
		resp.OldestProfileTime, resp.NewestProfileTime = oldest/1e6, newest/1e6
	}
	return connect.NewResponse(resp), nil
}

func labelPairs(ls labels.Labels) []*typesv1.LabelPair {
	out := make([]*typesv1.LabelPair, 0, ls.Len())
	ls.Range(func(l labels.Label) { out = append(out, &typesv1.LabelPair{Name: l.Name, Value: l.Value}) })
	return out
}

func sorted(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slicesSort(out)
	return out
}

// settings answers the Explore Profiles app's settings calls: Vispyr has no
// tenant settings, so Get returns none and Set/Delete are refused.
type settings struct {
	settingsv1connect.UnimplementedSettingsServiceHandler
}

func (settings) Get(context.Context, *connect.Request[settingsv1.GetSettingsRequest]) (*connect.Response[settingsv1.GetSettingsResponse], error) {
	return connect.NewResponse(&settingsv1.GetSettingsResponse{}), nil
}
