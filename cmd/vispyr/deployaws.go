package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/vispyr/vispyr/internal/deploy/awsdeploy"
)

const deployAWSUsage = `Usage: vispyr deploy aws [flags]

Runs Vispyr on AWS, or brings an earlier deploy back to what it should be:
an S3 bucket for traces (a lifecycle rule expires them after the retention),
an IAM role and instance profile that reach that bucket only, a security group
with 443 open to all and the ingest and query ports only to the --allow CIDRs,
an elastic IP, and a Debian EC2 instance that installs Vispyr as a systemd
unit at first boot. Credentials and region come from the standard AWS sources
(environment, ~/.aws/config and credentials, AWS_PROFILE, SSO).
What is created is recorded in ~/.config/vispyr/aws-<name>.json: a re-run
changes only what is missing or differs, and vispyr destroy aws removes
exactly what the file lists. The plan is shown and confirmed first; the URL and
credentials are printed at the end.

Flags:
`

const destroyAWSUsage = `Usage: vispyr destroy aws [flags]

Removes what vispyr deploy aws created, as its state file lists it, dependents
first: the elastic IP's association, the instance (with its disk), the elastic
IP, the security group, the instance profile, the role. The trace bucket stays
unless --purge is given. The plan is shown and confirmed first; answering
anything but yes removes nothing.

Flags:
`

// awsCmd runs `vispyr deploy aws` or `vispyr destroy aws`.
func awsCmd(args []string, destroy bool) int {
	name, usage := "deploy aws", deployAWSUsage
	if destroy {
		name, usage = "destroy aws", destroyAWSUsage
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	var o awsdeploy.Options
	var allow listFlag
	var disk int
	fs.StringVar(&o.Name, "name", "vispyr", "name of the deployment: resources are vispyr-<name>, the state file aws-<name>.json")
	fs.StringVar(&o.Region, "region", "", "AWS region (default: AWS_REGION or the profile's; a later run uses the state's)")
	fs.StringVar(&o.StateDir, "state-dir", "", "directory of the state file (default ~/.config/vispyr)")
	fs.BoolVar(&o.Yes, "yes", false, "do not ask for confirmation (for scripts)")
	if destroy {
		fs.BoolVar(&o.Purge, "purge", false, "also delete the trace bucket and every trace in it")
	} else {
		fs.Var(&allow, "allow", "CIDR allowed to reach the ingest and query ports (repeatable; default: the deployment's); 443 is open to all")
		fs.StringVar(&o.Domain, "domain", "", "DNS name for the instance (default: the deployment's): Vispyr obtains a certificate through ACME (Let's Encrypt) once it resolves to the elastic IP")
		fs.StringVar(&o.Email, "email", "", "e-mail address the ACME CA sends expiry notices to")
		fs.StringVar(&o.InstanceType, "instance-type", "t3.small", "EC2 instance type (x86_64 or arm64; --binary must match)")
		fs.IntVar(&disk, "disk-gb", 30, "root volume size in GB (metrics, profiles and logs live there)")
		fs.DurationVar(&o.Retention, "retention", 0, "how long traces are kept: the instance's traces.retention and the bucket's lifecycle rule, in whole days (default 720h, or the deployment's)")
		fs.StringVar(&o.Binary, "binary", "", "Vispyr binary to install (default: this one; build with GOARCH for arm64 instances)")
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	o.DiskGB = int32(disk)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "vispyr %s: unexpected argument %q (flags only)\n", name, fs.Arg(0))
		return 2
	}
	o.AllowCIDRs = allow

	return runDeployment(name, func(ctx context.Context) error {
		if destroy {
			return awsdeploy.Destroy(ctx, o)
		}
		_, err := awsdeploy.Deploy(ctx, o)
		return err
	})
}
