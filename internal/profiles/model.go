// Package profiles stores continuous profiles: a WAL for durability, an in-memory
// head for recent data and immutable blocks on disk, with stacks and function names
// de-duplicated per head/block. Queries merge samples into function-name trees that
// the API turns into flame graphs or pprof.
package profiles

import "github.com/vispyr/vispyr/internal/pipeline/profile"

// The profile model is the pipeline's (internal/pipeline/profile): the store takes
// what the receivers decode.
type (
	Batch       = profile.Batch
	Profile     = profile.Profile
	Sample      = profile.Sample
	ProfileType = profile.ProfileType
)

// Well-known label names, as Pyroscope names them.
const (
	LabelServiceName = profile.LabelServiceName
	LabelProfileType = profile.LabelProfileType
	LabelMetricName  = profile.LabelMetricName
	// labelTenant is kept in series labels so one index serves all tenants; it is
	// never shown to clients.
	labelTenant = "__tenant__"
)

// ParseProfileType splits a profile type ID into its five parts.
func ParseProfileType(id string) (ProfileType, error) { return profile.ParseProfileType(id) }

// EncodeBatch appends the WAL form of b to dst.
func EncodeBatch(dst []byte, b *Batch) []byte { return profile.EncodeBatch(dst, b) }

// DecodeBatch decodes what EncodeBatch wrote.
func DecodeBatch(buf []byte) (*Batch, error) { return profile.DecodeBatch(buf) }
