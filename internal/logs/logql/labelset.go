package logql

import (
	"sort"

	"github.com/prometheus/prometheus/model/labels"
)

// Category says where a label came from, as Loki's categorized-labels
// response distinguishes them.
type Category uint8

const (
	CatStream Category = iota
	CatMetadata
	CatParsed
)

// Error label names and values, as Loki sets them.
const (
	ErrorLabel        = "__error__"
	ErrorDetailsLabel = "__error_details__"
	errJSON           = "JSONParserErr"
	errLogfmt         = "LogfmtParserErr"
	errLabelFilter    = "LabelFilterErr"
	errSampleExtract  = "SampleExtractionErr"
	errTemplate       = "TemplateFormatErr"
)

type lbl struct {
	name, value string
	cat         Category
}

// labelSet is the mutable labels of one line while it runs through a
// pipeline: stream labels, then structured metadata, then parsed labels. It
// is small (a slice), reused across lines.
type labelSet struct {
	ls []lbl
}

func (s *labelSet) reset(stream, meta labels.Labels) {
	s.ls = s.ls[:0]
	stream.Range(func(l labels.Label) { s.ls = append(s.ls, lbl{l.Name, l.Value, CatStream}) })
	meta.Range(func(l labels.Label) { s.set(l.Name, l.Value, CatMetadata) })
}

func (s *labelSet) get(name string) (string, bool) {
	for i := range s.ls {
		if s.ls[i].name == name {
			return s.ls[i].value, true
		}
	}
	return "", false
}

func (s *labelSet) has(name string) bool { _, ok := s.get(name); return ok }

func (s *labelSet) set(name, value string, cat Category) {
	for i := range s.ls {
		if s.ls[i].name == name {
			s.ls[i].value = value
			s.ls[i].cat = cat
			return
		}
	}
	s.ls = append(s.ls, lbl{name, value, cat})
}

// setParsed adds a label a parser extracted. A name already taken by a
// stream label gets the `_extracted` suffix, as Loki does.
func (s *labelSet) setParsed(name, value string) {
	if v, ok := s.get(name); ok {
		if s.catOf(name) == CatStream {
			if v == value {
				return
			}
			name += "_extracted"
		}
	}
	s.set(name, value, CatParsed)
}

func (s *labelSet) catOf(name string) Category {
	for i := range s.ls {
		if s.ls[i].name == name {
			return s.ls[i].cat
		}
	}
	return CatParsed
}

func (s *labelSet) del(name string) {
	for i := range s.ls {
		if s.ls[i].name == name {
			s.ls = append(s.ls[:i], s.ls[i+1:]...)
			return
		}
	}
}

func (s *labelSet) hasErr() bool { return s.has(ErrorLabel) }

func (s *labelSet) setErr(kind, details string) {
	if s.hasErr() {
		return
	}
	s.set(ErrorLabel, kind, CatParsed)
	if details != "" {
		s.set(ErrorDetailsLabel, details, CatParsed)
	}
}

// labels returns all labels, or only those of one category when cat >= 0.
func (s *labelSet) labels(cat int) labels.Labels {
	b := labels.NewScratchBuilder(len(s.ls))
	for _, l := range s.ls {
		if cat < 0 || int(l.cat) == cat {
			b.Add(l.name, l.value)
		}
	}
	b.Sort()
	return b.Labels()
}

// asMap is the data line_format and label_format templates see.
func (s *labelSet) asMap() map[string]string {
	m := make(map[string]string, len(s.ls))
	for _, l := range s.ls {
		m[l.name] = l.value
	}
	return m
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
