package logql

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/grafana/regexp"
)

func compileParser(s *ParserStage) (stageFn, error) {
	switch s.Kind {
	case "json":
		if len(s.Extractions) > 0 {
			return jsonFieldsParser(s.Extractions)
		}
		return jsonParser, nil
	case "logfmt":
		return logfmtParser(s), nil
	case "regexp":
		re, err := compileRegexpParser(s.Param)
		if err != nil {
			return nil, err
		}
		names := re.SubexpNames()
		return func(l *lineState) bool {
			m := re.FindStringSubmatch(l.line)
			for i, v := range m {
				if names[i] != "" {
					l.labels.setParsed(names[i], v)
				}
			}
			return true
		}, nil
	case "pattern":
		pat, err := compilePattern(s.Param, false)
		if err != nil {
			return nil, err
		}
		return func(l *lineState) bool {
			pat.match(l.line, func(name, v string) { l.labels.setParsed(name, v) })
			return true
		}, nil
	case "unpack":
		return unpackParser, nil
	}
	return nil, fmt.Errorf("unknown parser %q", s.Kind)
}

func compileRegexpParser(s string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("invalid regexp %q: %w", s, err)
	}
	named := false
	for _, n := range re.SubexpNames() {
		if n != "" {
			if !isLabelName(n) {
				return nil, fmt.Errorf("invalid extracted label name %q", n)
			}
			named = true
		}
	}
	if !named {
		return nil, errors.New("at least one named capture must be supplied")
	}
	return re, nil
}

// sanitizeKey turns a JSON or logfmt key into a label name: characters
// outside [a-zA-Z0-9_] become underscores, a leading digit gets one.
func sanitizeKey(k string) string {
	b := []byte(k)
	for i, c := range b {
		if !isIdentChar(c) {
			b[i] = '_'
		}
	}
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}

// jsonParser flattens a JSON object into labels: nested keys are joined
// with `_`; arrays are skipped.
func jsonParser(l *lineState) bool {
	var obj map[string]any
	d := json.NewDecoder(strings.NewReader(l.line))
	d.UseNumber()
	if err := d.Decode(&obj); err != nil || obj == nil {
		msg := "Value looks like object, but can't find closing '}' symbol"
		if err != nil {
			msg = err.Error()
		}
		l.labels.setErr(errJSON, msg)
		return true
	}
	flattenJSON(l, "", obj)
	return true
}

func flattenJSON(l *lineState, prefix string, obj map[string]any) {
	for k, v := range obj {
		name := sanitizeKey(k)
		if prefix != "" {
			name = prefix + "_" + name
		}
		switch v := v.(type) {
		case map[string]any:
			flattenJSON(l, name, v)
		case []any:
		default:
			if s, ok := jsonScalar(v); ok {
				l.labels.setParsed(name, s)
			}
		}
	}
}

func jsonScalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	case nil:
		return "", true
	}
	b, err := json.Marshal(v)
	return string(b), err == nil
}

// jsonFieldsParser extracts only the named paths: `a.b`, `a[0]`, `a["b c"]`.
func jsonFieldsParser(ex []Extraction) (stageFn, error) {
	paths := make([][]any, len(ex))
	for i, e := range ex {
		expr := e.Expr
		if expr == "" {
			expr = e.Label
		}
		p, err := parseJSONPath(expr)
		if err != nil {
			return nil, err
		}
		paths[i] = p
	}
	return func(l *lineState) bool {
		var obj any
		d := json.NewDecoder(strings.NewReader(l.line))
		d.UseNumber()
		if err := d.Decode(&obj); err != nil {
			l.labels.setErr(errJSON, err.Error())
			return true
		}
		for i, p := range paths {
			v := walkJSON(obj, p)
			s := ""
			switch v.(type) {
			case map[string]any, []any:
				b, _ := json.Marshal(v)
				s = string(b)
			default:
				s, _ = jsonScalar(v)
			}
			l.labels.setParsed(ex[i].Label, s)
		}
		return true
	}, nil
}

// parseJSONPath splits `a.b[0]["c"]` into keys (string) and indexes (int).
func parseJSONPath(s string) ([]any, error) {
	var out []any
	for i := 0; i < len(s); {
		switch s[i] {
		case '.':
			i++
		case '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("invalid json path %q", s)
			}
			in := s[i+1 : i+end]
			if n, err := strconv.Atoi(in); err == nil {
				out = append(out, n)
			} else if k, err := strconv.Unquote(in); err == nil {
				out = append(out, k)
			} else {
				return nil, fmt.Errorf("invalid json path %q", s)
			}
			i += end + 1
		default:
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("invalid json path %q", s)
	}
	return out, nil
}

func walkJSON(v any, path []any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k < 0 || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// unpackParser reads a JSON object of strings packed by Promtail's pack
// stage: `_entry` becomes the line, the rest labels.
func unpackParser(l *lineState) bool {
	var obj map[string]any
	if err := json.Unmarshal([]byte(l.line), &obj); err != nil {
		l.labels.setErr(errJSON, err.Error())
		return true
	}
	for k, v := range obj {
		s, ok := v.(string)
		if !ok {
			continue
		}
		if k == "_entry" {
			l.line = s
			continue
		}
		l.labels.setParsed(sanitizeKey(k), s)
	}
	return true
}

func logfmtParser(s *ParserStage) stageFn {
	strict, keepEmpty := false, false
	for _, f := range s.Flags {
		strict = strict || f == "--strict"
		keepEmpty = keepEmpty || f == "--keep-empty"
	}
	want := map[string]string{} // logfmt key → label
	for _, e := range s.Extractions {
		k := e.Expr
		if k == "" {
			k = e.Label
		}
		want[k] = e.Label
	}
	return func(l *lineState) bool {
		err := scanLogfmt(l.line, func(k, v string) {
			if len(want) > 0 {
				if name, ok := want[k]; ok {
					l.labels.setParsed(name, v)
				}
				return
			}
			if v == "" && !keepEmpty {
				return
			}
			if k = sanitizeKey(k); k != "" {
				l.labels.setParsed(k, v)
			}
		})
		if err != nil && strict {
			l.labels.setErr(errLogfmt, err.Error())
		}
		return true
	}
}

// scanLogfmt calls f for each key=value pair of a logfmt line. Values may be
// bare or double-quoted with Go escapes; a bare key has an empty value.
func scanLogfmt(s string, f func(k, v string)) error {
	var firstErr error
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		start := i
		for i < len(s) && s[i] > ' ' && s[i] != '=' && s[i] != '"' {
			i++
		}
		key := s[start:i]
		if key == "" {
			if firstErr == nil {
				firstErr = fmt.Errorf("logfmt syntax error at pos %d : unexpected '%c'", i+1, s[i])
			}
			i++
			continue
		}
		if i >= len(s) || s[i] != '=' {
			f(key, "")
			continue
		}
		i++
		if i < len(s) && s[i] == '"' {
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				if firstErr == nil {
					firstErr = fmt.Errorf("logfmt syntax error at pos %d : unterminated quoted value", len(s)+1)
				}
				return firstErr
			}
			v, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				v = s[i+1 : j]
			}
			f(key, v)
			i = j + 1
			continue
		}
		start = i
		for i < len(s) && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		f(key, s[start:i])
	}
	return firstErr
}

// pattern is a compiled pattern expression: literals and `<name>` captures;
// `<_>` matches without capturing.
type pattern struct {
	parts []patPart
}

type patPart struct {
	lit     string
	capture string // "" for a literal
}

func compilePattern(s string, filter bool) (*pattern, error) {
	p := &pattern{}
	captures := 0
	for i := 0; i < len(s); {
		if s[i] == '<' {
			end := strings.IndexByte(s[i:], '>')
			if end > 1 && isLabelName(s[i+1:i+end]) {
				name := s[i+1 : i+end]
				if n := len(p.parts); n > 0 && p.parts[n-1].capture != "" {
					return nil, fmt.Errorf("invalid pattern %q: consecutive captures are not allowed", s)
				}
				p.parts = append(p.parts, patPart{capture: name})
				if name != "_" {
					captures++
				}
				i += end + 1
				continue
			}
		}
		j := i + 1
		for j < len(s) && s[j] != '<' {
			j++
		}
		if n := len(p.parts); n > 0 && p.parts[n-1].capture == "" {
			p.parts[n-1].lit += s[i:j]
		} else {
			p.parts = append(p.parts, patPart{lit: s[i:j]})
		}
		i = j
	}
	if !filter && captures == 0 {
		return nil, fmt.Errorf("invalid pattern %q: at least one capture is required", s)
	}
	if len(p.parts) == 0 {
		return nil, fmt.Errorf("invalid pattern %q: empty", s)
	}
	return p, nil
}

// match matches the pattern from the start of line; each capture takes the
// text up to the next literal's first occurrence (the last one takes the
// rest). It calls capture for named captures and reports whether every
// literal was found.
func (p *pattern) match(line string, capture func(name, v string)) bool {
	pos := 0
	for i, part := range p.parts {
		if part.capture == "" {
			if i == 0 {
				if !strings.HasPrefix(line, part.lit) {
					return false
				}
				pos = len(part.lit)
			}
			continue
		}
		end := len(line)
		next := ""
		if i+1 < len(p.parts) {
			next = p.parts[i+1].lit
			k := strings.Index(line[pos:], next)
			if k < 0 {
				return false
			}
			end = pos + k
		}
		if capture != nil && part.capture != "_" {
			capture(part.capture, line[pos:end])
		}
		pos = end + len(next)
	}
	return true
}
