package awsdeploy

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vispyr/vispyr/internal/deploy"
)

// Destroy removes what the state file lists, in the reverse order of creation;
// the trace bucket only with Purge. Nothing is touched before the yes.
func Destroy(ctx context.Context, o Options) error {
	d, err := open(ctx, &o)
	if err != nil {
		return err
	}
	p := d.destroyPlan()
	p.Print(o.Out)
	if err := deploy.Confirm(p, o.In, o.Out, o.Yes); err != nil {
		return err
	}
	if err := deploy.Execute(ctx, p, o.Out); err != nil {
		return err
	}
	if d.st.empty() {
		if err := d.st.remove(); err != nil {
			return err
		}
		if len(p.Steps) > 0 {
			fmt.Fprintf(o.Out, "Vispyr %s is removed from %s.\n", o.Name, d.st.Region)
		}
		return nil
	}
	if err := d.st.save(); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "Vispyr %s is removed from %s; the trace bucket s3://%s stays (a later deploy reuses it; --purge deletes it).\n", o.Name, d.st.Region, d.st.Bucket)
	return nil
}

// destroyPlan lists the state's resources, dependents first. Each step treats a
// resource already gone as removed, so an interrupted destroy can be re-run.
func (d *deployment) destroyPlan() deploy.Plan {
	st := d.st
	p := deploy.Plan{Action: "destroy", Target: d.target()}
	if st.empty() {
		p.Notes = append(p.Notes, "no resources recorded in "+st.path)
		return p
	}
	gone := func(err error, codes ...string) error {
		if isCode(err, codes...) {
			return nil
		}
		return err
	}
	if st.Association != "" {
		p.Steps = append(p.Steps, d.step("detach the elastic IP "+st.PublicIP+" from the instance", func(ctx context.Context) error {
			_, err := d.c.ec2.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: aws.String(st.Association)})
			if err = gone(err, "InvalidAssociationID.NotFound"); err != nil {
				return fmt.Errorf("disassociate address: %w", err)
			}
			st.Association = ""
			return nil
		}))
	}
	if st.Instance != "" {
		p.Steps = append(p.Steps, d.step(fmt.Sprintf("terminate instance %s (its disk, with metrics, profiles and logs, goes with it) and wait until it is gone", st.Instance), func(ctx context.Context) error {
			_, err := d.c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{st.Instance}})
			if err = gone(err, "InvalidInstanceID.NotFound"); err != nil {
				return fmt.Errorf("terminate instance: %w", err)
			}
			if err := d.waitState(ctx, st.Instance, ec2types.InstanceStateNameTerminated, 10*time.Minute); err != nil {
				return err
			}
			st.Instance, st.Image, st.Domain, st.BinarySHA256 = "", "", "", ""
			st.TokenSHA256, st.AdminUser, st.Bcrypt = "", "", ""
			if st.Bucket != "" && !d.o.Purge {
				return d.deletePrefix(ctx, installPrefix)
			}
			return nil
		}))
	}
	if st.AllocationID != "" {
		p.Steps = append(p.Steps, d.step("release the elastic IP "+st.PublicIP, func(ctx context.Context) error {
			_, err := d.c.ec2.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: aws.String(st.AllocationID)})
			if err = gone(err, "InvalidAllocationID.NotFound"); err != nil {
				return fmt.Errorf("release address: %w", err)
			}
			st.AllocationID, st.PublicIP = "", ""
			return nil
		}))
	}
	if st.SecurityGroup != "" {
		p.Steps = append(p.Steps, d.step("delete security group "+st.SecurityGroup, func(ctx context.Context) error {
			if err := d.deleteSecurityGroup(ctx); err != nil {
				return err
			}
			st.SecurityGroup, st.AllowCIDRs = "", nil
			return nil
		}))
	}
	if st.ProfileHasRole {
		p.Steps = append(p.Steps, d.step("take role "+st.Role+" out of instance profile "+st.InstanceProfile, func(ctx context.Context) error {
			_, err := d.c.iam.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{
				InstanceProfileName: aws.String(st.InstanceProfile), RoleName: aws.String(st.Role)})
			if err = gone(err, "NoSuchEntity"); err != nil {
				return fmt.Errorf("remove role from instance profile: %w", err)
			}
			st.ProfileHasRole = false
			return nil
		}))
	}
	if st.InstanceProfile != "" {
		p.Steps = append(p.Steps, d.step("delete instance profile "+st.InstanceProfile, func(ctx context.Context) error {
			_, err := d.c.iam.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String(st.InstanceProfile)})
			if err = gone(err, "NoSuchEntity"); err != nil {
				return fmt.Errorf("delete instance profile: %w", err)
			}
			st.InstanceProfile = ""
			return nil
		}))
	}
	if st.RolePolicy != "" {
		p.Steps = append(p.Steps, d.step("delete role policy "+st.RolePolicy, func(ctx context.Context) error {
			_, err := d.c.iam.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(st.Role), PolicyName: aws.String(st.RolePolicy)})
			if err = gone(err, "NoSuchEntity"); err != nil {
				return fmt.Errorf("delete role policy: %w", err)
			}
			st.RolePolicy = ""
			return nil
		}))
	}
	if st.Role != "" {
		p.Steps = append(p.Steps, d.step("delete IAM role "+st.Role, func(ctx context.Context) error {
			_, err := d.c.iam.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(st.Role)})
			if err = gone(err, "NoSuchEntity"); err != nil {
				return fmt.Errorf("delete role: %w", err)
			}
			st.Role = ""
			return nil
		}))
	}
	if st.Bucket != "" && d.o.Purge {
		p.Steps = append(p.Steps, d.step(fmt.Sprintf("delete every object in s3://%s (the traces) and the bucket", st.Bucket), func(ctx context.Context) error {
			if err := d.deletePrefix(ctx, ""); err != nil {
				return err
			}
			_, err := d.c.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(st.Bucket)})
			if err = gone(err, "NoSuchBucket"); err != nil {
				return fmt.Errorf("delete bucket: %w", err)
			}
			st.Bucket, st.LifecycleDays = "", 0
			return nil
		}))
	} else if st.Bucket != "" {
		p.Notes = append(p.Notes, fmt.Sprintf("the trace bucket s3://%s stays with its traces (--purge deletes it)", st.Bucket))
	}
	return p
}

// deleteSecurityGroup retries while EC2 still counts the terminated
// instance's network interface as a user of the group.
func (d *deployment) deleteSecurityGroup(ctx context.Context) error {
	for try := 0; ; try++ {
		_, err := d.c.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(d.st.SecurityGroup)})
		switch {
		case err == nil, isCode(err, "InvalidGroup.NotFound"):
			return nil
		case !isCode(err, "DependencyViolation") || try >= 36:
			return fmt.Errorf("delete security group: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d.o.Poll):
		}
	}
}
