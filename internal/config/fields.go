package config

import (
	"flag"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Field is one setting of Config, as the YAML file, a flag and an env variable
// name it. Fields are found by walking Config, so a field added to the struct is
// a setting everywhere (flags, --help, the reference) without more code.
type Field struct {
	Key     string // YAML path: traces.storage.s3.bucket
	Flag    string // flag name without dashes; empty when the field is YAML-only
	Env     string // environment variable; empty when YAML-only
	Type    string // what a value looks like: duration, integer, string, ...
	Default string // the embedded default, as a flag would take it
	Doc     string // meaning, from the field's doc comment (or its flag's usage)

	ptr reflect.Value // the field inside the Config it was read from
}

// Fields lists every leaf setting of c, in struct order. Flags already bound
// by hand in fs (names kept for compatibility, e.g. --metrics.listen-address for
// listen.prometheus) are reported under their own name.
func fields(c *Config, fs *flag.FlagSet, docs map[string]string) []Field {
	byPtr := map[uintptr]*flag.Flag{}
	if fs != nil {
		fs.VisitAll(func(f *flag.Flag) {
			// The standard library's flag values are pointers to the bound
			// variable, so their address says which field a flag sets.
			if v := reflect.ValueOf(f.Value); v.Kind() == reflect.Pointer {
				byPtr[v.Pointer()] = f
			}
		})
	}
	var out []Field
	// v is invalid below a list of structs: those keys are YAML-only and have
	// no default of their own.
	var walk func(t reflect.Type, v reflect.Value, prefix string)
	walk = func(t reflect.Type, v reflect.Value, prefix string) {
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if !sf.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			key := prefix + name
			var fv reflect.Value
			if v.IsValid() {
				fv = v.Field(i)
			}
			if ownStruct(sf.Type) {
				walk(sf.Type, fv, key+".")
				continue
			}
			f := Field{Key: key, Type: typeName(sf.Type), Doc: docs[key], ptr: fv}
			if fv.IsValid() {
				f.Default = formatValue(fv)
				if bound, ok := byPtr[fv.Addr().Pointer()]; ok {
					f.Flag = bound.Name
					// A hand-bound flag's usage was written for users; prefer it.
					if bound.Usage != "" {
						f.Doc = capitalize(bound.Usage)
					}
				} else if flagValue(fv) != nil {
					f.Flag = strings.ReplaceAll(key, "_", "-")
				}
			}
			if f.Flag != "" {
				f.Env = EnvName(f.Flag)
			}
			out = append(out, f)
			if sf.Type.Kind() == reflect.Slice && ownStruct(sf.Type.Elem()) {
				walk(sf.Type.Elem(), reflect.Value{}, key+"[].")
			}
		}
	}
	walk(reflect.TypeOf(*c), reflect.ValueOf(c).Elem(), "")
	return out
}

// bindAll registers a flag for every field that bind did not: --traces.retention,
// --generator.span-metrics.dimensions, ...
func bindAll(fs *flag.FlagSet, c *Config) {
	for _, f := range fields(c, fs, fieldDocs) {
		if f.Flag == "" || fs.Lookup(f.Flag) != nil {
			continue
		}
		usage, _, _ := strings.Cut(f.Doc, ". ")
		fs.Var(flagValue(f.ptr), f.Flag, strings.TrimSuffix(usage, "."))
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

// ownStruct reports whether t is a struct of this module, whose fields are
// settings of their own; other structs (Prometheus's TLS config, ...) are one
// YAML value documented where they come from.
func ownStruct(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && strings.HasPrefix(t.PkgPath(), "github.com/vispyr/vispyr/")
}

func typeName(t reflect.Type) string {
	if t == durationType {
		return "duration"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "integer"
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "non-negative integer"
	case reflect.Float64, reflect.Float32:
		return "number"
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Key()) + " to " + typeName(t.Elem())
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Struct:
		if !ownStruct(t) {
			return "`" + t.String() + "`"
		}
		return "object"
	}
	return t.String()
}

// expectedForm says how a value of the named type is written, for errors.
func expectedForm(typ string) string {
	switch typ {
	case "duration":
		return "a duration such as 720h, 90m, 30s or 500ms"
	case "boolean":
		return "true or false"
	case "integer":
		return "a whole number such as 100000 (no units or separators)"
	case "non-negative integer":
		return "a whole number of 0 or more"
	case "number":
		return "a number such as 0.5"
	case "list of string":
		return "comma-separated values"
	case "list of number":
		return "comma-separated numbers such as 0.005,0.01,0.1,1"
	}
	return "a " + typ
}

// formatValue writes v as its flag would take it.
func formatValue(v reflect.Value) string {
	if v.Type() == durationType {
		return formatDuration(time.Duration(v.Int()))
	}
	if v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = formatValue(v.Index(i))
		}
		return strings.Join(parts, ",")
	}
	switch v.Kind() {
	case reflect.Struct, reflect.Pointer, reflect.Map:
		if v.IsZero() || (v.Kind() == reflect.Map && v.Len() == 0) {
			return ""
		}
		return "(set)"
	}
	if v.Kind() == reflect.Float64 || v.Kind() == reflect.Float32 {
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}

// formatDuration drops time.Duration's trailing zero units: 720h, not 720h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// flagValue adapts the field v points into to flag.Value, or returns nil for a
// type that only YAML can express (lists of structs, maps).
func flagValue(v reflect.Value) flag.Value {
	switch {
	case v.Type() == durationType,
		v.Kind() == reflect.String, v.Kind() == reflect.Bool,
		v.Kind() == reflect.Int, v.Kind() == reflect.Int64, v.Kind() == reflect.Int32,
		v.Kind() == reflect.Uint, v.Kind() == reflect.Uint64, v.Kind() == reflect.Uint32,
		v.Kind() == reflect.Float64:
		return reflectValue{v}
	case v.Kind() == reflect.Slice && (v.Type().Elem().Kind() == reflect.String || v.Type().Elem().Kind() == reflect.Float64):
		return reflectValue{v}
	}
	return nil
}

type reflectValue struct{ v reflect.Value }

func (r reflectValue) String() string {
	if !r.v.IsValid() {
		return ""
	}
	return formatValue(r.v)
}

func (r reflectValue) IsBoolFlag() bool { return r.v.Kind() == reflect.Bool }

func (r reflectValue) Set(s string) error {
	x, err := parseValue(r.v.Type(), s)
	if err != nil {
		return fmt.Errorf("not %s", expectedForm(typeName(r.v.Type())))
	}
	r.v.Set(x)
	return nil
}

func parseValue(t reflect.Type, s string) (reflect.Value, error) {
	x := reflect.New(t).Elem()
	if t == durationType {
		d, err := time.ParseDuration(s)
		x.SetInt(int64(d))
		return x, err
	}
	var err error
	switch t.Kind() {
	case reflect.String:
		x.SetString(s)
	case reflect.Bool:
		var b bool
		b, err = strconv.ParseBool(s)
		x.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		var n int64
		n, err = strconv.ParseInt(s, 10, t.Bits())
		x.SetInt(n)
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		var n uint64
		n, err = strconv.ParseUint(s, 10, t.Bits())
		x.SetUint(n)
	case reflect.Float64:
		var f float64
		f, err = strconv.ParseFloat(s, 64)
		x.SetFloat(f)
	case reflect.Slice:
		x = reflect.MakeSlice(t, 0, 0)
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			e, perr := parseValue(t.Elem(), part)
			if perr != nil {
				return x, perr
			}
			x = reflect.Append(x, e)
		}
	}
	return x, err
}

// envError says which variable held what, and what was expected instead of
// the flag package's bare "parse error".
func envError(f *flag.Flag, value string) error {
	typ := ""
	if rv, ok := f.Value.(reflectValue); ok {
		typ = typeName(rv.v.Type())
	} else if g, ok := f.Value.(flag.Getter); ok {
		typ = typeName(reflect.TypeOf(g.Get()))
	}
	return fmt.Errorf("env %s=%q: not %s (it sets --%s)", EnvName(f.Name), value, expectedForm(typ), f.Name)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
