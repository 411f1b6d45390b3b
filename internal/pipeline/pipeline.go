// Package pipeline holds the contracts between receivers and the components that
// consume what they decode: stores, forwarders and the span-metrics generator.
// Receivers depend on these interfaces only, never on a concrete store.
package pipeline

import (
	"context"
	"errors"
	"syscall"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/pipeline/logpush"
	"github.com/vispyr/vispyr/internal/pipeline/profile"
	"github.com/vispyr/vispyr/internal/pipeline/remotewrite"
)

// Traces consumes decoded OTLP traces. ConsumeTraces returns only once the data is
// durable (it survives kill -9) or with an error; the caller must not keep td.
type Traces interface {
	ConsumeTraces(ctx context.Context, td ptrace.Traces) error
}

// RawTraces is implemented by a Traces consumer that can take an OTLP trace
// export as the protobuf bytes it came in, sparing the receiver's decode into
// pdata: the trace forwarder queues the bytes as they are, and RowTraces
// decodes them straight into the rows the trace store and the span-metrics
// generator keep and read.
//
// Receivers call ConsumeRawTraces instead of ConsumeTraces only with the
// bytes of an ExportTraceServiceRequest that ptraceotlp's UnmarshalProto
// accepts, that holds spans spans (pdata's SpanCount), and that protobuf's
// own parsers read as pdata does: no deprecated field pdata migrates
// (instrumentation_library_spans), no group, varint with bits past the
// 64th or field number past 2^29-1, which pdata reads by rules of its own. Decoding req
// gives exactly the ptrace.Traces ConsumeTraces would get; unknown fields
// are kept, as any OTLP receiver ignores them. Requests outside that are
// decoded, and encoded again by the consumer, as before.
//
// Ownership: req belongs to the caller and is reused once the call returns;
// a consumer that keeps it copies it. Durability and errors: as Traces.
type RawTraces interface {
	Traces
	ConsumeRawTraces(ctx context.Context, req []byte, spans int) error
}

// Metrics consumes decoded OTLP metrics, with the same durability promise as Traces.
type Metrics interface {
	ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error
}

// Samples consumes decoded Prometheus remote-write requests (v1 and v2: series,
// float samples, native histograms, exemplars, v2 metadata). The metrics store
// (metrics.RemoteWriteAppender) and a metrics forwarder implement it.
//
// Ownership: req and every string and slice reached from it (they alias the
// request body) belong to the caller and are reused once the call returns; a
// consumer that keeps anything copies it first (labels.ScratchBuilder, bytes.Clone
// of req.Raw()). Durability: what Written counts is durable when the call returns
// (in the TSDB's WAL, or fsync'd in a forwarder's queue). Errors, answered as
// Prometheus's receiver answers them: Invalid (400; v1 then stored nothing, v2
// stored what Written counts), ErrOverloaded (503 with Retry-After, which
// Prometheus retries), anything else 500 (retried).
type Samples interface {
	ConsumeSamples(ctx context.Context, req *remotewrite.Request) (remotewrite.Written, error)
}

// Profiles consumes decoded profiles (Pyroscope /ingest and push). The profile
// store and a profile forwarder implement it.
//
// Ownership: b belongs to the consumer once the call starts (it may keep it, modify
// its labels or hand it to another goroutine); the caller must not use b afterwards.
// Durability: a nil return means b is durable (it survives kill -9): in the store's
// WAL, or fsync'd in a forwarder's queue. Errors: Invalid input (400), ErrOverloaded
// (429 with Retry-After: the store's pending bytes or a forwarder's queue is full),
// anything else is a server error (500) the client retries.
type Profiles interface {
	ConsumeProfiles(ctx context.Context, b *profile.Batch) error
}

// Logs consumes decoded log pushes (Loki push, OTLP logs converted with
// logpush.FromOTLP, Faro). The log store and a log forwarder implement it.
//
// Ownership: req belongs to the consumer once the call starts; the caller must not
// use it afterwards. Durability: a nil return means every line is durable (fsync'd
// in the store's WAL or a forwarder's queue). Errors: Invalid (400: nothing was
// stored), a PartialError (some lines were stored and Rejected were refused for
// the reason in Err, as Loki answers a push with some invalid lines: 400 for Loki
// push, partial success for OTLP), ErrOverloaded (429 with Retry-After), anything
// else 500 (retried).
type Logs interface {
	ConsumeLogs(ctx context.Context, req *logpush.Request) error
}

// TracesFunc adapts a function to Traces.
type TracesFunc func(ctx context.Context, td ptrace.Traces) error

// ConsumeTraces calls f.
func (f TracesFunc) ConsumeTraces(ctx context.Context, td ptrace.Traces) error { return f(ctx, td) }

// ErrOverloaded is returned (possibly wrapped) when a consumer sheds load. Receivers
// answer it with HTTP 429 / gRPC RESOURCE_EXHAUSTED and a Retry-After hint.
var ErrOverloaded = errors.New("overloaded, retry later")

// ErrDiskFull is returned (wrapped in a message naming the store and the free
// bytes) when a store refuses writes because its filesystem is nearly full.
// It is temporary: the write succeeds once space returns. Receivers answer it
// with HTTP 503 / gRPC RESOURCE_EXHAUSTED and a Retry-After hint, which every
// client retries (OTLP/HTTP clients do not retry 507).
var ErrDiskFull = errors.New("disk full")

// IsDiskFull reports whether err is, or wraps, ErrDiskFull or the kernel's
// ENOSPC/EDQUOT, which a store can hit between two checks of the free space.
func IsDiskFull(err error) bool {
	return errors.Is(err, ErrDiskFull) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// InvalidError marks input that can never succeed: receivers answer it with HTTP 400 /
// gRPC INVALID_ARGUMENT so that clients do not retry.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// Invalid wraps err as an InvalidError.
func Invalid(err error) error { return &InvalidError{Err: err} }

// IsInvalid reports whether err is, or wraps, an InvalidError.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

// PartialError reports that a consumer stored part of a batch and refused
// Rejected items for the reason in Err. Receivers answer it as OTLP partial
// success: a 2xx whose body names what was refused, never a silent drop.
type PartialError struct {
	Rejected int64
	Err      error
}

func (e *PartialError) Error() string { return e.Err.Error() }
func (e *PartialError) Unwrap() error { return e.Err }

// AsPartial returns the PartialError in err's chain, if any.
func AsPartial(err error) (*PartialError, bool) {
	var pe *PartialError
	ok := errors.As(err, &pe)
	return pe, ok
}

// FanOutTraces sends every batch to each consumer in order and returns the first error.
// The first consumer should be the durable store: later ones (the generator) see only
// data that was accepted.
type FanOutTraces []Traces

// A partial success of the first consumer still reaches the later ones (with
// what was accepted) and is returned at the end.
func (f FanOutTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	var partial error
	for _, c := range f {
		if err := c.ConsumeTraces(ctx, td); err != nil {
			if _, ok := AsPartial(err); !ok {
				return err
			}
			partial = err
		}
	}
	return partial
}

type tenantKey struct{}

// DefaultTenant is used when a request carries no X-Scope-OrgID.
const DefaultTenant = "single-tenant"

// WithTenant returns ctx carrying the tenant ID taken from X-Scope-OrgID.
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// Tenant returns the tenant in ctx, or DefaultTenant.
func Tenant(ctx context.Context) string {
	if t, ok := ctx.Value(tenantKey{}).(string); ok && t != "" {
		return t
	}
	return DefaultTenant
}

// LimitError reports that a tenant's limit (ingestion rate, active series)
// refused data. Receivers answer it as Mimir does, 429 /
// RESOURCE_EXHAUSTED with its message and a Retry-After, remote write
// included (a limit is not an outage: Prometheus retries 429 only when told
// to). It matches ErrOverloaded for receivers that know no more.
type LimitError struct{ Msg string }

func (e *LimitError) Error() string { return e.Msg }

// Is makes a LimitError match ErrOverloaded.
func (e *LimitError) Is(target error) bool { return target == ErrOverloaded }

// IsLimit reports whether err is, or wraps, a LimitError.
func IsLimit(err error) bool {
	var le *LimitError
	return errors.As(err, &le)
}
