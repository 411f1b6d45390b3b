package servicegraph

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/prometheus/util/strutil"

	"github.com/vispyr/vispyr/internal/generator/series"
)

// Config configures the service-graph processor. Names and defaults follow
// Tempo's metrics-generator service_graphs block.
type Config struct {
	// Wait is how long one side of a request waits for the other before the
	// edge expires (and may become a virtual-node edge).
	Wait time.Duration `yaml:"wait"`
	// MaxItems caps the unpaired edges held in memory; spans beyond it are
	// counted in traces_service_graph_dropped_spans_total.
	MaxItems int `yaml:"max_items"`
	// HistogramBuckets are the latency bucket bounds in seconds.
	HistogramBuckets []float64 `yaml:"histogram_buckets"`
	// Dimensions are resource or span attributes added as labels.
	Dimensions []string `yaml:"dimensions"`
	// EnableClientServerPrefix labels each dimension twice, client_<name>
	// from the client span and server_<name> from the server span.
	EnableClientServerPrefix bool `yaml:"enable_client_server_prefix"`
	// PeerAttributes name an uninstrumented peer (virtual node), first match
	// wins.
	PeerAttributes []string `yaml:"peer_attributes"`
	// DatabaseNameAttributes mark a client span as a database call and, when
	// no peer.service/server.address/network.peer.address names the server,
	// name the database node; first match wins.
	DatabaseNameAttributes []string `yaml:"database_name_attributes"`
	// EnableVirtualNodeLabel adds virtual_node="client"|"server" to edges
	// whose other side was inferred.
	EnableVirtualNodeLabel bool `yaml:"enable_virtual_node_label"`
	// MaxActiveSeries caps the Prometheus series this processor keeps.
	MaxActiveSeries int `yaml:"max_active_series"`
}

// DefaultBuckets are Tempo's service-graph buckets: 0.1s doubling to 12.8s.
func DefaultBuckets() []float64 {
	b := make([]float64, 8)
	for i, v := 0, 0.1; i < len(b); i, v = i+1, v*2 {
		b[i] = v
	}
	return b
}

// Defaults sets every field to its default. Call it before unmarshalling
// YAML so that only the fields a user writes change.
func (c *Config) Defaults() {
	*c = Config{
		Wait:                   10 * time.Second,
		MaxItems:               10_000,
		HistogramBuckets:       DefaultBuckets(),
		PeerAttributes:         []string{"peer.service", "db.name", "db.system", "db.system.name"},
		DatabaseNameAttributes: []string{"db.namespace", "db.name", "db.system", "db.system.name"},
		MaxActiveSeries:        100_000,
	}
}

var reserved = []string{LabelClient, LabelServer, LabelConnectionType, LabelVirtualNode, "le"}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if c.Wait <= 0 {
		return fmt.Errorf("wait: %v must be positive", c.Wait)
	}
	if c.MaxItems <= 0 {
		return fmt.Errorf("max_items: %d must be positive", c.MaxItems)
	}
	if err := series.ValidateBuckets(c.HistogramBuckets); err != nil {
		return fmt.Errorf("histogram_buckets: %w", err)
	}
	seen := map[string]bool{}
	for _, d := range c.Dimensions {
		if d == "" {
			return errors.New("dimensions: empty attribute name")
		}
		for _, l := range dimensionLabels(d, c.EnableClientServerPrefix) {
			if slices.Contains(reserved, l) || len(l) >= 2 && l[:2] == "__" {
				return fmt.Errorf("dimensions: %q would become label %q, which is reserved", d, l)
			}
			if seen[l] {
				return fmt.Errorf("dimensions: %q would become label %q twice", d, l)
			}
			seen[l] = true
		}
	}
	if per := seriesPerEdge(c.HistogramBuckets); c.MaxActiveSeries < per {
		return fmt.Errorf("max_active_series: %d is less than the %d series one edge needs", c.MaxActiveSeries, per)
	}
	return nil
}

func dimensionLabels(attr string, prefix bool) []string {
	if prefix {
		return []string{strutil.SanitizeLabelName("client_" + attr), strutil.SanitizeLabelName("server_" + attr)}
	}
	return []string{strutil.SanitizeLabelName(attr)}
}
