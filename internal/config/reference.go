package config

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

//go:generate go test -run TestConfigurationReferenceIsCurrent -update .

// WriteReference writes the configuration reference (docs/configuration.md):
// every key of the YAML file with its flag, environment variable, type, default
// and meaning, read from Config itself so the page cannot drift from the code.
func WriteReference(w io.Writer) error {
	return writeReference(w, fieldDocs)
}

func writeReference(w io.Writer, docs map[string]string) error {
	c := Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	bind(fs, &c)
	var b strings.Builder
	b.WriteString(`# Configuration reference

<!-- Generated from internal/config by ` + "`go generate ./internal/config`" + `; do not edit. -->

Vispyr reads one YAML file (` + "`vispyr serve --config vispyr.yaml`" + `), then environment
variables, then flags, each overriding the one before. Every key below can be set in all
three ways unless its flag column says "YAML only". Durations are written as Go durations
(` + "`720h`, `90m`, `30s`" + `), lists as YAML sequences or, in flags and variables,
comma-separated values. An unknown YAML key or a bad value stops start-up naming the key.

`)
	section := ""
	for _, f := range fields(&c, fs, docs) {
		top, _, nested := strings.Cut(f.Key, ".")
		if !nested {
			top = "(top level)"
		}
		if top != section {
			section = top
			fmt.Fprintf(&b, "\n## %s\n\n| key | flag / env | type | default | meaning |\n|---|---|---|---|---|\n", section)
		}
		flagCol := "YAML only"
		if f.Flag != "" {
			flagCol = fmt.Sprintf("`--%s`<br>`%s`", f.Flag, f.Env)
		}
		def := "(empty)"
		if strings.Contains(f.Key, "[]") {
			def = "—" // per list item: see the item's own defaults in its doc
		} else if f.Default != "" {
			def = "`" + f.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", f.Key, flagCol, f.Type, def, cell(f.Doc))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell keeps a doc comment on one table row.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
