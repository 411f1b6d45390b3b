package faro

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/zeebo/xxh3"
)

// keyVals is an ordered set of keys, each with a string or float64 value:
// what one Faro item becomes, in the order Alloy's faro.receiver writes it.
// Setting a key again replaces its value in place.
type keyVals struct {
	keys []string
	vals []any
	pos  map[string]int
}

// newKeyVals is sized for an item merged with its metadata (about 40 keys),
// so that building a line does not regrow the map.
func newKeyVals() *keyVals {
	return &keyVals{pos: make(map[string]int, 48), keys: make([]string, 0, 48), vals: make([]any, 0, 48)}
}

func (kv *keyVals) set(k string, v any) {
	if i, ok := kv.pos[k]; ok {
		kv.vals[i] = v
		return
	}
	kv.pos[k] = len(kv.keys)
	kv.keys = append(kv.keys, k)
	kv.vals = append(kv.vals, v)
}

// add sets k unless v is empty, as Alloy leaves empty fields out.
func (kv *keyVals) add(k, v string) {
	if v != "" {
		kv.set(k, v)
	}
}

// addMap adds m's non-empty values in key order, each key prefixed.
func (kv *keyVals) addMap(prefix string, m map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kv.add(prefix+k, m[k])
	}
}

func (kv *keyVals) get(k string) string {
	i, ok := kv.pos[k]
	if !ok {
		return ""
	}
	return valueString(kv.vals[i])
}

func (kv *keyVals) addTrace(tc traceContext) {
	kv.add("traceID", tc.TraceID)
	kv.add("spanID", tc.SpanID)
}

func valueString(v any) string {
	if f, ok := v.(float64); ok {
		return fmt.Sprint(f)
	}
	return v.(string)
}

// logfmt writes kv as a logfmt line: keys lose the characters logfmt cannot
// hold (space, '=', '"', control characters), values with any of them are
// quoted with JSON-style escapes.
func (kv *keyVals) logfmt() string {
	var b strings.Builder
	for i, k := range kv.keys {
		k = strings.Map(func(r rune) rune {
			if r <= ' ' || r == '=' || r == '"' || r == utf8.RuneError {
				return -1
			}
			return r
		}, k)
		if k == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		writeLogfmtValue(&b, valueString(kv.vals[i]))
	}
	return b.String()
}

func writeLogfmtValue(b *strings.Builder, v string) {
	if !strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == '=' || r == '"' || r == utf8.RuneError }) {
		b.WriteString(v)
		return
	}
	b.WriteByte('"')
	for _, r := range v {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < ' ':
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteRune(r) // invalid UTF-8 was decoded as U+FFFD
		}
	}
	b.WriteByte('"')
}

// json writes kv as one JSON object (keys sorted, as Alloy's json format).
func (kv *keyVals) json() string {
	m := make(map[string]any, len(kv.keys))
	for i, k := range kv.keys {
		m[k] = kv.vals[i]
	}
	b, _ := json.Marshal(m) // strings and finite floats only: cannot fail
	return string(b)
}

func (e exception) keyVals() *keyVals {
	kv := newKeyVals()
	kv.add("timestamp", e.Timestamp.String())
	kv.add("kind", "exception")
	kv.add("type", e.Type)
	kv.add("value", e.Value)
	kv.add("stacktrace", e.stacktrace())
	kv.add("hash", strconv.FormatUint(xxh3.HashString(e.Value), 10))
	kv.addMap("context_", e.Context)
	kv.addTrace(e.Trace)
	return kv
}

// stacktrace is "Type: Value" and one "  at function (file:line:column)" line
// per frame, as browsers print them.
func (e exception) stacktrace() string {
	var b strings.Builder
	b.WriteString(e.Type + ": " + e.Value)
	if e.Stacktrace == nil {
		return b.String()
	}
	for _, f := range e.Stacktrace.Frames {
		mod := ""
		if f.Module != "" {
			mod = f.Module + "|"
		}
		fmt.Fprintf(&b, "\n  at %s (%s%s:%d:%d)", f.Function, mod, f.Filename, f.Lineno, f.Colno)
	}
	return b.String()
}

func (l logItem) keyVals() *keyVals {
	kv := newKeyVals()
	kv.add("timestamp", l.Timestamp.String())
	kv.add("kind", "log")
	kv.add("message", l.Message)
	kv.add("level", l.Level)
	kv.addMap("context_", l.Context)
	kv.addTrace(l.Trace)
	return kv
}

func (m measurement) keyVals() *keyVals {
	kv := newKeyVals()
	kv.add("timestamp", m.Timestamp.String())
	kv.add("kind", "measurement")
	kv.add("type", m.Type)
	names := slices.Sorted(maps.Keys(m.Values))
	for _, k := range names {
		kv.add(k, strconv.FormatFloat(m.Values[k], 'f', 6, 64))
	}
	kv.addTrace(m.Trace)
	kv.addMap("context_", m.Context)
	for _, k := range names {
		kv.set("value_"+k, m.Values[k])
	}
	return kv
}

func (e event) keyVals() *keyVals {
	kv := newKeyVals()
	kv.add("timestamp", e.Timestamp.String())
	kv.add("kind", "event")
	kv.add("event_name", e.Name)
	kv.add("event_domain", e.Domain)
	kv.addMap("event_data_", e.Attributes)
	kv.addTrace(e.Trace)
	return kv
}

// merge adds m's keys to kv (the metadata every item of a payload shares).
func (kv *keyVals) merge(m *keyVals) {
	for i, k := range m.keys {
		kv.set(k, m.vals[i])
	}
}

func (m meta) keyVals() *keyVals {
	kv := newKeyVals()
	kv.add("sdk_name", m.SDK.Name)
	kv.add("sdk_version", m.SDK.Version)
	if len(m.SDK.Integrations) > 0 {
		names := make([]string, len(m.SDK.Integrations))
		for i, in := range m.SDK.Integrations {
			names[i] = in.Name + ":" + in.Version
		}
		kv.add("sdk_integrations", strings.Join(names, ","))
	}
	kv.add("app_name", m.App.Name)
	kv.add("app_namespace", m.App.Namespace)
	kv.add("app_release", m.App.Release)
	kv.add("app_version", m.App.Version)
	kv.add("app_environment", m.App.Environment)
	kv.add("user_email", m.User.Email)
	kv.add("user_id", m.User.ID)
	kv.add("user_username", m.User.Username)
	kv.addMap("user_attr_", m.User.Attributes)
	kv.add("session_id", m.Session.ID)
	kv.addMap("session_attr_", m.Session.Attributes)
	kv.add("page_id", m.Page.ID)
	kv.add("page_url", m.Page.URL)
	kv.addMap("page_attr_", m.Page.Attributes)
	b := m.Browser
	kv.add("browser_name", b.Name)
	kv.add("browser_version", b.Version)
	kv.add("browser_os", b.OS)
	kv.add("browser_mobile", strconv.FormatBool(b.Mobile))
	kv.add("browser_userAgent", b.UserAgent)
	kv.add("browser_language", b.Language)
	kv.add("browser_viewportWidth", b.ViewportWidth)
	kv.add("browser_viewportHeight", b.ViewportHeight)
	kv.add("view_name", m.View.Name)
	return kv
}
