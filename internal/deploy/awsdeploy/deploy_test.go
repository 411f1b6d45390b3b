package awsdeploy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/deploy"
	"github.com/vispyr/vispyr/internal/traces/backend/miniotest"
)

// mutating drops the read-only calls (Describe*, Get*), leaving what changed AWS.
func mutating(calls []apiCall) []string {
	var out []string
	for _, c := range calls {
		if !strings.HasPrefix(c.Action, "Describe") && !strings.HasPrefix(c.Action, "Get") {
			out = append(out, c.Action)
		}
	}
	return out
}

func findCall(t *testing.T, calls []apiCall, action string) apiCall {
	t.Helper()
	for _, c := range calls {
		if c.Action == action {
			return c
		}
	}
	t.Fatalf("no %s call among %v", action, mutating(calls))
	return apiCall{}
}

type awsEnv struct {
	q     *queryAPI
	minio *minio.Client
	opts  Options
	ready []string
}

func newAWSEnv(t *testing.T) *awsEnv {
	s3cfg := miniotest.Start(t)
	q, ec2srv, iamsrv := newQueryAPI(t)
	mc, err := minio.New(s3cfg.Endpoint, &minio.Options{Creds: miniocreds.NewStaticV4(s3cfg.AccessKey, s3cfg.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e := &awsEnv{q: q, minio: mc}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(s3cfg.AccessKey, s3cfg.SecretKey, "")}
	e.opts = Options{
		Name: "t1", AllowCIDRs: []string{"10.1.0.0/16", "2001:db8::/32"}, Retention: 7 * 24 * time.Hour,
		Binary: exe, StateDir: t.TempDir(), AWS: &cfg, Poll: time.Millisecond,
		Endpoints: Endpoints{EC2: ec2srv.URL, IAM: iamsrv.URL, S3: "http://" + s3cfg.Endpoint},
		Ready:     func(_ context.Context, ip string) error { e.ready = append(e.ready, ip); return nil },
	}
	return e
}

// run gives the command answer at the prompt and returns what it printed.
func (e *awsEnv) run(t *testing.T, destroy bool, answer string, change func(*Options)) (string, *Result, error) {
	t.Helper()
	o := e.opts
	if change != nil {
		change(&o)
	}
	var out bytes.Buffer
	o.In, o.Out = strings.NewReader(answer), &out
	var res *Result
	var err error
	if destroy {
		err = Destroy(context.Background(), o)
	} else {
		res, err = Deploy(context.Background(), o)
	}
	t.Logf("answer %q, printed:\n%s", answer, out.String())
	return out.String(), res, err
}

func (e *awsEnv) buckets(t *testing.T) []string {
	t.Helper()
	bs, err := e.minio.ListBuckets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range bs {
		if strings.HasPrefix(b.Name, "vispyr-t1-") {
			names = append(names, b.Name)
		}
	}
	return names
}

func TestDeployAWS(t *testing.T) {
	e := newAWSEnv(t)
	statePath := filepath.Join(e.opts.StateDir, "aws-t1.json")

	// "no" at the prompt: the plan lists every resource, nothing is created.
	out, _, err := e.run(t, false, "no\n", nil)
	if !errors.Is(err, deploy.ErrDeclined) {
		t.Fatalf("answer no: err %v\n%s", err, out)
	}
	for _, want := range []string{"create S3 bucket vispyr-t1-", "lifecycle rule: objects under traces/ expire after 7 days",
		"create IAM role vispyr-t1", "create instance profile vispyr-t1", "create security group vispyr-t1",
		"ports 9090, 3200, 4040, 4317, 4318, 9999 only from 10.1.0.0/16, 2001:db8::/32", "allocate an elastic IP",
		"launch a t3.small instance from debian-13-amd64-20261115 (ami-0newest)", "attach the elastic IP"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if m := mutating(e.q.take()); len(m) > 0 {
		t.Fatalf("declined deploy called %v", m)
	}
	if b := e.buckets(t); len(b) > 0 {
		t.Fatalf("declined deploy created bucket %v", b)
	}
	if _, err := os.Stat(statePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("declined deploy wrote state: %v", err)
	}

	// yes: each resource created once, in dependency order, with its parameters.
	// EC2 refuses the new instance profile once, as it does until IAM's change
	// reaches it; the launch is retried.
	e.q.profileLag = 1
	out, res, err := e.run(t, false, "yes\n", nil)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	calls := e.q.take()
	want := []string{"CreateRole", "PutRolePolicy", "CreateInstanceProfile", "AddRoleToInstanceProfile",
		"CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "AllocateAddress", "RunInstances", "RunInstances", "AssociateAddress"}
	if got := mutating(calls); !slices.Equal(got, want) {
		t.Fatalf("deploy calls %v, want %v", got, want)
	}
	buckets := e.buckets(t)
	if len(buckets) != 1 {
		t.Fatalf("buckets %v, want one", buckets)
	}
	bucket := buckets[0]
	checkLifecycle(t, e.minio, bucket, 7)
	checkRules(t, e.q, e.opts.AllowCIDRs)
	checkRolePolicy(t, e.q, bucket)
	run := findCall(t, calls, "RunInstances").Params
	for k, v := range map[string]string{"ImageId": "ami-0newest", "InstanceType": "t3.small", "MinCount": "1", "MaxCount": "1",
		"IamInstanceProfile.Name": "vispyr-t1", "MetadataOptions.HttpTokens": "required", "SecurityGroupId.1": onlyKey(t, e.q.groups)} {
		if run.Get(k) != v {
			t.Errorf("RunInstances %s = %q, want %q", k, run.Get(k), v)
		}
	}
	checkUserData(t, run.Get("UserData"), e.opts.Binary, bucket)
	if res.Credentials == nil || !strings.Contains(out, res.Credentials.Password) || !strings.Contains(out, res.Credentials.Token) {
		t.Fatalf("credentials not printed:\n%s", out)
	}
	if !strings.Contains(out, "https://"+res.PublicIP+"/") || len(e.ready) != 1 || e.ready[0] != res.PublicIP {
		t.Fatalf("URL or readiness wait not for the elastic IP %s (waited for %v):\n%s", res.PublicIP, e.ready, out)
	}

	// A bare re-run (no --allow, no --retention) keeps the deployment's and
	// finds everything in place: no change, no prompt.
	out, res, err = e.run(t, false, "", func(o *Options) { o.AllowCIDRs, o.Retention = nil, 0 })
	if err != nil {
		t.Fatalf("re-run: %v\n%s", err, out)
	}
	if m := mutating(e.q.take()); len(m) > 0 || res.Changed || !strings.Contains(out, "nothing to do") || !strings.Contains(out, "the earlier --allow") {
		t.Fatalf("re-run called %v (changed %v):\n%s", m, res.Changed, out)
	}

	// Another binary does not touch the running instance; the plan says how to upgrade.
	other := filepath.Join(t.TempDir(), "vispyr-next")
	os.WriteFile(other, []byte("another build"), 0o755)
	out, _, err = e.run(t, false, "", func(o *Options) { o.Binary = other })
	if m := mutating(e.q.take()); err != nil || len(m) > 0 || !strings.Contains(out, "destroy and deploy again to upgrade") {
		t.Fatalf("re-run with another binary: %v, called %v:\n%s", err, m, out)
	}

	// An elastic IP released behind deploy's back is allocated and attached
	// again; nothing else is touched.
	e.q.mu.Lock()
	for id := range e.q.addresses {
		delete(e.q.addresses, id)
	}
	e.q.mu.Unlock()
	out, res, err = e.run(t, false, "yes\n", nil)
	if m := mutating(e.q.take()); err != nil || !slices.Equal(m, []string{"AllocateAddress", "AssociateAddress"}) {
		t.Fatalf("re-run after the address was released: %v, called %v:\n%s", err, m, out)
	}
	if !strings.Contains(out, "https://"+res.PublicIP+"/") {
		t.Fatalf("re-run does not print the new address %s:\n%s", res.PublicIP, out)
	}

	// A narrower --allow revokes exactly the dropped rules.
	out, _, err = e.run(t, false, "y\n", func(o *Options) { o.AllowCIDRs = []string{"10.1.0.0/16"} })
	if err != nil {
		t.Fatalf("re-run with one CIDR: %v\n%s", err, out)
	}
	if m := mutating(e.q.take()); !slices.Equal(m, []string{"RevokeSecurityGroupIngress"}) {
		t.Fatalf("narrowing --allow called %v:\n%s", m, out)
	}
	checkRules(t, e.q, []string{"10.1.0.0/16"})

	// destroy, "no": nothing removed.
	out, _, err = e.run(t, true, "n\n", nil)
	if !errors.Is(err, deploy.ErrDeclined) {
		t.Fatalf("destroy answered no: err %v\n%s", err, out)
	}
	if m := mutating(e.q.take()); len(m) > 0 || len(e.q.groups) != 1 || len(e.q.roles) != 1 || e.q.instances[onlyKey(t, e.q.instances)] != "running" {
		t.Fatalf("declined destroy called %v", m)
	}

	// destroy, yes: dependents first; the bucket stays without --purge.
	out, _, err = e.run(t, true, "yes\n", nil)
	if err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	want = []string{"DisassociateAddress", "TerminateInstances", "ReleaseAddress", "DeleteSecurityGroup",
		"RemoveRoleFromInstanceProfile", "DeleteInstanceProfile", "DeleteRolePolicy", "DeleteRole"}
	if got := mutating(e.q.take()); !slices.Equal(got, want) {
		t.Fatalf("destroy calls %v, want %v", got, want)
	}
	if len(e.q.groups)+len(e.q.addresses)+len(e.q.roles)+len(e.q.profiles)+len(e.q.policies) != 0 || e.q.instances[onlyKey(t, e.q.instances)] != "terminated" {
		t.Fatalf("left behind: groups %v addresses %v roles %v profiles %v instances %v", e.q.groups, e.q.addresses, e.q.roles, e.q.profiles, e.q.instances)
	}
	if b := e.buckets(t); !slices.Equal(b, buckets) {
		t.Fatalf("buckets after destroy without --purge: %v", b)
	}
	if !strings.Contains(out, "s3://"+bucket+" stays") {
		t.Fatalf("destroy does not say the bucket stays:\n%s", out)
	}

	// --purge: the bucket goes, and with it the state file.
	out, _, err = e.run(t, true, "yes\n", func(o *Options) { o.Purge = true })
	if err != nil {
		t.Fatalf("destroy --purge: %v\n%s", err, out)
	}
	if m := mutating(e.q.take()); len(m) > 0 {
		t.Fatalf("purging the bucket called EC2/IAM: %v", m)
	}
	if b := e.buckets(t); len(b) > 0 {
		t.Fatalf("bucket left after --purge: %v", b)
	}
	if _, err := os.Stat(statePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state file left after everything is removed: %v", err)
	}
	out, _, err = e.run(t, true, "", nil)
	if err != nil || !strings.Contains(out, "nothing to do") {
		t.Fatalf("destroy of nothing: %v\n%s", err, out)
	}
}

func onlyKey[V any](t *testing.T, m map[string]V) string {
	t.Helper()
	if len(m) != 1 {
		t.Fatalf("want exactly one, have %d", len(m))
	}
	for k := range m {
		return k
	}
	return ""
}

func checkLifecycle(t *testing.T, mc *minio.Client, bucket string, days int) {
	t.Helper()
	lc, err := mc.GetBucketLifecycle(context.Background(), bucket)
	if err != nil {
		t.Fatalf("lifecycle of %s: %v", bucket, err)
	}
	if len(lc.Rules) != 1 || int(lc.Rules[0].Expiration.Days) != days || lc.Rules[0].RuleFilter.Prefix != "traces/" {
		t.Fatalf("lifecycle rules %+v, want traces/ expiring after %d days", lc.Rules, days)
	}
}

// checkRules: 443 from anywhere, every other port only from the allowed CIDRs.
func checkRules(t *testing.T, q *queryAPI, allow []string) {
	t.Helper()
	g := q.groups[onlyKey(t, q.groups)]
	var got []string
	for r, on := range g.rules {
		if on {
			got = append(got, r)
		}
	}
	want := []string{"443 0.0.0.0/0", "443 ::/0"}
	for _, p := range []string{"9090", "3200", "4040", "4317", "4318", "9999"} {
		for _, c := range allow {
			want = append(want, p+" "+c)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("security group rules\n got %v\nwant %v", got, want)
	}
}

// checkRolePolicy: the role is for EC2 and reaches the trace bucket only.
func checkRolePolicy(t *testing.T, q *queryAPI, bucket string) {
	t.Helper()
	doc := q.policies["vispyr-t1/"+rolePolicyName]
	var pol struct {
		Statement []struct {
			Effect   string
			Action   []string
			Resource string
		}
	}
	if err := json.Unmarshal([]byte(doc), &pol); err != nil || len(pol.Statement) == 0 {
		t.Fatalf("role policy %q: %v", doc, err)
	}
	for _, s := range pol.Statement {
		if s.Effect != "Allow" || (s.Resource != "arn:aws:s3:::"+bucket && s.Resource != "arn:aws:s3:::"+bucket+"/*") {
			t.Fatalf("role policy statement %+v reaches beyond bucket %s", s, bucket)
		}
		for _, a := range s.Action {
			if !strings.HasPrefix(a, "s3:") || strings.Contains(a, "*") {
				t.Fatalf("role policy action %q", a)
			}
		}
	}
}

// checkUserData does what the instance's first boot does with the URLs in its
// user data: the binary and a configuration Vispyr starts with come back, and
// the delete URLs leave nothing under deploy/.
func checkUserData(t *testing.T, b64, binary, bucket string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	script := string(raw)
	for _, want := range []string{"#!/bin/sh", "useradd --system", "ExecStart=/usr/local/bin/vispyr serve --config /etc/vispyr/vispyr.yaml", "systemctl enable --now vispyr.service"} {
		if !strings.Contains(script, want) {
			t.Fatalf("user data lacks %q:\n%s", want, script)
		}
	}
	fetches := regexp.MustCompile(`(?m)^fetch '([^']+)' (\S+)\.new$`).FindAllStringSubmatch(script, -1)
	drops := regexp.MustCompile(`(?m)^drop '([^']+)'$`).FindAllStringSubmatch(script, -1)
	if len(fetches) != 4 || len(drops) != 4 {
		t.Fatalf("user data fetches %d and drops %d files, want 4 each:\n%s", len(fetches), len(drops), script)
	}
	got := map[string][]byte{}
	for _, f := range fetches {
		resp, err := http.Get(f[1])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s for %s: %s %s", f[1], f[2], resp.Status, body)
		}
		got[f[2]] = body
	}
	want, _ := os.ReadFile(binary)
	if !bytes.Equal(got[binaryFile], want) {
		t.Fatalf("the instance would fetch a binary of %d bytes, not the %d of %s", len(got[binaryFile]), len(want), binary)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "vispyr.yaml")
	os.WriteFile(path, got[configFile], 0o600)
	cfg := config.Default()
	if err := cfg.LoadFile(path); err != nil {
		t.Fatalf("instance config:\n%s\nload: %v", got[configFile], err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("instance config:\n%s\nvalidate: %v", got[configFile], err)
	}
	s3 := cfg.Traces.Storage.S3
	if cfg.Traces.Storage.Backend != "s3" || s3.Bucket != bucket || s3.Endpoint != "s3.us-east-1.amazonaws.com" || s3.AccessKey != "" || cfg.Traces.Retention != 7*24*time.Hour {
		t.Fatalf("instance config's traces: %+v", cfg.Traces)
	}
	for _, d := range drops {
		req, _ := http.NewRequest(http.MethodDelete, d[1], nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("DELETE %s: %s", d[1], resp.Status)
		}
	}
}
