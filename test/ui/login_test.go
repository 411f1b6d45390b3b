package uie2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/crypto/bcrypt"

	"github.com/vispyr/vispyr/internal/auth"
	"github.com/vispyr/vispyr/internal/testpeer"
)

const loginPassword = "correct horse battery staple"

// loginTenants: the user may read both; each has one service of its own.
var loginTenants = map[string]string{"team-a": "login-a-svc", "team-b": "login-b-svc"}

// sendTenantSpans exports server spans of service as tenant, through the
// OTLP gRPC port with that tenant's write token, as an SDK configured with
// OTEL_EXPORTER_OTLP_HEADERS does.
func sendTenantSpans(t *testing.T, endpoint, token, service string) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithHeaders(map[string]string{"authorization": "Bearer " + token}))
	if err != nil {
		t.Fatalf("otlp exporter: %v", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	for i := 0; i < 10; i++ {
		_, span := tp.Tracer("ui-login").Start(ctx, "GET /checkout", trace.WithSpanKind(trace.SpanKindServer))
		time.Sleep(2 * time.Millisecond)
		span.End()
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("export spans of %s: %v", service, err)
	}
}

// TestUILogin drives the login page in Chromium against a vispyr with an
// auth: section: a wrong password shows the error, logging in lands on Home
// with the user's first tenant's services, the tenant switcher shows the other
// tenant's services only, a state-changing request without the CSRF token
// (or from another site) is refused, and after logout the login page is back
// and the old session cookie is refused.
func TestUILogin(t *testing.T) {
	if testing.Short() {
		t.Skip("browser end-to-end test skipped in -short mode")
	}
	requireBrowser(t)
	root := repoRoot(t)
	buildUI(t, root)
	dir := t.TempDir()
	pw, err := bcrypt.GenerateFromPassword([]byte(loginPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{"team-a": auth.NewToken(), "team-b": auth.NewToken()}
	cfg := fmt.Sprintf(`generator: {collection_interval: 1s}
auth:
  tokens:
    - {name: writer-a, sha256: %s, scopes: [write], tenant: team-a}
    - {name: writer-b, sha256: %s, scopes: [write], tenant: team-b}
  users:
    - {name: alice, bcrypt: %q, scopes: [read], tenants: [team-a, team-b]}
`, auth.HashToken(tokens["team-a"]), auth.HashToken(tokens["team-b"]), pw)
	cfgFile := filepath.Join(dir, "vispyr.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	lokiAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	s := startVispyr(t, root, "-config", cfgFile, "-loki.listen-address", lokiAddr)
	base := "http://" + s.ui
	for tenant, svc := range loginTenants {
		sendTenantSpans(t, s.otlpGRPC, tokens[tenant], svc)
	}
	// Each tenant's span metrics are queryable (as alice, through the UI port)
	// before the browser looks for them.
	for tenant, svc := range loginTenants {
		waitFor(t, "span metrics of "+tenant, 60*time.Second, func() (*http.Response, error) {
			req, _ := http.NewRequest(http.MethodGet, base+"/prom/api/v1/query?query="+url.QueryEscape("sum by (service) (traces_spanmetrics_calls_total)"), nil)
			req.SetBasicAuth("alice", loginPassword)
			req.Header.Set("X-Scope-OrgID", tenant)
			return http.DefaultClient.Do(req)
		}, func(b []byte) bool { return bytes.Contains(b, []byte(svc)) })
	}
	want, _ := json.Marshal(map[string]any{
		"user": "alice", "password": loginPassword,
		"tenants": []string{"team-a", "team-b"}, "services": []string{loginTenants["team-a"], loginTenants["team-b"]},
		// The live tail of the switched-to tenant gets a line pushed with that tenant's token.
		"pushURL": "http://" + lokiAddr + "/loki/api/v1/push", "pushToken": tokens["team-b"],
	})
	runNode(t, filepath.Join(root, "test", "ui", "login.mjs"), "login", base, filepath.Join(root, "artifacts", "screenshots"), string(want))
}
