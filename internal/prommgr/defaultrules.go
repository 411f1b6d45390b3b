package prommgr

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/template"

	"github.com/prometheus/common/model"
)

//go:embed rules/vispyr.rules.yml.tmpl
var defaultRulesTemplate string

// defaultRulesTmpl uses <% %> so that Prometheus's own {{ }} alert templates
// pass through untouched.
var defaultRulesTmpl = template.Must(template.New("vispyr.rules.yml").Delims("<%", "%>").Parse(defaultRulesTemplate))

// RenderDefaultRules returns the shipped rule file for the thresholds in r.
func RenderDefaultRules(r DefaultRules) ([]byte, error) {
	pct := func(f float64) string { return strconv.FormatFloat(f*100, 'f', -1, 64) }
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	var b bytes.Buffer
	err := defaultRulesTmpl.Execute(&b, map[string]string{
		"Interval":              model.Duration(r.Interval).String(),
		"For":                   model.Duration(r.For).String(),
		"RateWindow":            model.Duration(r.RateWindow).String(),
		"ErrorRatio":            num(r.ErrorRatio),
		"ErrorRatioPercent":     pct(r.ErrorRatio),
		"P99Seconds":            num(r.P99Latency.Seconds()),
		"P99Latency":            r.P99Latency.String(),
		"HostCPU":               num(r.HostCPU),
		"HostCPUPercent":        pct(r.HostCPU),
		"HostMemory":            num(r.HostMemory),
		"HostMemoryFreePercent": pct(1 - r.HostMemory),
		"HostDisk":              num(r.HostDisk),
		"HostDiskPercent":       pct(r.HostDisk),
	})
	if err != nil {
		return nil, fmt.Errorf("render default rules: %w", err)
	}
	return b.Bytes(), nil
}

// writeDefaultRules renders the shipped rules into dir and returns the file's
// path, so the rules manager loads them like any rule file and the API and
// error messages name a file the user can open.
func writeDefaultRules(dir string, r DefaultRules) (string, error) {
	b, err := RenderDefaultRules(r)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("make rules dir: %w", err)
	}
	path := filepath.Join(dir, "vispyr.rules.yml")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return "", fmt.Errorf("write default rules: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write default rules: %w", err)
	}
	return path, nil
}
