package awsdeploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/smithy-go"

	"github.com/vispyr/vispyr/internal/deploy"
)

// deployment carries one run's state and clients from planning to its steps.
type deployment struct {
	o     Options
	st    *State
	c     clients
	bin   []byte
	creds *deploy.Credentials
	// newBucket is the name the plan gives a bucket it creates.
	newBucket string
	// notes are added to the plan.
	notes []string
}

// open loads the state and the AWS configuration; the state's region wins, so a
// deployment is always managed where it was made.
func open(ctx context.Context, o *Options) (*deployment, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	st, err := loadState(o.StateDir, o.Name)
	if err != nil {
		return nil, err
	}
	if st.Region != "" && o.Region != "" && st.Region != o.Region && !st.empty() {
		return nil, fmt.Errorf("deployment %q lives in %s (state %s), not %s", o.Name, st.Region, st.path, o.Region)
	}
	region := o.Region
	if region == "" {
		region = st.Region
	}
	var d deployment
	if o.AWS != nil {
		cfg := o.AWS.Copy()
		if region != "" {
			cfg.Region = region
		}
		d.c = newClients(cfg, o.Endpoints)
		region = cfg.Region
	} else {
		cfg, err := loadConfig(ctx, region)
		if err != nil {
			return nil, err
		}
		d.c = newClients(cfg, o.Endpoints)
		region = cfg.Region
	}
	st.Region = region
	d.o, d.st = *o, st
	d.adopt()
	if d.o.Domain == "" && d.o.Email != "" {
		return nil, fmt.Errorf("--email is for ACME: it needs --domain")
	}
	return &d, nil
}

// adopt keeps what an earlier deploy was given when this run does not say
// otherwise, so a bare re-run changes nothing.
func (d *deployment) adopt() {
	o, st := &d.o, d.st
	if len(o.AllowCIDRs) == 0 && len(st.AllowCIDRs) > 0 {
		o.AllowCIDRs = st.AllowCIDRs
		d.notes = append(d.notes, "the ingest and query ports stay open to "+cidrText(st.AllowCIDRs)+" (the earlier --allow; pass --allow to change it)")
	}
	if o.Domain == "" && st.Domain != "" && st.Instance != "" {
		o.Domain = st.Domain
	}
	if o.Retention == 0 && st.LifecycleDays > 0 {
		o.Retention = time.Duration(st.LifecycleDays) * 24 * time.Hour
	}
	if o.Retention == 0 {
		o.Retention = 30 * 24 * time.Hour
	}
}

// isCode says whether err is an AWS error with one of the codes.
func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

func (d *deployment) resourceName() string { return "vispyr-" + d.o.Name }
