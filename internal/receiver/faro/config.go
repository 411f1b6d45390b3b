package faro

import (
	"errors"
	"fmt"
)

// Config is the Faro receiver's behaviour beyond its listen address, with the
// settings and defaults of Alloy's faro.receiver.
type Config struct {
	// CORSAllowedOrigins are the origins (scheme://host[:port], "*" for any,
	// "https://*.example.com" for subdomains) whose pages may post to the
	// receiver from a browser. Empty: no CORS headers, so only same-origin
	// pages (or a backend forwarding /collect) can send, as Alloy's default.
	CORSAllowedOrigins []string `yaml:"cors_allowed_origins"`
	// APIKey, when set, is required in every request's x-api-key header (the
	// Faro SDK's apiKey option); others are answered 401.
	APIKey string `yaml:"api_key"`
	// MaxPayloadBytes refuses larger request bodies with 413.
	MaxPayloadBytes int64 `yaml:"max_payload_bytes"`
	// RateLimiting bounds the requests per second the receiver accepts from
	// all clients together; more are answered 429 with Retry-After.
	RateLimiting RateLimiting `yaml:"rate_limiting"`
	// ExtraLogLabels are added to every log line's stream labels. A label
	// with an empty value takes the value of that key in the line (for
	// example app_environment or browser_name), as Alloy's extra_log_labels.
	ExtraLogLabels map[string]string `yaml:"extra_log_labels"`
	// LogFormat is how lines are written: logfmt (Alloy's default) or json.
	LogFormat string `yaml:"log_format"`
}

// RateLimiting is a token bucket over all requests.
type RateLimiting struct {
	// Enabled turns the limit on (the default, as Alloy's).
	Enabled bool `yaml:"enabled"`
	// Rate is the sustained requests per second.
	Rate float64 `yaml:"rate"`
	// BurstSize is how many requests may come at once above Rate.
	BurstSize float64 `yaml:"burst_size"`
}

// Defaults returns Alloy's faro.receiver defaults: a 5 MiB payload limit,
// 50 requests/s with bursts of 100, logfmt lines.
func Defaults() Config {
	c := Config{RateLimiting: RateLimiting{Enabled: true}}
	c.fill()
	return c
}

// fill sets every zero field that has a default.
func (c *Config) fill() {
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = 5 << 20
	}
	if c.RateLimiting.Rate == 0 {
		c.RateLimiting.Rate = 50
	}
	if c.RateLimiting.BurstSize == 0 {
		c.RateLimiting.BurstSize = 100
	}
	if c.LogFormat == "" {
		c.LogFormat = FormatLogfmt
	}
}

// Log line formats.
const (
	FormatLogfmt = "logfmt"
	FormatJSON   = "json"
)

// Validate refuses settings the receiver cannot run with.
func (c *Config) Validate() error {
	if c.MaxPayloadBytes < 0 {
		return errors.New("max_payload_bytes must be >= 0")
	}
	if c.RateLimiting.Rate < 0 || c.RateLimiting.BurstSize < 0 {
		return errors.New("rate_limiting.rate and burst_size must be >= 0")
	}
	if c.LogFormat != FormatLogfmt && c.LogFormat != FormatJSON {
		return fmt.Errorf("log_format %q: want logfmt or json", c.LogFormat)
	}
	for k := range c.ExtraLogLabels {
		if !validLabelName(k) {
			return fmt.Errorf("extra_log_labels: %q is not a valid label name", k)
		}
	}
	return nil
}

func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
