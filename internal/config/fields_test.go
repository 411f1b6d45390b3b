package config

import (
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEveryFieldIsAFlagAndAnEnvVariable(t *testing.T) {
	env := map[string]string{
		"VISPYR_GENERATOR_COLLECTION_INTERVAL": "1s",
		"VISPYR_TRACES_STORAGE_S3_BUCKET":      "from-env",
		"VISPYR_UI_EXTERNAL_URL":               "https://vispyr.example.com/",
	}
	cfg, err := Load("serve", []string{
		"--traces.retention=48h", "--profiles.max-disk-bytes=1000",
		"--generator.span-metrics.dimensions=http.method, http.route",
		"--generator.span-metrics.histogram-buckets=0.1,1",
		"--generator.disable-service-graph",
	}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Traces.Retention != 48*time.Hour || cfg.Profiles.MaxDiskBytes != 1000 || !cfg.Generator.DisableServiceGraph {
		t.Errorf("flags not applied: traces.retention=%v profiles.max_disk_bytes=%d disable_service_graph=%v",
			cfg.Traces.Retention, cfg.Profiles.MaxDiskBytes, cfg.Generator.DisableServiceGraph)
	}
	if got := cfg.Generator.SpanMetrics.Dimensions; !slices.Equal(got, []string{"http.method", "http.route"}) {
		t.Errorf("dimensions = %q", got)
	}
	if got := cfg.Generator.SpanMetrics.HistogramBuckets; !slices.Equal(got, []float64{0.1, 1}) {
		t.Errorf("buckets = %v", got)
	}
	if cfg.Generator.CollectionInterval != time.Second || cfg.Traces.Storage.S3.Bucket != "from-env" ||
		cfg.UI.ExternalURL != "https://vispyr.example.com/" {
		t.Errorf("env not applied: %+v %+v", cfg.Generator, cfg.UI)
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var out strings.Builder
	usage(&out, "serve")
	c := Default()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	bind(fs, &c)
	n := 0
	for _, f := range fields(&c, fs, fieldDocs) {
		if f.Flag == "" {
			continue
		}
		n++
		if !strings.Contains(out.String(), "-"+f.Flag+" ") && !strings.Contains(out.String(), "-"+f.Flag+"\n") {
			t.Errorf("--help does not list %s (--%s)", f.Key, f.Flag)
		}
	}
	for _, want := range []string{"-traces.retention", "-profiles.retention", "-generator.collection-interval", "-traces.storage.s3.bucket"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %s", want)
		}
	}
	if n < 50 {
		t.Errorf("only %d settings found", n)
	}
}

func TestEnvErrorNamesVariableValueAndForm(t *testing.T) {
	f := func(key, value string, want ...string) {
		t.Helper()
		_, err := Load("serve", nil, func(k string) string {
			if k == key {
				return value
			}
			return ""
		})
		if err == nil {
			t.Fatalf("%s=%s: no error", key, value)
		}
		for _, w := range append(want, key, value) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s=%s: error %q does not mention %q", key, value, err, w)
			}
		}
	}
	f("VISPYR_METRICS_RETENTION", "30days", "a duration such as 720h")
	f("VISPYR_TRACES_RETENTION", "1 week", "a duration such as 720h")
	f("VISPYR_LIMITS_MAX_REQUEST_BYTES", "64MiB", "a whole number")
	f("VISPYR_GENERATOR_DISABLE_SPAN_METRICS", "yes please", "true or false")
	f("VISPYR_GENERATOR_SPAN_METRICS_HISTOGRAM_BUCKETS", "0.1,1s", "comma-separated numbers")
}
