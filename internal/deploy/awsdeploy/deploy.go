package awsdeploy

import (
	"context"
	"fmt"
	"os"

	"github.com/vispyr/vispyr/internal/deploy"
)

// Result is what a deploy prints at the end, returned for callers and tests.
type Result struct {
	PublicIP, Host string
	URLs           map[string]string
	Credentials    *deploy.Credentials // nil when the instance existed: the first deploy printed them
	Changed        bool                // false when the plan had nothing to do
}

// Deploy creates what the state file does not list or AWS no longer has, after
// showing the plan and getting a yes.
func Deploy(ctx context.Context, o Options) (*Result, error) {
	d, err := open(ctx, &o)
	if err != nil {
		return nil, err
	}
	if d.st.Domain != "" && d.st.Domain != o.Domain && d.st.Instance != "" {
		return nil, fmt.Errorf("this deployment serves %s: pass --domain %s (the domain of a running instance cannot change; destroy first)", d.st.Domain, d.st.Domain)
	}
	bin, err := os.ReadFile(d.binaryPath())
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	d.bin = bin
	plan, err := d.plan(ctx)
	if err != nil {
		return nil, err
	}
	plan.Print(o.Out)
	if err := deploy.Confirm(plan, o.In, o.Out, o.Yes); err != nil {
		return nil, err
	}
	if err := deploy.Execute(ctx, plan, o.Out); err != nil {
		return nil, err
	}
	res := d.result(len(plan.Steps) > 0)
	printResult(o, res, d.st)
	return res, nil
}

func (d *deployment) binaryPath() string {
	if d.o.Binary != "" {
		return d.o.Binary
	}
	exe, _ := os.Executable()
	return exe
}

// plan checks each recorded resource against AWS (read-only calls) and adds a
// step for each one that is missing or differs.
func (d *deployment) plan(ctx context.Context) (deploy.Plan, error) {
	p := deploy.Plan{Action: "deploy", Target: d.target()}
	var addr, inst []deploy.Step
	checks := []struct {
		what string
		plan func(context.Context) ([]deploy.Step, error)
		keep *[]deploy.Step
	}{
		{"bucket", d.bucketSteps, nil},
		{"role", d.roleSteps, nil},
		{"instance profile", d.profileSteps, nil},
		{"security group", d.securityGroupSteps, nil},
		{"elastic IP", d.addressSteps, &addr},
		{"instance", d.instanceSteps, &inst},
		{"elastic IP association", func(ctx context.Context) ([]deploy.Step, error) {
			return d.associationSteps(ctx, len(inst) > 0, len(addr) > 0)
		}, nil},
	}
	for _, c := range checks {
		steps, err := c.plan(ctx)
		if err != nil {
			return p, fmt.Errorf("check %s: %w", c.what, err)
		}
		if c.keep != nil {
			*c.keep = steps
		}
		p.Steps = append(p.Steps, steps...)
	}
	if len(inst) > 0 {
		p.Steps = append(p.Steps, deploy.Step{Title: "wait until Vispyr answers on the elastic IP's port 443 (first boot: a few minutes)",
			Run: func(ctx context.Context) error { return d.o.Ready(ctx, d.st.PublicIP) }})
	}
	p.Notes = append(p.Notes, d.notes...)
	if len(addr) > 0 && len(inst) == 0 && d.o.Domain == "" {
		p.Notes = append(p.Notes, "the running instance's self-signed certificate names its old address; clients that check the name need a new instance (destroy and deploy again)")
	}
	if len(p.Steps) > 0 && d.st.Instance == "" {
		p.Notes = append(p.Notes, "the instance has no SSH key and port 22 stays closed: it is managed by re-running vispyr deploy aws")
	}
	if len(d.o.AllowCIDRs) == 0 {
		p.Notes = append(p.Notes, "no --allow CIDR: the ingest and query ports are reachable from nowhere; only 443 (the UI) is open")
	}
	if d.o.Domain != "" && len(p.Steps) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("point the DNS A record of %s at the elastic IP: Vispyr obtains its certificate once the name resolves", d.o.Domain))
	}
	return p, nil
}

func (d *deployment) target() string { return fmt.Sprintf("aws:%s/%s", d.st.Region, d.o.Name) }

// step wraps a change so that the state is saved as soon as it is made.
func (d *deployment) step(title string, run func(ctx context.Context) error) deploy.Step {
	return deploy.Step{Title: title, Run: func(ctx context.Context) error {
		err := run(ctx)
		if serr := d.st.save(); serr != nil && err == nil {
			err = serr
		}
		return err
	}}
}

func (d *deployment) result(changed bool) *Result {
	h := d.st.PublicIP
	if d.o.Domain != "" {
		h = d.o.Domain
	}
	return &Result{PublicIP: d.st.PublicIP, Host: h, Credentials: d.creds, Changed: changed, URLs: map[string]string{
		"ui":          "https://" + h + "/",
		"prometheus":  "https://" + h + ":9090",
		"tempo":       "https://" + h + ":3200",
		"pyroscope":   "https://" + h + ":4040",
		"otlp_grpc":   h + ":4317",
		"otlp_http":   "https://" + h + ":4318",
		"pyro_ingest": "https://" + h + ":9999",
	}}
}

func printResult(o Options, r *Result, st *State) {
	w, u := o.Out, r.URLs
	fmt.Fprintf(w, "\nVispyr runs on %s (elastic IP %s, instance %s, traces in s3://%s).\n", st.Region, r.PublicIP, st.Instance, st.Bucket)
	fmt.Fprintf(w, "  UI:                        %s\n", u["ui"])
	fmt.Fprintf(w, "  Grafana datasources:       Prometheus %s, Tempo %s, Pyroscope %s\n", u["prometheus"], u["tempo"], u["pyroscope"])
	fmt.Fprintf(w, "  OTLP:                      gRPC %s (TLS), HTTP %s\n", u["otlp_grpc"], u["otlp_http"])
	if r.Credentials != nil {
		fmt.Fprintf(w, "  UI login:                  %s / %s\n", r.Credentials.User, r.Credentials.Password)
		fmt.Fprintf(w, "  API token (Bearer):        %s\n", r.Credentials.Token)
		fmt.Fprintln(w, "  (shown once: the instance and the state file keep only their hashes)")
	} else {
		fmt.Fprintln(w, "  credentials:               unchanged (printed by the first deploy)")
	}
	if o.Domain == "" {
		fmt.Fprintln(w, "  TLS: self-signed for the elastic IP; clients skip verification or pin it (openssl s_client -connect "+r.PublicIP+":443)")
	} else {
		fmt.Fprintf(w, "  TLS: Vispyr obtains and renews the certificate for %s through ACME itself\n", o.Domain)
	}
	fmt.Fprintf(w, "  State: %s (vispyr destroy aws --name %s removes what it lists)\n", st.path, st.Name)
}
