// Package helm tests the Helm chart in deploy/helm/vispyr: rendered by the
// real helm CLI, every manifest decoded strictly against the Kubernetes API
// types, and Vispyr's configuration file loaded by Vispyr's own loader.
package helm

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	yamlv3 "gopkg.in/yaml.v3"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/testpeer"
)

// serviceMonitor holds the fields of the Prometheus Operator's ServiceMonitor
// that the chart writes (the operator's Go types are not a dependency here);
// strict decoding still refuses any other field.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
			// Authorization is the token /metrics needs with auth on.
			Authorization *struct {
				Type        string                   `json:"type"`
				Credentials corev1.SecretKeySelector `json:"credentials"`
			} `json:"authorization,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is one `helm template` output, by kind and name.
type rendered struct {
	secrets      map[string]*corev1.Secret
	services     map[string]*corev1.Service
	statefulSets []*appsv1.StatefulSet
	deployments  []*appsv1.Deployment
	ingresses    []*networkingv1.Ingress
	monitors     []*serviceMonitor
}

// strict decodes one manifest, refusing any field the type does not have.
func strict[T any](t *testing.T, raw []byte, v *T) *T {
	t.Helper()
	if err := yaml.UnmarshalStrict(raw, v); err != nil {
		t.Fatalf("%T does not decode strictly: %v\n%s", v, err, raw)
	}
	return v
}

// render runs helm template with the given --set/--set-json arguments and
// decodes every manifest strictly.
func render(t *testing.T, args ...string) *rendered {
	t.Helper()
	helm := testpeer.Binary(t, "helm")
	cmd := exec.Command(helm, append([]string{"template", "vsp", "./vispyr", "--namespace", "obs"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, stderr.String())
	}
	r := &rendered{secrets: map[string]*corev1.Secret{}, services: map[string]*corev1.Service{}}
	dec := yamlv3.NewDecoder(bytes.NewReader(out))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("helm output is not YAML: %v\n%s", err, out)
		}
		if doc == nil {
			continue
		}
		raw, _ := yamlv3.Marshal(doc)
		switch kind := doc["kind"]; kind {
		case "Secret":
			s := strict(t, raw, &corev1.Secret{})
			r.secrets[s.Name] = s
		case "Service":
			s := strict(t, raw, &corev1.Service{})
			r.services[s.Name] = s
		case "StatefulSet":
			r.statefulSets = append(r.statefulSets, strict(t, raw, &appsv1.StatefulSet{}))
		case "Deployment":
			r.deployments = append(r.deployments, strict(t, raw, &appsv1.Deployment{}))
		case "Ingress":
			r.ingresses = append(r.ingresses, strict(t, raw, &networkingv1.Ingress{}))
		case "ServiceMonitor":
			r.monitors = append(r.monitors, strict(t, raw, &serviceMonitor{}))
		default:
			t.Fatalf("unexpected kind %v in:\n%s", kind, raw)
		}
	}
	return r
}

// loadConfig loads the configuration file the chart's Secret holds with
// Vispyr's own loader (unknown keys refused) and validates it.
func loadConfig(t *testing.T, r *rendered) config.Config {
	t.Helper()
	s, ok := r.secrets["vsp-vispyr"]
	if !ok {
		t.Fatalf("no Secret vsp-vispyr among %v", keys(r.secrets))
	}
	body := s.StringData["vispyr.yaml"]
	path := filepath.Join(t.TempDir(), "vispyr.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	if err := cfg.LoadFile(path); err != nil {
		t.Fatalf("chart's vispyr.yaml:\n%s\nload: %v", body, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("chart's vispyr.yaml:\n%s\nvalidate: %v", body, err)
	}
	return cfg
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkPod checks what both modes share: the mode's command, the config
// mounted where the command reads it, the data volume, and every port the
// mode listens on (the gateway: every ingest port, logs and profiles too;
// serve: the query ports, the UI and Faro as well) declared by the container
// and the Service.
func checkPod(t *testing.T, r *rendered, pod corev1.PodSpec, mode string, cfg config.Config) {
	t.Helper()
	c := pod.Containers[0]
	if len(c.Args) < 3 || c.Args[0] != mode || c.Args[2] != "/etc/vispyr/vispyr.yaml" {
		t.Fatalf("container args %v, want %s --config /etc/vispyr/vispyr.yaml", c.Args, mode)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["config"] != "/etc/vispyr" || mounts["data"] != cfg.DataDir {
		t.Fatalf("mounts %v: want config at /etc/vispyr and data at %s", mounts, cfg.DataDir)
	}
	ports := map[int32]string{}
	for _, p := range c.Ports {
		ports[p.ContainerPort] = p.Name
	}
	svc := r.services["vsp-vispyr"]
	svcPorts := map[string]bool{}
	for _, p := range svc.Spec.Ports {
		if _, ok := ports[p.Port]; !ok || p.TargetPort.StrVal != ports[p.Port] {
			t.Errorf("Service port %s (%d) targets %q, which the container does not declare", p.Name, p.Port, p.TargetPort.StrVal)
		}
		svcPorts[p.Name] = true
	}
	addrs := []string{cfg.Listen.OTLPGRPC, cfg.Listen.OTLPHTTP, cfg.Listen.Prometheus, cfg.Listen.Admin, cfg.Listen.Health,
		cfg.Listen.Pyroscope, cfg.Listen.PyroscopeIngest, cfg.Listen.Loki}
	if mode == "serve" {
		addrs = append(addrs, cfg.Listen.Tempo, cfg.Listen.UI, cfg.Listen.Faro)
	}
	for _, addr := range addrs {
		_, p, err := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		if _, ok := ports[int32(n)]; err != nil || !ok {
			t.Errorf("the configuration listens on %s, the container declares %v", addr, ports)
		}
	}
	for _, m := range r.monitors {
		for _, e := range m.Spec.Endpoints {
			if !svcPorts[e.Port] {
				t.Errorf("ServiceMonitor scrapes port %q, the Service has %v", e.Port, svcPorts)
			}
		}
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser != 65532 {
		t.Errorf("pod does not run as the image's user 65532: %+v", pod.SecurityContext)
	}
}

// mode serve: a StatefulSet with a volume claim for the data directory, the
// retention, S3 and auth values in the configuration Vispyr loads, the S3
// credentials from a Secret, an ingress to the UI and a ServiceMonitor.
func TestChartServe(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	r := render(t,
		"--set", "retention.metrics=48h", "--set", "retention.traces=72h",
		"--set", "s3.enabled=true", "--set", "s3.endpoint=minio.obs:9000", "--set", "s3.bucket=traces",
		"--set", "s3.existingSecret=vispyr-s3",
		"--set-json", `auth.tokens=[{"name":"agents","sha256":"`+sum+`","scopes":["write"]}]`,
		"--set", "ingress.enabled=true", "--set", "ingress.host=vispyr.example.com",
		"--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.tokenSecret.name=vispyr-scrape",
		"--set", "serviceMonitor.tokenSecret.key=token", "--set", "resources.limits.memory=3Gi",
		"--set", "persistence.size=50Gi")
	if len(r.statefulSets) != 1 || len(r.deployments) != 0 {
		t.Fatalf("serve: %d StatefulSets, %d Deployments; want 1 and 0", len(r.statefulSets), len(r.deployments))
	}
	cfg := loadConfig(t, r)
	if cfg.Metrics.Retention.String() != "48h0m0s" || cfg.Traces.Retention.String() != "72h0m0s" {
		t.Errorf("retention: metrics %s, traces %s", cfg.Metrics.Retention, cfg.Traces.Retention)
	}
	if cfg.Traces.Storage.Backend != "s3" || cfg.Traces.Storage.S3.Bucket != "traces" || cfg.Traces.Storage.S3.Endpoint != "minio.obs:9000" {
		t.Errorf("trace storage: %+v", cfg.Traces.Storage)
	}
	if len(cfg.Auth.Tokens) != 1 || cfg.Auth.Tokens[0].SHA256 != sum {
		t.Errorf("auth: %+v", cfg.Auth)
	}
	ss := r.statefulSets[0]
	if len(ss.Spec.VolumeClaimTemplates) != 1 || ss.Spec.VolumeClaimTemplates[0].Name != "data" ||
		ss.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String() != "50Gi" {
		t.Fatalf("volume claim: %+v", ss.Spec.VolumeClaimTemplates)
	}
	pod := ss.Spec.Template.Spec
	checkPod(t, r, pod, "serve", cfg)
	c := pod.Containers[0]
	if c.Resources.Limits.Memory().String() != "3Gi" {
		t.Errorf("memory limit %s", c.Resources.Limits.Memory())
	}
	var envs []string
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "vispyr-s3" {
			envs = append(envs, e.Name)
		}
	}
	if !slices.Equal(envs, []string{"VISPYR_TRACES_STORAGE_S3_ACCESS_KEY", "VISPYR_TRACES_STORAGE_S3_SECRET_KEY"}) {
		t.Errorf("S3 credentials from the Secret: %v", envs)
	}
	if len(r.ingresses) != 1 || len(r.monitors) != 1 {
		t.Fatalf("%d ingresses, %d ServiceMonitors; want 1 each", len(r.ingresses), len(r.monitors))
	}
	if a := r.monitors[0].Spec.Endpoints[0].Authorization; a == nil || a.Type != "Bearer" || a.Credentials.Name != "vispyr-scrape" || a.Credentials.Key != "token" {
		t.Errorf("ServiceMonitor authorization: %+v", a)
	}
	rule := r.ingresses[0].Spec.Rules[0]
	b := rule.HTTP.Paths[0].Backend.Service
	if rule.Host != "vispyr.example.com" || b.Name != "vsp-vispyr" || b.Port.Name != "ui" {
		t.Errorf("ingress: host %s to %+v, want the UI port", rule.Host, b)
	}
}

// mode gateway: a Deployment whose queues live in an emptyDir, forwarding to
// the configured destination; the Faro proxy path goes to the upstream given.
func TestChartGateway(t *testing.T) {
	r := render(t, "--set", "mode=gateway",
		"--set-json", `gateway.forward.metrics=[{"url":"http://central.obs:9090/api/v1/write"}]`,
		"--set", "ingress.enabled=true",
		"--set", "faro.enabled=true", "--set", "faro.collectorUrl=https://vispyr.example.com/collect",
		"--set", "faro.proxy.enabled=true", "--set", "faro.proxy.path=/faro",
		"--set", "faro.proxy.upstreamUrl=http://alloy.monitoring.svc:12347")
	if len(r.statefulSets) != 0 || len(r.deployments) != 1 {
		t.Fatalf("gateway: %d StatefulSets, %d Deployments; want 0 and 1", len(r.statefulSets), len(r.deployments))
	}
	cfg := loadConfig(t, r)
	if len(cfg.Forward.Metrics) != 1 || cfg.Forward.Metrics[0].URL != "http://central.obs:9090/api/v1/write" {
		t.Fatalf("forward: %+v", cfg.Forward)
	}
	pod := r.deployments[0].Spec.Template.Spec
	checkPod(t, r, pod, "gateway", cfg)
	for _, v := range pod.Volumes {
		if v.Name == "data" && v.EmptyDir == nil {
			t.Errorf("gateway data volume is not an emptyDir: %+v", v)
		}
	}
	var faro *networkingv1.IngressServiceBackend
	for _, p := range r.ingresses[0].Spec.Rules[0].HTTP.Paths {
		if p.Path == "/faro" {
			faro = p.Backend.Service
		}
	}
	if faro == nil {
		t.Fatalf("no ingress path /faro: %+v", r.ingresses[0].Spec.Rules)
	}
	up, ok := r.services[faro.Name]
	if !ok || up.Spec.Type != corev1.ServiceTypeExternalName || up.Spec.ExternalName != "alloy.monitoring.svc" ||
		faro.Port.Number != 12347 || up.Spec.Ports[0].Port != 12347 {
		t.Fatalf("faro proxy backend %+v, service %+v", faro, up)
	}
}

// A mode the chart does not know fails the render, naming it.
func TestChartRefusesUnknownMode(t *testing.T) {
	helm := testpeer.Binary(t, "helm")
	out, err := exec.Command(helm, "template", "vsp", "./vispyr", "--set", "mode=agent").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `"agent" is neither serve nor gateway`) {
		t.Fatalf("mode=agent: err %v\n%s", err, out)
	}
}
