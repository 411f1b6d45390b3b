package auth

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// TenantHeader names the tenant of a request, as in Mimir, Tempo and Pyroscope.
const TenantHeader = "X-Scope-OrgID"

// Open marks a route that needs no credentials (orchestrator probes).
const Open Scope = ""

// Rule says which scope a request needs.
type Rule func(*http.Request) Scope

// HTTP asks every request for credentials holding the scope rule names, and
// rewrites X-Scope-OrgID to the tenant the credential acts as, so handlers
// downstream keep reading the header and can trust it. Missing or wrong
// credentials get 401 with WWW-Authenticate; a scope or tenant the credential
// lacks gets 403.
func (a *Authenticator) HTTP(rule Rule, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope := rule(r)
		if scope == Open {
			next.ServeHTTP(w, r)
			return
		}
		id, err := a.Authenticate(r.Header.Get("Authorization"))
		if errors.Is(err, ErrBusy) {
			writeBusy(w)
			return
		}
		if err != nil {
			w.Header().Add("WWW-Authenticate", `Basic realm="vispyr", charset="UTF-8"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="vispyr"`)
			http.Error(w, "Unauthorized: "+err.Error(), http.StatusUnauthorized)
			return
		}
		tenant, err := id.Authorize(scope, r.Header.Get(TenantHeader))
		if err != nil {
			http.Error(w, "Forbidden: "+err.Error(), http.StatusForbidden)
			return
		}
		r = r.Clone(r.Context())
		setTenant(r.Header, tenant)
		// The credentials stop here: no handler (or proxied backend) sees them.
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r)
	})
}

// writeBusy answers 429 with Retry-After, which every client Vispyr serves
// retries on.
func writeBusy(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	http.Error(w, ErrBusy.Error(), http.StatusTooManyRequests)
}

// setTenant writes the tenant the way an unauthenticated client would have:
// the default tenant is no header at all.
func setTenant(h http.Header, tenant string) {
	if tenant == pipeline.DefaultTenant {
		h.Del(TenantHeader)
		return
	}
	h.Set(TenantHeader, tenant)
}

// GRPCRule says which scope a gRPC method (/package.Service/Method) needs.
type GRPCRule func(fullMethod string) Scope

// GRPCOptions are the server options that check the `authorization` metadata
// (Bearer or Basic) of every call, as HTTP does for requests, and rewrite
// the `x-scope-orgid` metadata to the credential's tenant.
func (a *Authenticator) GRPCOptions(rule GRPCRule) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, err := a.authorizeGRPC(ctx, rule(info.FullMethod))
			if err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ctx, err := a.authorizeGRPC(ss.Context(), rule(info.FullMethod))
			if err != nil {
				return err
			}
			return h(srv, &stream{ServerStream: ss, ctx: ctx})
		}),
		// Unknown services go through the stream interceptor too, so that
		// without credentials nothing, not even which services exist, is told.
		grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
			m, _ := grpc.MethodFromServerStream(ss)
			return status.Errorf(codes.Unimplemented, "unknown method %s", m)
		}),
	}
}

func (a *Authenticator) authorizeGRPC(ctx context.Context, scope Scope) (context.Context, error) {
	if scope == Open {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	md = md.Copy()
	var authz, tenant string
	if v := md.Get("authorization"); len(v) > 0 {
		authz = v[0]
	}
	if v := md.Get("x-scope-orgid"); len(v) > 0 {
		tenant = v[0]
	}
	id, err := a.Authenticate(authz)
	if errors.Is(err, ErrBusy) {
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	tenant, err = id.Authorize(scope, tenant)
	if err != nil {
		var d *Denied
		if errors.As(err, &d) {
			return nil, status.Error(codes.PermissionDenied, err.Error())
		}
		return nil, status.Error(codes.Internal, err.Error())
	}
	md.Delete("authorization")
	md.Delete("x-scope-orgid")
	if tenant != pipeline.DefaultTenant {
		md.Set("x-scope-orgid", tenant)
	}
	return metadata.NewIncomingContext(ctx, md), nil
}

// stream carries the rewritten context to a streaming handler.
type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }
