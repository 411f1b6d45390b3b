package forward

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
)

// Config is the forward: section of the configuration: where each signal is
// sent on, besides (serve) or instead of (gateway) the local stores.
type Config struct {
	Metrics  []Destination `yaml:"metrics"`  // Remote-write destinations of every sample
	Traces   []Destination `yaml:"traces"`   // OTLP destinations of every span
	Profiles []Destination `yaml:"profiles"` // Pyroscope destinations of every profile
	Logs     []Destination `yaml:"logs"`     // Loki destinations of every log line (push API)
}

// Destination is one place a signal is forwarded to, with its own durable queue.
type Destination struct {
	// Name identifies the destination in metrics, logs and the queue's directory;
	// it defaults to the URL's host.
	Name string `yaml:"name"`
	// URL is, for metrics, the remote-write URL (http://mimir/api/v1/push); for
	// traces, the OTLP/HTTP base URL (http://tempo:4318) or grpc://host:4317; for
	// profiles, the Pyroscope base URL (http://pyroscope:4040); for logs, the
	// Loki base URL (http://loki:3100).
	URL string `yaml:"url"`
	// Protocol is, for metrics, the remote-write version: "1.0" (default) or "2.0".
	Protocol string `yaml:"protocol"`
	// Headers are added to every request.
	Headers map[string]string `yaml:"headers"`
	// BasicAuth, Authorization and TLSConfig are Prometheus's own HTTP client
	// settings (the same keys as in remote_write).
	BasicAuth     *commoncfg.BasicAuth     `yaml:"basic_auth"`
	Authorization *commoncfg.Authorization `yaml:"authorization"`
	TLSConfig     commoncfg.TLSConfig      `yaml:"tls_config"`
	// Tenant, when set, is sent as X-Scope-OrgID whatever the sender gave.
	Tenant string `yaml:"tenant"`
	// TenantMap renames the sender's X-Scope-OrgID; a tenant not in the map
	// passes through unchanged.
	TenantMap map[string]string `yaml:"tenant_map"`
	Queue     QueueConfig       `yaml:"queue"`
}

// QueueConfig tunes a destination's durable queue and its senders.
type QueueConfig struct {
	// MaxBytes bounds the queue on disk; when it is full, ingest answers 429
	// (503 for remote write) with Retry-After.
	MaxBytes int64 `yaml:"max_bytes"`
	// Shards are parallel senders. Metrics keep each series on one shard, so
	// its samples arrive in order.
	Shards int `yaml:"shards"`
	// MaxBatchItems (samples, spans or profiles) and BatchDeadline bound a batch.
	MaxBatchItems int           `yaml:"max_batch_items"`
	BatchDeadline time.Duration `yaml:"batch_deadline"`
	// MinBackoff and MaxBackoff bound the exponential back-off between retries.
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Timeout bounds one request.
	Timeout time.Duration `yaml:"timeout"`
}

// defaultQueue follows Prometheus's remote-write queue defaults where it has one.
func defaultQueue() QueueConfig {
	return QueueConfig{
		MaxBytes:      1 << 30,
		Shards:        4,
		MaxBatchItems: 2000,
		BatchDeadline: 5 * time.Second,
		MinBackoff:    30 * time.Millisecond,
		MaxBackoff:    5 * time.Second,
		Timeout:       30 * time.Second,
	}
}

// fill gives zero fields their defaults.
func (q *QueueConfig) fill() {
	d := defaultQueue()
	if q.MaxBytes == 0 {
		q.MaxBytes = d.MaxBytes
	}
	if q.Shards == 0 {
		q.Shards = d.Shards
	}
	if q.MaxBatchItems == 0 {
		q.MaxBatchItems = d.MaxBatchItems
	}
	if q.BatchDeadline == 0 {
		q.BatchDeadline = d.BatchDeadline
	}
	if q.MinBackoff == 0 {
		q.MinBackoff = d.MinBackoff
	}
	if q.MaxBackoff == 0 {
		q.MaxBackoff = d.MaxBackoff
	}
	if q.Timeout == 0 {
		q.Timeout = d.Timeout
	}
}

// Empty reports whether nothing is forwarded.
func (c Config) Empty() bool {
	return len(c.Metrics)+len(c.Traces)+len(c.Profiles)+len(c.Logs) == 0
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Validate fills defaults (names, queue settings) and names the first bad field.
func (c *Config) Validate() error {
	for signal, dests := range map[string][]Destination{"metrics": c.Metrics, "traces": c.Traces, "profiles": c.Profiles, "logs": c.Logs} {
		seen := map[string]bool{}
		for i := range dests {
			d := &dests[i]
			if err := d.validate(signal); err != nil {
				return fmt.Errorf("%s[%d]: %w", signal, i, err)
			}
			if seen[d.Name] {
				return fmt.Errorf("%s[%d]: name %q is used twice", signal, i, d.Name)
			}
			seen[d.Name] = true
		}
	}
	return nil
}

func (d *Destination) validate(signal string) error {
	u, err := url.Parse(d.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("url: %q is not an absolute URL", d.URL)
	}
	switch u.Scheme {
	case "http", "https":
	case "grpc", "grpcs":
		if signal != "traces" {
			return fmt.Errorf("url: %s scheme is for traces only", u.Scheme)
		}
	default:
		return fmt.Errorf("url: scheme %q is not http, https (or grpc, grpcs for traces)", u.Scheme)
	}
	if d.Name == "" {
		d.Name = strings.ReplaceAll(u.Host, ":", "_")
	}
	if !nameRE.MatchString(d.Name) {
		return fmt.Errorf("name: %q may hold only letters, digits, '.', '_' and '-'", d.Name)
	}
	switch d.Protocol {
	case "":
		if signal == "metrics" {
			d.Protocol = "1.0"
		}
	case "1.0", "2.0":
		if signal != "metrics" {
			return errors.New("protocol: only metrics destinations choose a protocol")
		}
	default:
		return fmt.Errorf("protocol: %q is not 1.0 or 2.0", d.Protocol)
	}
	d.Queue.fill()
	q := d.Queue
	switch {
	case q.MaxBytes < 1<<20:
		return errors.New("queue.max_bytes: must be at least 1 MiB")
	case q.Shards < 1 || q.Shards > 256:
		return errors.New("queue.shards: must be between 1 and 256")
	case q.MaxBatchItems < 1:
		return errors.New("queue.max_batch_items: must be positive")
	case q.BatchDeadline < 0 || q.MinBackoff < 0 || q.Timeout < 0:
		return errors.New("queue: durations must be positive")
	case q.MaxBackoff < q.MinBackoff:
		return errors.New("queue.max_backoff: must not be less than min_backoff")
	}
	return nil
}

// httpClientConfig is the Prometheus HTTP client configuration of d.
func (d *Destination) httpClientConfig() commoncfg.HTTPClientConfig {
	c := commoncfg.DefaultHTTPClientConfig
	c.BasicAuth = d.BasicAuth
	c.Authorization = d.Authorization
	c.TLSConfig = d.TLSConfig
	return c
}

// tenantFor is the X-Scope-OrgID sent for data the sender gave as tenant
// ("" when none).
func (d *Destination) tenantFor(tenant string) string {
	if d.Tenant != "" {
		return d.Tenant
	}
	if t, ok := d.TenantMap[tenant]; ok {
		return t
	}
	return tenant
}
