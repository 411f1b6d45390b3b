package pipeline

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// Rows consumes spans in the trace store's row form (spanrow), decoded
// straight from a request's bytes by spanrow.FromProto: the trace store and
// the span-metrics generator, which would otherwise each build their own
// form from pdata.
//
// Ownership: the first consumer of a RowTraces (the store) keeps rows; the
// ones after it only read them during the call and copy what they keep.
// Durability and errors: as Traces. A consumer whose rules change spans (the
// store's limits cut attributes and drop spans, on pdata) refuses a batch
// they apply to with ErrWantTraces, before it keeps anything: the caller
// then hands it the same spans through ConsumeTraces.
type Rows interface {
	ConsumeRows(ctx context.Context, rows []spanrow.Span) error
}

// ErrWantTraces is a Rows consumer's answer to a batch it takes only as pdata.
var ErrWantTraces = errors.New("batch wanted as pdata")

// RowTraces is the trace path for requests that arrive as their bytes
// (RawTraces): it decodes each request once, straight into rows, for every
// consumer that keeps or reads rows, and hands a forwarder the bytes as they
// came. Requests that come decoded (OTLP/JSON, Faro), requests FromProto
// leaves to pdata, and batches a consumer wants as pdata go through Traces,
// the same path over pdata.
type RowTraces struct {
	// Admit, if set, is asked before anything is stored (a full disk, a full
	// forward queue), so that the store does not keep what the forwarder refuses.
	Admit func(ctx context.Context) error
	// Store keeps the spans first and makes them durable; nil in a gateway.
	Store Rows
	// Forward, if set, gets the request's bytes once Store has the spans.
	Forward RawTraces
	// After, if set, reads the spans once they are accepted: the generator.
	// It must not answer ErrWantTraces.
	After Rows
	// Traces is the same path over pdata.
	Traces Traces
}

// ConsumeTraces hands td to the path over pdata.
func (r *RowTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	return r.Traces.ConsumeTraces(ctx, td)
}

// ConsumeRawTraces implements RawTraces.
func (r *RowTraces) ConsumeRawTraces(ctx context.Context, req []byte, spans int) error {
	if r.Admit != nil { // before the decode: a refused request costs nothing
		if err := r.Admit(ctx); err != nil {
			return err
		}
	}
	rows, err := spanrow.FromProto(req, spans, nil)
	if err != nil {
		return r.viaTraces(ctx, req)
	}
	if r.Store != nil {
		if err := r.Store.ConsumeRows(ctx, rows); errors.Is(err, ErrWantTraces) {
			return r.viaTraces(ctx, req)
		} else if err != nil {
			return err
		}
	}
	if r.Forward != nil {
		if err := r.Forward.ConsumeRawTraces(ctx, req, spans); err != nil {
			return err
		}
	}
	if r.After != nil {
		return r.After.ConsumeRows(ctx, rows)
	}
	return nil
}

// viaTraces decodes req with pdata and hands it to Traces.
func (r *RowTraces) viaTraces(ctx context.Context, req []byte) error {
	er := ptraceotlp.NewExportRequest()
	if err := er.UnmarshalProto(req); err != nil {
		// Receivers pass only requests pdata reads (RawTraces' contract).
		return Invalid(fmt.Errorf("decode trace export request: %w", err))
	}
	return r.Traces.ConsumeTraces(ctx, er.Traces())
}
