package awsdeploy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/vispyr/vispyr/internal/deploy"
)

const rolePolicyName = "vispyr-trace-bucket"

// assumeRolePolicy lets EC2 instances (and nothing else) take the role.
const assumeRolePolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// bucketPolicy allows the trace bucket and nothing else.
func bucketPolicy(bucket string) string {
	arn := "arn:aws:s3:::" + bucket
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{
			{"Effect": "Allow", "Action": []string{"s3:ListBucket", "s3:GetBucketLocation"}, "Resource": arn},
			{"Effect": "Allow", "Action": []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}, "Resource": arn + "/*"},
		},
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

func (d *deployment) iamTags() []iamtypes.Tag {
	return []iamtypes.Tag{{Key: aws.String("vispyr:deployment"), Value: aws.String(d.o.Name)}}
}

func (d *deployment) roleSteps(ctx context.Context) ([]deploy.Step, error) {
	name := d.resourceName()
	exists := false
	if d.st.Role != "" {
		_, err := d.c.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(d.st.Role)})
		if err != nil && !isCode(err, "NoSuchEntity") {
			return nil, fmt.Errorf("get role: %w", err)
		}
		exists = err == nil
	}
	var steps []deploy.Step
	if !exists {
		steps = append(steps, d.step(fmt.Sprintf("create IAM role %s (assumable by EC2 only)", name), func(ctx context.Context) error {
			_, err := d.c.iam.CreateRole(ctx, &iam.CreateRoleInput{
				RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(assumeRolePolicy),
				Description: aws.String("Vispyr instance " + d.o.Name + ": its trace bucket only"), Tags: d.iamTags(),
			})
			if err != nil {
				return fmt.Errorf("create role: %w", err)
			}
			d.st.Role, d.st.RolePolicy = name, ""
			return nil
		}))
	}
	if !exists || d.st.RolePolicy == "" {
		steps = append(steps, d.step(fmt.Sprintf("allow role %s the trace bucket only (inline policy %s)", name, rolePolicyName), func(ctx context.Context) error {
			_, err := d.c.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
				RoleName: aws.String(d.st.Role), PolicyName: aws.String(rolePolicyName), PolicyDocument: aws.String(bucketPolicy(d.st.Bucket)),
			})
			if err != nil {
				return fmt.Errorf("put role policy: %w", err)
			}
			d.st.RolePolicy = rolePolicyName
			return nil
		}))
	}
	return steps, nil
}

func (d *deployment) profileSteps(ctx context.Context) ([]deploy.Step, error) {
	name := d.resourceName()
	exists, hasRole := false, false
	if d.st.InstanceProfile != "" {
		out, err := d.c.iam.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(d.st.InstanceProfile)})
		if err != nil && !isCode(err, "NoSuchEntity") {
			return nil, fmt.Errorf("get instance profile: %w", err)
		}
		if err == nil {
			exists = true
			for _, r := range out.InstanceProfile.Roles {
				hasRole = hasRole || aws.ToString(r.RoleName) == d.st.Role
			}
		}
	}
	var steps []deploy.Step
	if !exists {
		steps = append(steps, d.step("create instance profile "+name, func(ctx context.Context) error {
			_, err := d.c.iam.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(name), Tags: d.iamTags()})
			if err != nil {
				return fmt.Errorf("create instance profile: %w", err)
			}
			d.st.InstanceProfile, d.st.ProfileHasRole = name, false
			return nil
		}))
	}
	if !hasRole {
		steps = append(steps, d.step(fmt.Sprintf("put role %s in instance profile %s", name, name), func(ctx context.Context) error {
			_, err := d.c.iam.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{
				InstanceProfileName: aws.String(d.st.InstanceProfile), RoleName: aws.String(d.st.Role),
			})
			if err != nil {
				return fmt.Errorf("add role to instance profile: %w", err)
			}
			d.st.ProfileHasRole = true
			return nil
		}))
	}
	return steps, nil
}
