package awsdeploy

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/vispyr/vispyr/internal/deploy"
)

const (
	// tracePrefix is where the trace store writes in the bucket; the lifecycle
	// rule covers only it.
	tracePrefix = "traces/"
	// installPrefix holds what the instance downloads at first boot; removed once read.
	installPrefix = "deploy/"
	lifecycleRule = "vispyr-traces-retention"
)

func (d *deployment) bucketSteps(ctx context.Context) ([]deploy.Step, error) {
	days := d.o.retentionDays()
	lifecycle := d.step(fmt.Sprintf("set the bucket's lifecycle rule: objects under %s expire after %d days (the retention)", tracePrefix, days),
		func(ctx context.Context) error {
			if err := d.putLifecycle(ctx, days); err != nil {
				return err
			}
			d.st.LifecycleDays = days
			return nil
		})
	if d.st.Bucket != "" {
		_, err := d.c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(d.st.Bucket)})
		switch {
		case err == nil:
			got, err := d.lifecycleDays(ctx)
			if err != nil {
				return nil, err
			}
			if got == days {
				return nil, nil
			}
			return []deploy.Step{lifecycle}, nil
		case !isCode(err, "NotFound", "NoSuchBucket"):
			return nil, fmt.Errorf("head bucket %s: %w", d.st.Bucket, err)
		}
	}
	name := d.st.Bucket
	if name == "" {
		suffix, err := randomHex(4)
		if err != nil {
			return nil, err
		}
		name = fmt.Sprintf("%s-%s", d.resourceName(), suffix)
	}
	d.newBucket = name
	create := d.step(fmt.Sprintf("create S3 bucket %s for traces (private)", name), func(ctx context.Context) error {
		in := &s3.CreateBucketInput{Bucket: aws.String(name)}
		if d.st.Region != "us-east-1" { // us-east-1 refuses its own name as a constraint
			in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(d.st.Region)}
		}
		if _, err := d.c.s3.CreateBucket(ctx, in); err != nil {
			return fmt.Errorf("create bucket: %w", err)
		}
		d.st.Bucket, d.st.LifecycleDays = name, 0
		return nil
	})
	return []deploy.Step{create, lifecycle}, nil
}

func (d *deployment) putLifecycle(ctx context.Context, days int32) error {
	_, err := d.c.s3.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket: aws.String(d.st.Bucket),
		LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{
			ID:         aws.String(lifecycleRule),
			Status:     s3types.ExpirationStatusEnabled,
			Filter:     &s3types.LifecycleRuleFilter{Prefix: aws.String(tracePrefix)},
			Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(days)},
		}}},
	})
	if err != nil {
		return fmt.Errorf("put lifecycle: %w", err)
	}
	return nil
}

// lifecycleDays reads the expiration of Vispyr's lifecycle rule, 0 when absent.
func (d *deployment) lifecycleDays(ctx context.Context) (int32, error) {
	out, err := d.c.s3.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(d.st.Bucket)})
	if isCode(err, "NoSuchLifecycleConfiguration") {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get lifecycle of %s: %w", d.st.Bucket, err)
	}
	for _, r := range out.Rules {
		if aws.ToString(r.ID) == lifecycleRule && r.Expiration != nil {
			return aws.ToInt32(r.Expiration.Days), nil
		}
	}
	return 0, nil
}

// deletePrefix removes every object under prefix ("" for the whole bucket).
func (d *deployment) deletePrefix(ctx context.Context, prefix string) error {
	p := s3.NewListObjectsV2Paginator(d.c.s3, &s3.ListObjectsV2Input{Bucket: aws.String(d.st.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if isCode(err, "NoSuchBucket") {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", d.st.Bucket, prefix, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		var ids []s3types.ObjectIdentifier
		for _, o := range page.Contents {
			ids = append(ids, s3types.ObjectIdentifier{Key: o.Key})
		}
		out, err := d.c.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(d.st.Bucket), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return fmt.Errorf("delete objects: %w", err)
		}
		if len(out.Errors) > 0 {
			return fmt.Errorf("delete %s: %s", aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
	}
	return nil
}
