package convert

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// ParseAppName splits `app{k=v,k2="v 2"}` into the application name and labels, as
// Pyroscope's `name=` parameter is written.
func ParseAppName(s string) (string, map[string]string, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexByte(s, '{')
	if i < 0 {
		return s, map[string]string{}, nil
	}
	app := strings.TrimSpace(s[:i])
	body, ok := strings.CutSuffix(strings.TrimSpace(s[i+1:]), "}")
	if !ok {
		return "", nil, fmt.Errorf("name %q: missing closing brace", s)
	}
	ls := map[string]string{}
	for body = strings.TrimSpace(body); body != ""; {
		eq := strings.IndexByte(body, '=')
		if eq < 0 {
			return "", nil, fmt.Errorf("name %q: label without '='", s)
		}
		k := strings.TrimSpace(body[:eq])
		if !model.UTF8Validation.IsValidLabelName(k) {
			return "", nil, fmt.Errorf("name %q: invalid label name %q", s, k)
		}
		body = strings.TrimSpace(body[eq+1:])
		var v string
		if strings.HasPrefix(body, `"`) {
			end := 1
			for end < len(body) && (body[end] != '"' || body[end-1] == '\\') {
				end++
			}
			if end >= len(body) {
				return "", nil, fmt.Errorf("name %q: unterminated quote", s)
			}
			uq, err := strconv.Unquote(body[:end+1])
			if err != nil {
				return "", nil, fmt.Errorf("name %q: bad quoted value: %w", s, err)
			}
			v, body = uq, body[end+1:]
		} else {
			end := strings.IndexByte(body, ',')
			if end < 0 {
				end = len(body)
			}
			v, body = strings.TrimSpace(body[:end]), body[end:]
		}
		body = strings.TrimSpace(body)
		if strings.HasPrefix(body, ",") {
			body = strings.TrimSpace(body[1:])
		} else if body != "" {
			return "", nil, fmt.Errorf("name %q: expected ',' between labels", s)
		}
		if k == "__name__" {
			app = v // the app name may also be given as a label
			continue
		}
		if AllowedLabel(k) {
			ls[k] = v
		}
	}
	return app, ls, nil
}

// AllowedLabel reports whether a client may set label name: like Pyroscope, no
// reserved `__x__` names except __session_id__, so nobody can forge the profile
// type or the tenant.
func AllowedLabel(name string) bool {
	return !strings.HasPrefix(name, "__") || name == "__session_id__"
}

// ParseTime reads from/until: Unix time whose unit follows from the number of digits
// (10 s, 13 ms, 16 µs, 19 ns), as the Pyroscope clients send it. Other lengths are
// read as seconds, the legacy default.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is not an integer", s)
	}
	if n < 0 {
		return time.Time{}, fmt.Errorf("time %q is negative", s)
	}
	switch digits := len(strings.TrimLeft(s, "+")); {
	case digits >= 19:
		return time.Unix(0, n), nil
	case digits >= 16:
		return time.UnixMicro(n), nil
	case digits >= 13:
		return time.UnixMilli(n), nil
	default:
		return time.Unix(n, 0), nil
	}
}
