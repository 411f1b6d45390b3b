package tempoapi

import (
	"net/http"
	"net/url"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/vispyr/vispyr/internal/traceql"
	"github.com/vispyr/vispyr/internal/traces"
	"github.com/vispyr/vispyr/internal/traces/block"
)

// intrinsics are the built-in fields Tempo lists under the "intrinsic" scope.
var intrinsics = []string{
	"duration", "event:name", "event:timeSinceStart", "instrumentation:name", "instrumentation:version",
	"kind", "link:spanID", "link:traceID", "name", "rootName", "rootServiceName", "span:duration",
	"span:id", "span:kind", "span:name", "span:parentID", "span:status", "span:statusMessage",
	"status", "statusMessage", "trace:duration", "trace:id", "trace:rootName", "trace:rootService", "traceDuration",
}

type tagSets struct {
	span, resource map[string]bool
}

func (a *api) collectTags(r *http.Request) (tagSets, error) {
	start, end, err := timeRange(r)
	if err != nil {
		return tagSets{}, err
	}
	ts := tagSets{span: map[string]bool{}, resource: map[string]bool{}}
	for _, s := range a.store.Summaries(r.Context(), tenant(r), start, end) {
		for k := range s.SpanTags {
			ts.span[k] = true
		}
		for k := range s.ResourceTags {
			ts.resource[k] = true
		}
	}
	return ts, nil
}

func sortedKeys(m map[string]bool, limit int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// tagsV1 answers {"tagNames":[...]}: attribute keys of any scope.
func (a *api) tagsV1(w http.ResponseWriter, r *http.Request) {
	ts, err := a.collectTags(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	limit, err := intParam(r, "limit", 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	all := map[string]bool{}
	for k := range ts.span {
		all[k] = true
	}
	for k := range ts.resource {
		all[k] = true
	}
	writeJSON(w, map[string][]string{"tagNames": sortedKeys(all, limit)})
}

type scopeTags struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// tagsV2 answers {"scopes":[{"name","tags"}]} for the scope parameter (all by default).
func (a *api) tagsV2(w http.ResponseWriter, r *http.Request) {
	ts, err := a.collectTags(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	limit, err := intParam(r, "limit", 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	scope := r.URL.Query().Get("scope")
	switch scope {
	case "", "all", "none", "resource", "span", "intrinsic", "event", "link", "instrumentation":
	default:
		a.fail(w, r, badf("invalid scope %q: want resource, span, intrinsic, event, link, instrumentation or none", scope))
		return
	}
	want := func(s string) bool { return scope == "" || scope == "all" || scope == "none" || scope == s }
	scopes := []scopeTags{}
	if want("resource") {
		scopes = append(scopes, scopeTags{"resource", sortedKeys(ts.resource, limit)})
	}
	if want("span") {
		scopes = append(scopes, scopeTags{"span", sortedKeys(ts.span, limit)})
	}
	if want("intrinsic") && scope != "none" {
		scopes = append(scopes, scopeTags{"intrinsic", intrinsics})
	}
	writeJSON(w, map[string][]scopeTags{"scopes": scopes})
}

type typedValue struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// tagValuesV1 answers {"tagValues":["..."]} for an unscoped attribute name.
func (a *api) tagValuesV1(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	vals, err := a.tagValues(r, traceql.ScopedKey{Key: tag}, "")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		out = append(out, v.Value)
	}
	writeJSON(w, map[string][]string{"tagValues": out})
}

// tagValuesV2 answers {"tagValues":[{"type","value"}]} for a scoped attribute or an
// intrinsic. Grafana encodes the tag twice, so it is unescaped once more here.
func (a *api) tagValuesV2(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	if u, err := url.PathUnescape(tag); err == nil {
		tag = u
	}
	var vals []typedValue
	var err error
	switch tag {
	case "status", "span:status":
		vals = []typedValue{{"keyword", "error"}, {"keyword", "ok"}, {"keyword", "unset"}}
	case "kind", "span:kind":
		for _, k := range []string{"unspecified", "internal", "server", "client", "producer", "consumer"} {
			vals = append(vals, typedValue{"keyword", k})
		}
	case "name", "span:name", "rootName", "trace:rootName":
		vals, err = a.tagValues(r, traceql.ScopedKey{Scope: "intrinsic", Key: "name"}, r.URL.Query().Get("q"))
	case "rootServiceName", "trace:rootService":
		vals, err = a.tagValues(r, traceql.ScopedKey{Scope: "resource", Key: "service.name"}, r.URL.Query().Get("q"))
	default:
		k, perr := parseScopedTag(tag)
		if perr != nil {
			a.fail(w, r, perr)
			return
		}
		vals, err = a.tagValues(r, k, r.URL.Query().Get("q"))
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, map[string][]typedValue{"tagValues": vals})
}

func parseScopedTag(tag string) (traceql.ScopedKey, error) {
	for _, s := range []string{"resource", "span", "event", "link", "instrumentation"} {
		if k, ok := strings.CutPrefix(tag, s+"."); ok && k != "" {
			return traceql.ScopedKey{Scope: s, Key: k}, nil
		}
	}
	if k, ok := strings.CutPrefix(tag, "."); ok && k != "" {
		return traceql.ScopedKey{Key: k}, nil
	}
	return traceql.ScopedKey{}, badf("invalid tag %q: want scope.name (resource., span., .) or an intrinsic", tag)
}

// tagValues lists the values of one attribute (or, with Scope "intrinsic", span
// names). Without a query they come from block summaries; with a query other than
// {} from the spans the query matches.
func (a *api) tagValues(r *http.Request, k traceql.ScopedKey, q string) ([]typedValue, error) {
	limit, err := intParam(r, "limit", 1000)
	if err != nil {
		return nil, err
	}
	if q = strings.TrimSpace(q); q != "" && strings.ReplaceAll(q, " ", "") != "{}" {
		return a.tagValuesMatching(r, k, q, limit)
	}
	start, end, err := timeRange(r)
	if err != nil {
		return nil, err
	}
	seen := map[typedValue]bool{}
	var out []typedValue
	add := func(v typedValue) {
		if !seen[v] && len(out) < limit {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, s := range a.store.Summaries(r.Context(), tenant(r), start, end) {
		if k.Scope == "intrinsic" {
			for _, n := range s.SpanNames {
				add(typedValue{"string", n})
			}
			continue
		}
		for _, m := range scopeMaps(s, k.Scope) {
			if tv := m[k.Key]; tv != nil {
				for _, v := range tv.Values {
					add(typedValue{v.Type, v.Value})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Value < out[j].Value })
	return out, nil
}

func scopeMaps(s block.Summary, scope string) []map[string]*block.TagValues {
	switch scope {
	case "span":
		return []map[string]*block.TagValues{s.SpanTags}
	case "resource":
		return []map[string]*block.TagValues{s.ResourceTags}
	case "":
		return []map[string]*block.TagValues{s.SpanTags, s.ResourceTags}
	}
	return nil
}

// tagValuesMatching collects the attribute's values from spans matching q.
func (a *api) tagValuesMatching(r *http.Request, k traceql.ScopedKey, q string, limit int) ([]typedValue, error) {
	// Grafana sends the query being typed: parse it leniently, as Tempo does.
	query, err := traceql.ParseLenient(q)
	if err != nil {
		return nil, badf("invalid TraceQL query: %v", err)
	}
	start, end, err := timeRange(r)
	if err != nil {
		return nil, err
	}
	matches, _, err := a.store.Search(r.Context(), traces.SearchRequest{
		Tenant: tenant(r), Query: query, Start: start, End: end, Limit: 500,
	})
	if err != nil {
		return nil, err
	}
	seen := map[typedValue]bool{}
	out := []typedValue{}
	for _, m := range matches {
		for _, set := range m.Spansets {
			for _, ms := range set.Spans {
				var cands []typedValue
				switch k.Scope {
				case "intrinsic":
					cands = append(cands, typedValue{"string", ms.Span.Name()})
				case "span", "resource", "":
					if k.Scope != "resource" {
						if v, ok := ms.Span.Attributes().Get(k.Key); ok {
							cands = append(cands, typed(v))
						}
					}
					if k.Scope != "span" {
						if v, ok := ms.Resource.Attributes().Get(k.Key); ok {
							cands = append(cands, typed(v))
						}
					}
				}
				for _, c := range cands {
					if !seen[c] && len(out) < limit {
						seen[c] = true
						out = append(out, c)
					}
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Value < out[j].Value })
	return out, nil
}

func typed(v pcommonValue) typedValue {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return typedValue{"int", v.AsString()}
	case pcommon.ValueTypeDouble:
		return typedValue{"float", v.AsString()}
	case pcommon.ValueTypeBool:
		return typedValue{"bool", v.AsString()}
	default:
		return typedValue{"string", v.AsString()}
	}
}

type pcommonValue = pcommon.Value
