package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vispyr.yaml")
	yaml := "data_dir: /from/file\nmetrics:\n  retention: 48h\n  query_timeout: 1m\nlisten:\n  ui: \":3001\"\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VISPYR_METRICS_RETENTION": "72h", "VISPYR_DATA_DIR": "/from/env"}
	cfg, err := Load("serve", []string{"--config", file, "--data-dir", "/from/flag"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/from/flag" {
		t.Errorf("flag must win over env and file: data_dir = %q", cfg.DataDir)
	}
	if cfg.Metrics.Retention != 72*time.Hour {
		t.Errorf("env must win over file: retention = %v", cfg.Metrics.Retention)
	}
	if cfg.Metrics.QueryTimeout != time.Minute || cfg.Listen.UI != ":3001" {
		t.Errorf("file values lost: %+v", cfg)
	}
	if cfg.Listen.Prometheus != ":9090" {
		t.Errorf("defaults lost: prometheus listen = %q", cfg.Listen.Prometheus)
	}
}

func TestLoadRejectsBadInputNamingTheField(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f := func(args []string, want string) {
		t.Helper()
		_, err := Load("serve", args, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%q) error = %v, want it to mention %q", args, err, want)
		}
	}
	f([]string{"--metrics.retention", "0s"}, "metrics.retention")
	f([]string{"--log.level", "loud"}, "log_level")
	f([]string{"--tempo.listen-address", "3200"}, "listen.tempo")
	f([]string{"--config", write("typo.yaml", "metrics:\n  retension: 1h\n")}, "retension")
	f([]string{"--config", filepath.Join(dir, "missing.yaml")}, "open config")
	f([]string{"--no-such-flag"}, "no-such-flag")
}

func TestEmptyListenAddressTurnsListenerOff(t *testing.T) {
	cfg, err := Load("serve", []string{"--ui.listen-address="}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.UI != "" {
		t.Fatalf("ui listen = %q, want empty", cfg.Listen.UI)
	}
}
