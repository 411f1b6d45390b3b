package logs

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

// serviceNameSources are the labels Loki 3 takes service_name from when a stream
// has none, in order (its discover_service_name default).
var serviceNameSources = []string{
	"service", "app", "application", "app_name", "name", "app_kubernetes_io_name",
	"container", "container_name", "k8s_container_name", "component", "workload",
	"job", "k8s_job_name",
}

// levelSources are the structured-metadata and label names a line's level is read
// from before looking at the line itself.
var levelSources = []string{
	"level", "LEVEL", "Level", "severity", "SEVERITY", "Severity", "lvl", "LVL", "Lvl",
	"severity_text",
}

// withServiceName adds service_name to ls, as Loki 3 does, when it is missing.
func withServiceName(ls labels.Labels) labels.Labels {
	if ls.Has(logpush.LabelServiceName) {
		return ls
	}
	v := logpush.UnknownService
	for _, n := range serviceNameSources {
		if s := ls.Get(n); s != "" {
			v = s
			break
		}
	}
	b := labels.NewBuilder(ls)
	b.Set(logpush.LabelServiceName, v)
	return b.Labels()
}

// withDetectedLevel adds detected_level to e's metadata unless the stream or the
// line already carries one.
func withDetectedLevel(stream labels.Labels, e *Entry) {
	if stream.Has(logpush.MetaDetectedLevel) || e.Metadata.Has(logpush.MetaDetectedLevel) {
		return
	}
	lvl := ""
	for _, n := range levelSources {
		if v := e.Metadata.Get(n); v != "" {
			lvl = normalizeLevel(v)
			break
		}
		if v := stream.Get(n); v != "" {
			lvl = normalizeLevel(v)
			break
		}
	}
	if lvl == "" {
		if n := e.Metadata.Get("severity_number"); n != "" {
			lvl = levelFromSeverityNumber(n)
		}
	}
	if lvl == "" {
		lvl = levelFromLine(e.Line)
	}
	b := labels.NewBuilder(e.Metadata)
	b.Set(logpush.MetaDetectedLevel, lvl)
	e.Metadata = b.Labels()
}

// normalizeLevel maps the spellings of a level to Loki's detected_level values;
// an unknown spelling is kept, lower-cased.
func normalizeLevel(v string) string {
	switch strings.ToLower(v) {
	case "trace", "trc":
		return "trace"
	case "debug", "dbg":
		return "debug"
	case "info", "inf", "information", "informational", "notice":
		return "info"
	case "warn", "warning", "wrn":
		return "warn"
	case "error", "err", "eror":
		return "error"
	case "critical", "crit", "panic", "alert", "emerg", "emergency":
		return "critical"
	case "fatal":
		return "fatal"
	}
	return strings.ToLower(v)
}

// levelFromSeverityNumber maps an OTLP severity number (1-24) to a level.
func levelFromSeverityNumber(n string) string {
	var i int
	if _, err := fmt.Sscan(n, &i); err != nil || i <= 0 {
		return ""
	}
	switch {
	case i <= 4:
		return "trace"
	case i <= 8:
		return "debug"
	case i <= 12:
		return "info"
	case i <= 16:
		return "warn"
	case i <= 20:
		return "error"
	}
	return "fatal"
}

// levelFromLine finds a level in a line: a level/severity/lvl key (JSON or
// logfmt), else the first word that names a level, else "unknown".
func levelFromLine(line string) string {
	if len(line) > 4096 {
		line = line[:4096]
	}
	for _, key := range []string{"level", "severity", "lvl"} {
		if v := keyValue(line, key); v != "" {
			return normalizeLevel(v)
		}
	}
	for i := 0; i < len(line); {
		for i < len(line) && !isWordByte(line[i]) {
			i++
		}
		j := i
		for j < len(line) && isWordByte(line[j]) {
			j++
		}
		if w := line[i:j]; len(w) >= 3 && len(w) <= 8 {
			switch l := normalizeLevel(w); l {
			case "trace", "debug", "info", "warn", "error", "critical", "fatal":
				return l
			}
		}
		i = j
	}
	return logpush.DefaultLevelString
}

// keyValue returns the value of key in a logfmt (key=v) or JSON ("key":"v") line.
func keyValue(line, key string) string {
	for off := 0; ; {
		i := strings.Index(line[off:], key)
		if i < 0 {
			return ""
		}
		i += off
		off = i + len(key)
		if i > 0 && isWordByte(line[i-1]) {
			continue
		}
		rest := line[off:]
		rest = strings.TrimPrefix(rest, `"`)
		if len(rest) == 0 || (rest[0] != '=' && rest[0] != ':') {
			continue
		}
		rest = strings.TrimLeft(rest[1:], ` "`)
		j := 0
		for j < len(rest) && isWordByte(rest[j]) {
			j++
		}
		if j > 0 {
			return rest[:j]
		}
	}
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// validator checks a push against the limits, with Loki's messages.
type validator struct {
	cfg      *Config
	now      time.Time
	errs     []string
	rejected int
}

func (v *validator) fail(n int, format string, args ...any) {
	v.rejected += n
	if len(v.errs) < 10 {
		v.errs = append(v.errs, fmt.Sprintf(format, args...))
	}
}

// stream reports whether s's labels are acceptable.
func (v *validator) stream(s *Stream) bool {
	if s.Labels.IsEmpty() {
		v.fail(len(s.Entries), "error at least one label pair is required per stream")
		return false
	}
	if n := s.Labels.Len(); n > v.cfg.MaxLabelNamesPerStream {
		v.fail(len(s.Entries), "entry for stream '%s' has %d label names; limit %d", s.Labels, n, v.cfg.MaxLabelNamesPerStream)
		return false
	}
	ok := true
	s.Labels.Range(func(l labels.Label) {
		switch {
		case !ok:
		case len(l.Name) > v.cfg.MaxLabelNameLength:
			v.fail(len(s.Entries), "stream '%s' has label name too long: '%s'", s.Labels, l.Name)
			ok = false
		case len(l.Value) > v.cfg.MaxLabelValueLength:
			v.fail(len(s.Entries), "stream '%s' has label value too long: '%s'", s.Labels, l.Value)
			ok = false
		}
	})
	return ok
}

// entry reports whether e is acceptable in stream ls.
func (v *validator) entry(ls labels.Labels, e *Entry) bool {
	switch {
	case len(e.Line) > v.cfg.MaxLineSize:
		v.fail(1, "Max entry size '%d' bytes exceeded for stream '%s' while adding an entry with length '%d' bytes", v.cfg.MaxLineSize, ls, len(e.Line))
		return false
	case e.Timestamp < v.now.Add(-v.cfg.RejectOlderThan).UnixNano():
		v.fail(1, "entry for stream '%s' has timestamp too old: %s, oldest acceptable timestamp is: %s",
			ls, time.Unix(0, e.Timestamp).UTC().Format(time.RFC3339), v.now.Add(-v.cfg.RejectOlderThan).UTC().Format(time.RFC3339))
		return false
	case e.Timestamp > v.now.Add(v.cfg.CreationGracePeriod).UnixNano():
		v.fail(1, "entry for stream '%s' has timestamp too new: %s", ls, time.Unix(0, e.Timestamp).UTC().Format(time.RFC3339))
		return false
	}
	if n := e.Metadata.Len(); n > v.cfg.MaxStructuredMetadataEntries {
		v.fail(1, "stream '%s' has too many structured metadata labels: '%d', limit: '%d'. Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to increase it.", ls, n, v.cfg.MaxStructuredMetadataEntries)
		return false
	}
	size := 0
	e.Metadata.Range(func(l labels.Label) { size += len(l.Name) + len(l.Value) })
	if size > v.cfg.MaxStructuredMetadataBytes {
		v.fail(1, "stream '%s' has structured metadata too large: '%d' bytes, limit: '%d' bytes. Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it.", ls, size, v.cfg.MaxStructuredMetadataBytes)
		return false
	}
	return true
}
