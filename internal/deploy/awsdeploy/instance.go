package awsdeploy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vispyr/vispyr/internal/deploy"
)

// debianOwner is the AWS account Debian publishes its official images from.
const debianOwner = "136693071363"

// image is the AMI an instance starts from.
type image struct {
	id, name, rootDevice, arch string
}

// instanceArch asks EC2 which architecture the instance type runs.
func (d *deployment) instanceArch(ctx context.Context) (string, error) {
	out, err := d.c.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{ec2types.InstanceType(d.o.InstanceType)}})
	if err != nil {
		return "", fmt.Errorf("describe instance type %s: %w", d.o.InstanceType, err)
	}
	if len(out.InstanceTypes) != 1 || out.InstanceTypes[0].ProcessorInfo == nil {
		return "", fmt.Errorf("instance type %s is not offered in %s", d.o.InstanceType, d.st.Region)
	}
	for _, a := range out.InstanceTypes[0].ProcessorInfo.SupportedArchitectures {
		if a == ec2types.ArchitectureTypeX8664 || a == ec2types.ArchitectureTypeArm64 {
			return string(a), nil
		}
	}
	return "", fmt.Errorf("instance type %s runs neither x86_64 nor arm64", d.o.InstanceType)
}

// latestDebian finds the newest official Debian 13 image for arch.
func (d *deployment) latestDebian(ctx context.Context, arch string) (image, error) {
	short := map[string]string{"x86_64": "amd64", "arm64": "arm64"}[arch]
	out, err := d.c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{debianOwner},
		Filters: []ec2types.Filter{
			{Name: aws.String("name"), Values: []string{"debian-13-" + short + "-*"}},
			{Name: aws.String("architecture"), Values: []string{arch}},
			{Name: aws.String("state"), Values: []string{"available"}},
		},
	})
	if err != nil {
		return image{}, fmt.Errorf("describe images: %w", err)
	}
	imgs := out.Images
	if len(imgs) == 0 {
		return image{}, fmt.Errorf("no Debian 13 %s image in %s", arch, d.st.Region)
	}
	sort.Slice(imgs, func(i, j int) bool { return aws.ToString(imgs[i].CreationDate) > aws.ToString(imgs[j].CreationDate) })
	i := imgs[0]
	return image{id: aws.ToString(i.ImageId), name: aws.ToString(i.Name), rootDevice: aws.ToString(i.RootDeviceName), arch: arch}, nil
}

// instanceState is the instance's state name, "" when EC2 does not know it.
func (d *deployment) instanceState(ctx context.Context, id string) (ec2types.InstanceStateName, error) {
	out, err := d.c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if isCode(err, "InvalidInstanceID.NotFound") {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("describe instance %s: %w", id, err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if aws.ToString(i.InstanceId) == id && i.State != nil {
				return i.State.Name, nil
			}
		}
	}
	return "", nil
}

// waitState polls until the instance reaches want, for at most limit.
func (d *deployment) waitState(ctx context.Context, id string, want ec2types.InstanceStateName, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		got, err := d.instanceState(ctx, id)
		if err != nil {
			return err
		}
		if got == want || (want == ec2types.InstanceStateNameTerminated && got == "") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("instance %s is %s after %s, not %s", id, got, limit, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d.o.Poll):
		}
	}
}

// instanceSteps launches the instance unless the recorded one is alive.
func (d *deployment) instanceSteps(ctx context.Context) ([]deploy.Step, error) {
	if d.st.Instance != "" {
		s, err := d.instanceState(ctx, d.st.Instance)
		if err != nil {
			return nil, err
		}
		switch s {
		case ec2types.InstanceStateNamePending, ec2types.InstanceStateNameRunning:
			if sum := binarySum(d.bin); d.st.BinarySHA256 != "" && d.st.BinarySHA256 != sum {
				d.notes = append(d.notes, fmt.Sprintf("instance %s runs the binary it installed at first boot (sha256 %.12s), not this one (%.12s): deploy aws does not replace a running instance's binary; destroy and deploy again to upgrade (the bucket and its traces stay)",
					d.st.Instance, d.st.BinarySHA256, sum))
			}
			return nil, nil
		case ec2types.InstanceStateNameStopping, ec2types.InstanceStateNameStopped:
			return nil, fmt.Errorf("instance %s is %s: start it (aws ec2 start-instances) or destroy the deployment", d.st.Instance, s)
		}
	}
	arch, err := d.instanceArch(ctx)
	if err != nil {
		return nil, err
	}
	if err := deploy.CheckArch(d.bin, arch); err != nil {
		return nil, err
	}
	img, err := d.latestDebian(ctx, arch)
	if err != nil {
		return nil, err
	}
	if d.st.TokenSHA256 == "" {
		creds, err := deploy.NewCredentials("admin")
		if err != nil {
			return nil, err
		}
		d.creds = &creds
	}
	launch := d.step(fmt.Sprintf("launch a %s instance from %s (%s), %d GB disk, with the role and the security group; at first boot it installs Vispyr as a systemd unit",
		d.o.InstanceType, img.name, img.id, d.o.DiskGB), func(ctx context.Context) error { return d.launch(ctx, img) })
	upload := d.step(fmt.Sprintf("upload the binary (%.1f MB) and configuration to s3://%s/%s for the instance's first boot",
		float64(len(d.bin))/1e6, d.bucketName(), installPrefix), func(ctx context.Context) error { return d.upload(ctx) })
	wait := d.step("wait until the instance is running", func(ctx context.Context) error {
		return d.waitState(ctx, d.st.Instance, ec2types.InstanceStateNameRunning, 10*time.Minute)
	})
	return []deploy.Step{upload, launch, wait}, nil
}

// bucketName is the bucket's name, known at plan time only once created.
func (d *deployment) bucketName() string {
	if d.st.Bucket == "" {
		return d.newBucket
	}
	return d.st.Bucket
}

func (d *deployment) launch(ctx context.Context, img image) error {
	ud, err := d.userData(ctx)
	if err != nil {
		return err
	}
	in := &ec2.RunInstancesInput{
		ImageId: aws.String(img.id), InstanceType: ec2types.InstanceType(d.o.InstanceType),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SecurityGroupIds:   []string{d.st.SecurityGroup},
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String(d.st.InstanceProfile)},
		UserData:           aws.String(base64.StdEncoding.EncodeToString([]byte(ud))),
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{
			HttpTokens: ec2types.HttpTokensStateRequired, HttpEndpoint: ec2types.InstanceMetadataEndpointStateEnabled,
		},
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String(img.rootDevice), Ebs: &ec2types.EbsBlockDevice{
			VolumeSize: aws.Int32(d.o.DiskGB), VolumeType: ec2types.VolumeTypeGp3, Encrypted: aws.Bool(true), DeleteOnTermination: aws.Bool(true),
		}}},
		TagSpecifications: append(d.tags(ec2types.ResourceTypeInstance), d.tags(ec2types.ResourceTypeVolume)...),
		ClientToken:       aws.String(d.st.Name + "-" + randomToken()),
	}
	// A new instance profile takes a few seconds to reach EC2: retry while EC2
	// says it does not know it.
	var out *ec2.RunInstancesOutput
	for try := 0; ; try++ {
		out, err = d.c.ec2.RunInstances(ctx, in)
		if err == nil || try >= 24 || !isCode(err, "InvalidParameterValue") || !strings.Contains(err.Error(), "iamInstanceProfile") {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d.o.Poll):
		}
	}
	if err != nil {
		return fmt.Errorf("run instance: %w", err)
	}
	d.st.Instance, d.st.Image, d.st.Association, d.st.Domain = aws.ToString(out.Instances[0].InstanceId), img.id, "", d.o.Domain
	d.st.BinarySHA256 = binarySum(d.bin)
	if d.creds != nil {
		d.st.TokenSHA256, d.st.AdminUser, d.st.Bcrypt = d.creds.TokenSHA256, d.creds.User, d.creds.Bcrypt
	}
	return nil
}

// upload puts what the first boot installs under deploy/ in the bucket: the
// binary, the configuration and the TLS certificate.
func (d *deployment) upload(ctx context.Context) error {
	cfg, err := d.hostConfig().Render()
	if err != nil {
		return err
	}
	files := map[string][]byte{"vispyr": d.bin, "vispyr.yaml": cfg}
	if d.o.Domain == "" {
		cert, key, err := deploy.SelfSigned([]string{d.st.PublicIP}, 5*365*24*time.Hour, time.Now())
		if err != nil {
			return err
		}
		files["cert.pem"], files["key.pem"] = cert, key
	}
	for name, body := range files {
		if err := d.putObject(ctx, installPrefix+name, body); err != nil {
			return err
		}
	}
	return nil
}

func (d *deployment) hostConfig() deploy.HostConfig {
	h := deploy.HostConfig{
		DataDir: dataDir, CertFile: certFile, KeyFile: keyFile,
		TokenSHA256: d.st.TokenSHA256, User: d.st.AdminUser, Bcrypt: d.st.Bcrypt,
		TracesRetention: d.o.Retention,
		S3:              &deploy.S3{Endpoint: "s3." + d.st.Region + ".amazonaws.com", Bucket: d.st.Bucket, Region: d.st.Region, Prefix: strings.TrimSuffix(tracePrefix, "/")},
	}
	if d.creds != nil {
		h.TokenSHA256, h.User, h.Bcrypt = d.creds.TokenSHA256, d.creds.User, d.creds.Bcrypt
	}
	if d.o.Domain != "" {
		h.ACME = &deploy.ACME{Domains: []string{d.o.Domain}, Email: d.o.Email, CacheDir: dataDir + "/acme"}
	}
	return h
}

func binarySum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func randomToken() string {
	s, _ := randomHex(8)
	return s
}
