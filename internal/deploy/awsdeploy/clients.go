// Package awsdeploy installs Vispyr on AWS: an EC2 instance with an elastic IP,
// a security group, an IAM role that reaches one S3 bucket, and that bucket for
// traces. A state file records what was created, so a re-run changes nothing
// that exists and destroy removes exactly that.
package awsdeploy

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Endpoints override the services' addresses (tests, S3-compatible stores);
// empty fields use AWS's.
type Endpoints struct {
	EC2, IAM, S3 string
}

// clients are the three services a deploy talks to.
type clients struct {
	ec2 *ec2.Client
	iam *iam.Client
	s3  *s3.Client
}

// loadConfig reads credentials and region the standard way: environment,
// shared config and credentials files (AWS_PROFILE), SSO, the instance role.
func loadConfig(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("no AWS region: pass --region or set AWS_REGION")
	}
	return cfg, nil
}

func newClients(cfg aws.Config, ep Endpoints) clients {
	return clients{
		ec2: ec2.NewFromConfig(cfg, func(o *ec2.Options) {
			if ep.EC2 != "" {
				o.BaseEndpoint = aws.String(ep.EC2)
			}
		}),
		iam: iam.NewFromConfig(cfg, func(o *iam.Options) {
			if ep.IAM != "" {
				o.BaseEndpoint = aws.String(ep.IAM)
			}
		}),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			if ep.S3 != "" {
				o.BaseEndpoint = aws.String(ep.S3)
				o.UsePathStyle = true // MinIO and other S3-compatible stores
			}
		}),
	}
}
