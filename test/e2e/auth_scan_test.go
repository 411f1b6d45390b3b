package e2e

import (
	"context"
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	settingsv1 "github.com/grafana/pyroscope/api/gen/proto/go/settings/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/vispyr/vispyr/internal/auth"
)

// Paths of the servers Vispyr stands in for (their documented HTTP APIs),
// by the port that serves them.
var (
	prometheusPaths = []string{
		"/", "/graph", "/metrics", "/federate", "/-/reload", "/-/ready", "/-/healthy", "/-/quit",
		"/api/v1/query", "/api/v1/query_range", "/api/v1/query_exemplars", "/api/v1/format_query",
		"/api/v1/parse_query", "/api/v1/series", "/api/v1/labels", "/api/v1/label/job/values",
		"/api/v1/targets", "/api/v1/targets/metadata", "/api/v1/metadata", "/api/v1/alerts",
		"/api/v1/alertmanagers", "/api/v1/rules", "/api/v1/status/config", "/api/v1/status/flags",
		"/api/v1/status/runtimeinfo", "/api/v1/status/buildinfo", "/api/v1/status/tsdb",
		"/api/v1/status/walreplay", "/api/v1/notifications", "/api/v1/read",
		"/api/v1/admin/tsdb/delete_series", "/api/v1/admin/tsdb/clean_tombstones", "/api/v1/admin/tsdb/snapshot",
		"/api/v1/write", "/api/v1/metrics/write", "/api/v1/otlp/v1/metrics", "/api/v1/push",
	}
	tempoPaths = []string{
		"/api/echo", "/ready", "/status", "/metrics", "/api/status/buildinfo",
		"/api/traces/0123456789abcdef0123456789abcdef", "/api/v2/traces/0123456789abcdef0123456789abcdef",
		"/api/search", "/api/search/tags", "/api/v2/search/tags", "/api/search/tag/service.name/values",
		"/api/v2/search/tag/resource.service.name/values", "/api/metrics/query_range", "/api/metrics/query",
		"/api/overrides", "/flush", "/shutdown",
	}
	otlpPaths = []string{"/v1/traces", "/v1/metrics", "/v1/logs"}
	lokiPaths = []string{"/loki/api/v1/push", "/api/prom/push", "/loki/api/v1/query", "/loki/api/v1/query_range",
		"/loki/api/v1/labels", "/loki/api/v1/tail", "/ready", "/loki/api/v1/series", "/loki/api/v1/label/app/values",
		"/loki/api/v1/index/stats", "/loki/api/v1/index/volume", "/loki/api/v1/status/buildinfo", "/loki/api/v1/detected_fields",
		"/api/prom/query", "/api/prom/label", "/api/prom/label/app/values", "/api/prom/series", "/api/prom/tail"}
	adminPaths = []string{"/", "/metrics", "/-/ready", "/-/healthy", "/-/reload", "/debug/pprof/",
		"/debug/pprof/cmdline", "/debug/pprof/heap", "/debug/pprof/goroutine", "/debug/pprof/symbol",
		"/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"}
	uiPaths = []string{"/", "/index.html", "/explore", "/traces", "/profiles", "/assets/index.js",
		"/prom/api/v1/query?query=1", "/prom/api/v1/labels", "/prom/api/v1/write", "/prom/api/v1/metrics/write",
		"/prom/api/v1/otlp/v1/metrics", "/tempo/api/search", "/tempo/api/echo",
		"/pyroscope/querier.v1.QuerierService/ProfileTypes", "/pyroscope/ingest"}
	pyroscopeExtra  = []string{"/ingest", "/pyroscope/ingest", "/render", "/pyroscope/render", "/api/apps", "/ready"}
	otlpGRPCMethods = []string{
		"/opentelemetry.proto.collector.trace.v1.TraceService/Export",
		"/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
		"/opentelemetry.proto.collector.logs.v1.LogsService/Export",
	}
)

// connectProcedures lists every procedure of the Pyroscope services from
// their descriptors (what profilesapi and the push handler register),
// plainly and under the /pyroscope prefix Grafana datasources may use.
func connectProcedures() []string {
	var out []string
	for _, fd := range []protoreflect.FileDescriptor{querierv1.File_querier_v1_querier_proto,
		settingsv1.File_settings_v1_setting_proto, settingsv1.File_settings_v1_recording_rules_proto, pushv1.File_push_v1_push_proto} {
		for i := range fd.Services().Len() {
			s := fd.Services().Get(i)
			for j := range s.Methods().Len() {
				p := "/" + string(s.FullName()) + "/" + string(s.Methods().Get(j).Name())
				out = append(out, p, "/pyroscope"+p)
			}
		}
	}
	return out
}

// wantScope is the scope each route needs: ingest writes, admin
// endpoints are admin, the probes and the UI's static shell (where the login
// page is) are open, everything else reads.
func wantScope(port, method, p string) auth.Scope {
	p, _, _ = strings.Cut(p, "?")
	p = path.Clean(p)
	switch port {
	case "ui":
		api := false
		for _, pre := range []string{"/prom", "/tempo", "/pyroscope", "/loki", "/api"} {
			api = api || p == pre || strings.HasPrefix(p, pre+"/")
		}
		if method == http.MethodGet && !api {
			return auth.Open
		}
	case "otlp_http", "pyroscope_ingest", "faro":
		return auth.ScopeWrite
	case "admin":
		if p == "/-/ready" || p == "/-/healthy" {
			return auth.Open
		}
		return auth.ScopeAdmin
	case "prometheus":
		switch {
		case slices.Contains([]string{"/api/v1/write", "/api/v1/metrics/write", "/api/v1/otlp/v1/metrics"}, p):
			return auth.ScopeWrite
		case p == "/-/reload" || strings.HasPrefix(p, "/api/v1/admin/"):
			return auth.ScopeAdmin
		}
	case "loki":
		if p == "/loki/api/v1/push" || p == "/api/prom/push" {
			return auth.ScopeWrite
		}
	case "pyroscope":
		if p == "/ingest" || p == "/pyroscope/ingest" || strings.HasPrefix(p, "/push.v1.PusherService/") {
			return auth.ScopeWrite
		}
	}
	return auth.ScopeRead
}

// TestAuthRouteScan asks every HTTP port for every route of every port
// (Prometheus, Tempo, Pyroscope, OTLP, admin and UI paths, the Pyroscope
// procedures from their descriptors, and unknown paths), with GET and POST:
// no credentials get 401 with WWW-Authenticate, a token holding every scope
// but the one the route needs gets 403, the right scope asking for another
// tenant gets 403 naming it, and the right credentials are not refused.
// The OTLP gRPC methods get Unauthenticated and PermissionDenied the same way.
func TestAuthRouteScan(t *testing.T) {
	t.Parallel()
	s := startAuth(t)
	v := s.v
	procs := connectProcedures()
	native := map[string][]string{
		"prometheus": prometheusPaths, "tempo": tempoPaths, "otlp_http": otlpPaths, "admin": adminPaths,
		"ui": uiPaths, "loki": lokiPaths, "pyroscope": append(slices.Clone(procs), pyroscopeExtra...), "pyroscope_ingest": append(slices.Clone(procs), pyroscopeExtra...),
		"faro": {"/collect"},
	}
	addrs := map[string]string{
		"prometheus": v.MetricsAddr, "tempo": v.TempoAddr, "otlp_http": v.OTLPHTTPAddr, "admin": v.AdminAddr,
		"ui": v.UIAddr, "loki": v.LokiAddr, "pyroscope": v.PyroscopeAddr, "pyroscope_ingest": v.PyroscopeIngestAddr,
		"faro": v.FaroAddr,
	}
	var all []string
	for _, ps := range native {
		all = append(all, ps...)
	}
	all = append(all, "/no/such/route", "//api/v1/write", "/api/v1/../v1/write", "/%2e%2e/debug/pprof/")
	slices.Sort(all)
	all = slices.Compact(all)

	c := v.HTTPClient()
	var requests, open2xx int
	for port, addr := range addrs {
		for _, p := range all {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				scope := wantScope(port, method, p)
				url := v.URL(addr, p)
				requests++
				a := do(t, c, method, url, "", "")
				if scope == auth.Open {
					if port == "ui" && strings.Contains(a.body, `"status":"success"`) {
						t.Errorf("ui %s %s without credentials answered data: %.200s", method, p, a.body)
					}
					continue
				}
				if a.code >= 200 && a.code < 300 {
					open2xx++
				}
				if a.code != http.StatusUnauthorized {
					t.Errorf("%s %s %s without credentials: %d %q, want 401", port, method, p, a.code, a.body)
				}
				if a := do(t, c, method, url, bearer(butTokens[scope]), ""); a.code != http.StatusForbidden || !strings.Contains(a.body, string(scope)) {
					t.Errorf("%s %s %s without the %s scope: %d %q, want 403 naming it", port, method, p, scope, a.code, a.body)
				}
				if a := do(t, c, method, url, bearer(onlyTokens[scope]), "team-b"); a.code != http.StatusForbidden || !strings.Contains(a.body, "team-b") {
					t.Errorf("%s %s %s as another tenant: %d %q, want 403 naming team-b", port, method, p, a.code, a.body)
				}
				requests += 2
				if slices.Contains(native[port], p) && !strings.Contains(p, "/-/quit") && !strings.Contains(p, "/shutdown") {
					if a := do(t, c, method, url, bearer(onlyTokens[scope]), ""); a.code == 401 || a.code == 403 {
						t.Errorf("%s %s %s with the %s scope: %d %q", port, method, p, scope, a.code, a.body)
					}
					requests++
				}
			}
		}
	}
	t.Logf("%d HTTP requests over %d ports and %d paths; unauthenticated 2xx: %d", requests, len(addrs), len(all), open2xx)
	if open2xx != 0 {
		t.Errorf("%d unauthenticated requests answered 2xx", open2xx)
	}
	// The probes stay open: the harness waited for /-/ready without
	// credentials; /-/healthy too.
	if a := do(t, c, http.MethodGet, v.AdminURL("/-/healthy"), "", ""); a.code != 200 {
		t.Errorf("/-/healthy without credentials: %d", a.code)
	}
	// The UI port serves no ingest path, whatever the credentials.
	for _, p := range []string{"/prom/api/v1/write", "/prom/api/v1/metrics/write", "/prom/api/v1/otlp/v1/metrics"} {
		if a := do(t, c, http.MethodPost, v.URL(v.UIAddr, p), basicAuth("alice", alicePassword), ""); a.code != http.StatusNotFound {
			t.Errorf("UI port POST %s: %d %q, want 404", p, a.code, a.body)
		}
	}

	conn, err := grpc.NewClient(v.OTLPGRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(s.tls.Clone())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, m := range otlpGRPCMethods {
		for _, tc := range []struct {
			md   []string
			want codes.Code
		}{
			{nil, codes.Unauthenticated},
			{[]string{"authorization", "Bearer wrong"}, codes.Unauthenticated},
			{[]string{"authorization", bearer(butTokens[auth.ScopeWrite])}, codes.PermissionDenied},
			{[]string{"authorization", bearer(writerToken), "x-scope-orgid", "team-b"}, codes.PermissionDenied},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if tc.md != nil {
				ctx = metadata.AppendToOutgoingContext(ctx, tc.md...)
			}
			err := conn.Invoke(ctx, m, &emptypb.Empty{}, &emptypb.Empty{})
			cancel()
			if status.Code(err) != tc.want {
				t.Errorf("gRPC %s with %v: %v, want %s", m, tc.md, err, tc.want)
			}
		}
	}
}
