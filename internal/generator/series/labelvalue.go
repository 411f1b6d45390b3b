package series

import (
	"strings"
	"unicode/utf8"
)

// MaxLabelValueLength caps label values taken from spans (Tempo's default),
// so one huge attribute cannot bloat every sample of its series.
const MaxLabelValueLength = 2048

// CleanValue returns v truncated to MaxLabelValueLength bytes on a rune
// boundary, with invalid UTF-8 replaced: PromQL and its JSON API need valid
// UTF-8 label values, and span attributes are not checked by the receivers.
func CleanValue(v string) string {
	if len(v) > MaxLabelValueLength {
		cut := MaxLabelValueLength
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	return v
}
