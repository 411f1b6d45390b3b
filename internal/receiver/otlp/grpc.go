package otlp

import (
	"context"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

// bytesPerItem estimates the memory one decoded span or data point holds, to
// charge gRPC requests (whose wire size the handler does not see) to the
// in-flight budget.
const bytesPerItem = 512

// RegisterGRPC registers the OTLP trace and metric services on srv. A nil
// consumer leaves its service unregistered, so clients get UNIMPLEMENTED.
func RegisterGRPC(srv *grpc.Server, traces pipeline.Traces, metrics pipeline.Metrics, inflight *limits.Inflight, opts ...Option) {
	tel := newTelemetry(opts)
	if traces != nil {
		g := &grpcTraces{next: traces, inflight: inflight, tel: tel}
		if raw, ok := traces.(pipeline.RawTraces); ok {
			g.raw = raw
			srv.RegisterService(&rawTraceService, g)
		} else {
			ptraceotlp.RegisterGRPCServer(srv, g)
		}
	}
	if logs := logsOption(opts); logs != nil {
		plogotlp.RegisterGRPCServer(srv, &grpcLogs{next: logs, inflight: inflight, tel: tel})
	}
	if metrics != nil {
		pmetricotlp.RegisterGRPCServer(srv, &grpcMetrics{next: metrics, inflight: inflight, tel: tel})
	}
}

type grpcTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	next     pipeline.Traces
	raw      pipeline.RawTraces // next, when it takes requests as bytes
	inflight *limits.Inflight
	tel      *telemetry
}

func (g *grpcTraces) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	td := req.Traces()
	return g.consume(ctx, td.SpanCount(), func(ctx context.Context) error { return g.next.ConsumeTraces(ctx, td) })
}

// exportRaw hands a request the walk accepted to the raw consumer; one the
// walk left to pdata takes the decoded path.
func (g *grpcTraces) exportRaw(ctx context.Context, req *rawTraceRequest) (*rawMessage, error) {
	var resp ptraceotlp.ExportResponse
	var err error
	if req.isDecoded {
		resp, err = g.Export(ctx, req.decoded)
	} else {
		resp, err = g.consume(ctx, req.spans, func(ctx context.Context) error {
			return g.raw.ConsumeRawTraces(ctx, req.body, req.spans)
		})
	}
	if err != nil {
		return nil, err
	}
	b, err := resp.MarshalProto()
	if err != nil {
		return nil, status.Error(codes.Internal, "encode response: "+err.Error())
	}
	return &rawMessage{b: b}, nil
}

// consume charges spans to the in-flight budget, calls next and answers as
// OTLP asks: partial success in the response, errors as gRPC statuses.
func (g *grpcTraces) consume(ctx context.Context, spans int, next func(context.Context) error) (ptraceotlp.ExportResponse, error) {
	cost := int64(spans) * bytesPerItem
	if !g.inflight.Acquire(cost) {
		g.tel.reject("traces", "overloaded")
		return ptraceotlp.NewExportResponse(), overloadedStatus("too much data being ingested at once; retry later")
	}
	defer g.inflight.Release(cost)
	resp := ptraceotlp.NewExportResponse()
	if err := next(tenantContext(ctx)); err != nil {
		pe, ok := pipeline.AsPartial(err)
		if !ok {
			g.tel.reject("traces", reason(err))
			return resp, grpcStatus(err)
		}
		resp.PartialSuccess().SetRejectedSpans(pe.Rejected)
		resp.PartialSuccess().SetErrorMessage(pe.Error())
		spans -= int(pe.Rejected)
	}
	g.tel.accept("traces", spans)
	return resp, nil
}

type grpcMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	next     pipeline.Metrics
	inflight *limits.Inflight
	tel      *telemetry
}

func (g *grpcMetrics) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	md := req.Metrics()
	cost := int64(md.DataPointCount()) * bytesPerItem
	if !g.inflight.Acquire(cost) {
		g.tel.reject("metrics", "overloaded")
		return pmetricotlp.NewExportResponse(), overloadedStatus("too much data being ingested at once; retry later")
	}
	defer g.inflight.Release(cost)
	points := md.DataPointCount()
	resp := pmetricotlp.NewExportResponse()
	if err := g.next.ConsumeMetrics(tenantContext(ctx), md); err != nil {
		pe, ok := pipeline.AsPartial(err)
		if !ok {
			g.tel.reject("metrics", reason(err))
			return resp, grpcStatus(err)
		}
		resp.PartialSuccess().SetRejectedDataPoints(pe.Rejected)
		resp.PartialSuccess().SetErrorMessage(pe.Error())
		points -= int(pe.Rejected)
	}
	g.tel.accept("metrics", points)
	return resp, nil
}

type grpcLogs struct {
	plogotlp.UnimplementedGRPCServer
	next     pipeline.Logs
	inflight *limits.Inflight
	tel      *telemetry
}

func (g *grpcLogs) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	ld := req.Logs()
	cost := int64(ld.LogRecordCount()) * bytesPerItem
	if !g.inflight.Acquire(cost) {
		g.tel.reject("logs", "overloaded")
		return plogotlp.NewExportResponse(), overloadedStatus("too much data being ingested at once; retry later")
	}
	defer g.inflight.Release(cost)
	records := ld.LogRecordCount()
	resp := plogotlp.NewExportResponse()
	if err := g.next.ConsumeLogs(tenantContext(ctx), logpush.FromOTLP(ld)); err != nil {
		pe, ok := pipeline.AsPartial(err)
		if !ok {
			g.tel.reject("logs", reason(err))
			return resp, grpcStatus(err)
		}
		resp.PartialSuccess().SetRejectedLogRecords(pe.Rejected)
		resp.PartialSuccess().SetErrorMessage(pe.Error())
		records -= int(pe.Rejected)
	}
	g.tel.accept("logs", records)
	return resp, nil
}

// tenantContext carries the X-Scope-OrgID metadata into the pipeline context.
func tenantContext(ctx context.Context) context.Context {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-scope-orgid"); len(v) > 0 {
			return pipeline.WithTenant(ctx, v[0])
		}
	}
	return ctx
}
