package deploy

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vispyr/vispyr/internal/config"
)

// HostConfig is what a deploy decides about the installed Vispyr; Render turns it
// into the YAML file `vispyr serve --config` reads on the host.
type HostConfig struct {
	DataDir string
	// CertFile and KeyFile serve TLS when ACME is nil.
	CertFile, KeyFile string
	ACME              *ACME
	// TokenSHA256 and Bcrypt are the hashes of the admin credentials.
	TokenSHA256, User, Bcrypt string
	// S3 keeps traces in a bucket instead of the data directory.
	S3 *S3
	// TracesRetention is traces.retention (0 keeps the default).
	TracesRetention time.Duration
}

// ACME asks Vispyr to obtain and renew its certificate itself.
type ACME struct {
	Domains      []string `yaml:"domains"`
	Email        string   `yaml:"email,omitempty"`
	DirectoryURL string   `yaml:"directory_url,omitempty"`
	// DirectoryCAFile trusts a private ACME server's HTTPS certificate (Pebble,
	// step-ca); empty uses the system roots.
	DirectoryCAFile string `yaml:"directory_ca_file,omitempty"`
	CacheDir        string `yaml:"cache_dir"`
}

// S3 is the trace bucket of an AWS deploy; credentials come from the instance role.
type S3 struct {
	Endpoint, Bucket, Region string
	// Prefix is prepended to every object name ("" for none).
	Prefix string
}

// Ports the installed Vispyr listens on. The UI takes 443; the APIs Grafana reads
// and the ingest ports keep their usual numbers; admin and health stay on loopback.
var (
	UIPort     = 443
	QueryPorts = []int{9090, 3200, 4040}
	// IngestPorts: OTLP gRPC, OTLP HTTP, Pyroscope ingest.
	IngestPorts = []int{4317, 4318, 9999}
	HealthURL   = "http://127.0.0.1:13133/health/status"
)

// Supports says whether this build's configuration has a top-level section, so a
// deploy never writes a key the binary would refuse at start-up.
func Supports(section string) bool {
	t := reflect.TypeOf(config.Config{})
	for i := 0; i < t.NumField(); i++ {
		if strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0] == section {
			return true
		}
	}
	return false
}

// Render writes the host's configuration file.
func (h HostConfig) Render() ([]byte, error) {
	doc := map[string]any{
		"data_dir": h.DataDir,
		"listen": map[string]string{
			"ui":               fmt.Sprintf(":%d", UIPort),
			"prometheus":       ":9090",
			"tempo":            ":3200",
			"pyroscope":        ":4040",
			"otlp_grpc":        ":4317",
			"otlp_http":        ":4318",
			"pyroscope_ingest": ":9999",
			"admin":            "127.0.0.1:12345",
			"health":           "127.0.0.1:13133",
		},
	}
	tlsSec := map[string]any{"min_version": "TLS12"}
	if h.ACME != nil {
		doc["acme"] = h.ACME
	} else {
		tlsSec["cert_file"], tlsSec["key_file"] = h.CertFile, h.KeyFile
	}
	doc["tls"] = tlsSec
	if Supports("auth") && h.TokenSHA256 != "" {
		doc["auth"] = map[string]any{
			"tokens": []map[string]any{{"name": "admin", "sha256": h.TokenSHA256, "scopes": []string{"write", "read", "admin"}}},
			"users":  []map[string]any{{"name": h.User, "bcrypt": h.Bcrypt, "scopes": []string{"read", "admin"}}},
		}
	}
	traces := map[string]any{}
	if h.TracesRetention > 0 {
		traces["retention"] = h.TracesRetention.String()
	}
	if h.S3 != nil {
		s3 := map[string]any{"endpoint": h.S3.Endpoint, "bucket": h.S3.Bucket, "region": h.S3.Region}
		if h.S3.Prefix != "" {
			s3["prefix"] = h.S3.Prefix
		}
		traces["storage"] = map[string]any{"backend": "s3", "s3": s3}
	}
	if len(traces) > 0 {
		doc["traces"] = traces
	}
	var buf bytes.Buffer
	buf.WriteString("# Written by `vispyr deploy`; running it again rewrites this file.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return buf.Bytes(), nil
}
