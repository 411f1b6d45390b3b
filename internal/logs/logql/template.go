package logql

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/grafana/regexp"
)

// lineTemplate is a line_format / label_format template. Templates see the
// labels as fields (`{{.level}}`) and get Loki's template functions;
// `__line__` and `__timestamp__` read the current line.
type lineTemplate struct {
	t   *template.Template
	cur *lineState
	buf bytes.Buffer
}

func newTemplate(text string) (*lineTemplate, error) {
	lt := &lineTemplate{}
	funcs := template.FuncMap{
		"__line__":      func() string { return lt.cur.line },
		"__timestamp__": func() time.Time { return time.Unix(0, lt.cur.ts) },
	}
	for k, v := range templateFuncs {
		funcs[k] = v
	}
	t, err := template.New("line").Option("missingkey=zero").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("invalid line template: %w", err)
	}
	lt.t = t
	return lt, nil
}

func (lt *lineTemplate) exec(l *lineState) (string, error) {
	lt.cur = l
	lt.buf.Reset()
	if err := lt.t.Execute(&lt.buf, l.labels.asMap()); err != nil {
		return "", err
	}
	return lt.buf.String(), nil
}

// maxTemplateOutput bounds what one template call may build.
const maxTemplateOutput = 1 << 20

func toF(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case string:
		f, _ := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f
	}
	f, _ := strconv.ParseFloat(fmt.Sprint(v), 64)
	return f
}

func toI(v any) int64 { return int64(toF(v)) }

var templateFuncs = template.FuncMap{
	"ToLower": strings.ToLower, "lower": strings.ToLower,
	"ToUpper": strings.ToUpper, "upper": strings.ToUpper,
	"Replace":    strings.Replace,
	"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
	"Trim":       strings.Trim,
	"trim":       strings.TrimSpace,
	"TrimLeft":   strings.TrimLeft,
	"TrimRight":  strings.TrimRight,
	"TrimPrefix": strings.TrimPrefix,
	"TrimSuffix": strings.TrimSuffix,
	"TrimSpace":  strings.TrimSpace,
	"trimAll":    func(cut, s string) string { return strings.Trim(s, cut) },
	"trimPrefix": func(p, s string) string { return strings.TrimPrefix(s, p) },
	"trimSuffix": func(p, s string) string { return strings.TrimSuffix(s, p) },
	"title":      titleCase, "Title": titleCase,
	"contains":  func(sub, s string) bool { return strings.Contains(s, sub) },
	"hasPrefix": func(p, s string) bool { return strings.HasPrefix(s, p) },
	"hasSuffix": func(p, s string) bool { return strings.HasSuffix(s, p) },
	"repeat": func(n int, s string) (string, error) {
		if n < 0 || n*len(s) > maxTemplateOutput {
			return "", fmt.Errorf("repeat: %d copies is too many", n)
		}
		return strings.Repeat(s, n), nil
	},
	"indent": func(n int, s string) string {
		n = min(n, 256)
		pad := strings.Repeat(" ", max(n, 0))
		return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
	},
	"nindent": func(n int, s string) string {
		n = min(n, 256)
		pad := strings.Repeat(" ", max(n, 0))
		return "\n" + pad + strings.ReplaceAll(s, "\n", "\n"+pad)
	},
	"substr": func(start, end int, s string) string {
		if start < 0 {
			start = 0
		}
		if end < 0 || end > len(s) {
			end = len(s)
		}
		if start > end {
			return ""
		}
		return s[start:end]
	},
	"trunc": func(n int, s string) string {
		if n >= 0 && len(s) > n {
			return s[:n]
		}
		if n < 0 && len(s) > -n {
			return s[len(s)+n:]
		}
		return s
	},
	"default": func(d any, v ...any) any {
		if len(v) == 0 || v[0] == nil || v[0] == "" {
			return d
		}
		return v[0]
	},
	"count": func(re, s string) (int, error) {
		r, err := regexp.Compile(re)
		if err != nil {
			return 0, err
		}
		return len(r.FindAllStringIndex(s, -1)), nil
	},
	"regexReplaceAll": func(re, s, repl string) (string, error) {
		r, err := regexp.Compile(re)
		if err != nil {
			return "", err
		}
		return r.ReplaceAllString(s, repl), nil
	},
	"regexReplaceAllLiteral": func(re, s, repl string) (string, error) {
		r, err := regexp.Compile(re)
		if err != nil {
			return "", err
		}
		return r.ReplaceAllLiteralString(s, repl), nil
	},
	"alignLeft": func(n int, s string) string {
		n = min(n, maxTemplateOutput)
		if len(s) >= n {
			return s[:max(n, 0)]
		}
		return s + strings.Repeat(" ", n-len(s))
	},
	"alignRight": func(n int, s string) string {
		n = min(n, maxTemplateOutput)
		if len(s) >= n {
			return s[len(s)-max(n, 0):]
		}
		return strings.Repeat(" ", n-len(s)) + s
	},
	"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"b64dec": func(s string) string {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return err.Error()
		}
		return string(b)
	},
	"urlencode": url.QueryEscape,
	"urldecode": url.QueryUnescape,
	"fromJson": func(s string) any {
		var v any
		_ = json.Unmarshal([]byte(s), &v)
		return v
	},
	"toJson": func(v any) string { b, _ := json.Marshal(v); return string(b) },
	"add":    func(a, b any) int64 { return toI(a) + toI(b) },
	"sub":    func(a, b any) int64 { return toI(a) - toI(b) },
	"mul":    func(a, b any) int64 { return toI(a) * toI(b) },
	"div": func(a, b any) int64 {
		if toI(b) == 0 {
			return 0
		}
		return toI(a) / toI(b)
	},
	"mod": func(a, b any) int64 {
		if toI(b) == 0 {
			return 0
		}
		return toI(a) % toI(b)
	},
	"addf":  func(a, b any) float64 { return toF(a) + toF(b) },
	"subf":  func(a, b any) float64 { return toF(a) - toF(b) },
	"mulf":  func(a, b any) float64 { return toF(a) * toF(b) },
	"divf":  func(a, b any) float64 { return toF(a) / toF(b) },
	"max":   func(a, b any) int64 { return max(toI(a), toI(b)) },
	"min":   func(a, b any) int64 { return min(toI(a), toI(b)) },
	"maxf":  func(a, b any) float64 { return math.Max(toF(a), toF(b)) },
	"minf":  func(a, b any) float64 { return math.Min(toF(a), toF(b)) },
	"ceil":  func(a any) float64 { return math.Ceil(toF(a)) },
	"floor": func(a any) float64 { return math.Floor(toF(a)) },
	"round": func(a any, prec ...int) float64 {
		p := 0
		if len(prec) > 0 {
			p = prec[0]
		}
		m := math.Pow(10, float64(p))
		return math.Round(toF(a)*m) / m
	},
	"int":       toI,
	"float64":   toF,
	"now":       time.Now,
	"unixEpoch": func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) },
	"unixEpochMillis": func(t time.Time) string {
		return strconv.FormatInt(t.UnixMilli(), 10)
	},
	"unixEpochNanos": func(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) },
	"unixToTime": func(s string) (time.Time, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, err
		}
		switch {
		case len(s) <= 10:
			return time.Unix(n, 0).UTC(), nil
		case len(s) <= 13:
			return time.UnixMilli(n).UTC(), nil
		case len(s) <= 16:
			return time.UnixMicro(n).UTC(), nil
		}
		return time.Unix(0, n).UTC(), nil
	},
	"date": func(layout string, t time.Time) string { return t.Format(layout) },
	"toDate": func(layout, s string) time.Time {
		t, _ := time.Parse(layout, s)
		return t
	},
	"toDateInZone": func(layout, zone, s string) time.Time {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			loc = time.UTC
		}
		t, _ := time.ParseInLocation(layout, s, loc)
		return t
	},
	"bytes": func(s string) (int64, error) {
		b, err := parseBytes(s)
		return int64(b), err
	},
	"duration": func(s string) (float64, error) {
		d, err := time.ParseDuration(s)
		return d.Seconds(), err
	},
	"duration_seconds": func(s string) (float64, error) {
		d, err := time.ParseDuration(s)
		return d.Seconds(), err
	},
}

func titleCase(s string) string {
	b := []byte(s)
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
		up = c == ' ' || c == '\t' || c == '\n'
	}
	return string(b)
}
