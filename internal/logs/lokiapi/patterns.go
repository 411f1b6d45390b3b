package lokiapi

import (
	"net/http"
	"slices"
	"strings"
	"unicode"
)

// maxPatterns caps the patterns one answer lists, the most frequent first.
const maxPatterns = 200

type patternJSON struct {
	Pattern string     `json:"pattern"`
	Samples [][2]int64 `json:"samples"`
	Level   string     `json:"level,omitempty"`
	total   int64      // lines, for ordering
	buckets map[int64]int64
	levels  map[string]int
	tokens  [][]string // the lines' tokens, to build the pattern
}

// patterns serves /loki/api/v1/patterns: the query's recent lines grouped
// into patterns in LogQL's pattern syntax (`<_>` where lines differ), each
// with its line count per step.
//
// Lines group by their shape: the same number of whitespace-separated tokens,
// equal wherever a token holds no digit. Within a group a token kept by
// every line stays literal, a key=value token whose key is shared keeps the
// key, anything else becomes <_>.
func (a *API) patterns(r *http.Request) (any, error) {
	if r.Form == nil {
		if err := form(r); err != nil {
			return nil, err
		}
	}
	if r.Form.Get("line_limit") == "" {
		r.Form.Set("line_limit", "5000")
	}
	rows, start, end, err := a.sampleRows(r)
	if err != nil {
		return nil, err
	}
	step, err := parseStep(r, start, end)
	if err != nil {
		return nil, err
	}
	groups := map[string]*patternJSON{}
	for _, row := range rows {
		toks := strings.Fields(row.Line)
		k := shapeKey(toks)
		g := groups[k]
		if g == nil {
			g = &patternJSON{buckets: map[int64]int64{}, levels: map[string]int{}}
			groups[k] = g
		}
		g.total++
		t := start.UnixNano() + (row.Timestamp-start.UnixNano())/int64(step)*int64(step)
		g.buckets[t/1e9]++
		if len(g.tokens) < 64 { // enough lines to tell fixed tokens from varying ones
			g.tokens = append(g.tokens, toks)
		}
		if lvl := row.Metadata.Get("detected_level"); lvl != "" {
			g.levels[lvl]++
		} else if lvl := row.Stream.Get("detected_level"); lvl != "" {
			g.levels[lvl]++
		}
	}
	out := make([]*patternJSON, 0, len(groups))
	for _, g := range groups {
		g.Pattern = buildPattern(g.tokens)
		for t, n := range g.buckets {
			g.Samples = append(g.Samples, [2]int64{t, n})
		}
		slices.SortFunc(g.Samples, func(a, b [2]int64) int { return int(a[0] - b[0]) })
		best := 0
		for lvl, n := range g.levels {
			if n > best || (n == best && lvl < g.Level) {
				g.Level, best = lvl, n
			}
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *patternJSON) int {
		if a.total != b.total {
			return int(b.total - a.total)
		}
		return strings.Compare(a.Pattern, b.Pattern)
	})
	if len(out) > maxPatterns {
		out = out[:maxPatterns]
	}
	return dataResponse{"success", out}, nil
}

// shapeKey is a line's group: its tokens with those holding a digit blanked.
func shapeKey(toks []string) string {
	var b strings.Builder
	for _, t := range toks {
		if strings.IndexFunc(t, unicode.IsDigit) >= 0 {
			if k, _, ok := strings.Cut(t, "="); ok && strings.IndexFunc(k, unicode.IsDigit) < 0 {
				b.WriteString(k)
				b.WriteString("=")
			}
			b.WriteString("\x00")
		} else {
			b.WriteString(t)
		}
		b.WriteByte(' ')
	}
	return b.String()
}

// buildPattern keeps the tokens all lines share and writes <_> for the rest.
func buildPattern(lines [][]string) string {
	if len(lines) == 0 {
		return ""
	}
	out := make([]string, len(lines[0]))
	for i, t := range lines[0] {
		same := true
		for _, l := range lines[1:] {
			if l[i] != t {
				same = false
				break
			}
		}
		switch {
		case same && !(len(lines) == 1 && strings.IndexFunc(t, unicode.IsDigit) >= 0):
			out[i] = t
		case sharedKey(lines, i) != "":
			out[i] = sharedKey(lines, i) + "=<_>"
		default:
			out[i] = "<_>"
		}
	}
	return strings.Join(out, " ")
}

// sharedKey is the key of position i's key=value tokens when every line has
// the same one.
func sharedKey(lines [][]string, i int) string {
	k, _, ok := strings.Cut(lines[0][i], "=")
	if !ok || k == "" {
		return ""
	}
	for _, l := range lines[1:] {
		if k2, _, ok := strings.Cut(l[i], "="); !ok || k2 != k {
			return ""
		}
	}
	return k
}
