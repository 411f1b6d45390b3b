package awsdeploy

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vispyr/vispyr/internal/deploy"
)

// rule is one ingress permission: a TCP port from a CIDR.
type rule struct {
	port int32
	cidr string
}

func (r rule) String() string { return fmt.Sprintf("%d/tcp from %s", r.port, r.cidr) }

// restrictedPorts are the ports only --allow CIDRs reach: Grafana's query APIs
// and the ingest ports, as deploy ssh opens them.
func restrictedPorts() []int {
	return append(append([]int{}, deploy.QueryPorts...), deploy.IngestPorts...)
}

// wantRules is the security group's ingress: 443 from anywhere, the other
// ports from the allowed CIDRs only.
func wantRules(allow []string) []rule {
	rules := []rule{{int32(deploy.UIPort), "0.0.0.0/0"}, {int32(deploy.UIPort), "::/0"}}
	for _, p := range restrictedPorts() {
		for _, c := range allow {
			_, n, _ := net.ParseCIDR(c)
			rules = append(rules, rule{int32(p), n.String()})
		}
	}
	return rules
}

// haveRules flattens the group's permissions into rules.
func haveRules(perms []ec2types.IpPermission) []rule {
	var rules []rule
	for _, p := range perms {
		if aws.ToString(p.IpProtocol) != "tcp" || aws.ToInt32(p.FromPort) != aws.ToInt32(p.ToPort) {
			// Not a rule deploy writes: report it as a port -1 rule so it is revoked.
			for _, r := range p.IpRanges {
				rules = append(rules, rule{-1, aws.ToString(r.CidrIp)})
			}
			continue
		}
		for _, r := range p.IpRanges {
			rules = append(rules, rule{aws.ToInt32(p.FromPort), aws.ToString(r.CidrIp)})
		}
		for _, r := range p.Ipv6Ranges {
			rules = append(rules, rule{aws.ToInt32(p.FromPort), aws.ToString(r.CidrIpv6)})
		}
	}
	return rules
}

// minus is the rules of a that b lacks.
func minus(a, b []rule) []rule {
	in := map[rule]bool{}
	for _, r := range b {
		in[r] = true
	}
	var out []rule
	for _, r := range a {
		if !in[r] {
			out = append(out, r)
		}
	}
	return out
}

// permissions groups rules by port, IPv4 and IPv6 ranges apart, as the API takes them.
func permissions(rules []rule) []ec2types.IpPermission {
	byPort := map[int32]*ec2types.IpPermission{}
	var ports []int32
	for _, r := range rules {
		p := byPort[r.port]
		if p == nil {
			p = &ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(r.port), ToPort: aws.Int32(r.port)}
			byPort[r.port] = p
			ports = append(ports, r.port)
		}
		desc := aws.String("vispyr " + portName(r.port))
		if strings.Contains(r.cidr, ":") {
			p.Ipv6Ranges = append(p.Ipv6Ranges, ec2types.Ipv6Range{CidrIpv6: aws.String(r.cidr), Description: desc})
		} else {
			p.IpRanges = append(p.IpRanges, ec2types.IpRange{CidrIp: aws.String(r.cidr), Description: desc})
		}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
	out := make([]ec2types.IpPermission, 0, len(ports))
	for _, p := range ports {
		out = append(out, *byPort[p])
	}
	return out
}

func portName(p int32) string {
	switch p {
	case int32(deploy.UIPort):
		return "UI"
	case 9090:
		return "Prometheus API"
	case 3200:
		return "Tempo API"
	case 4040:
		return "Pyroscope API"
	case 4317:
		return "OTLP gRPC"
	case 4318:
		return "OTLP HTTP"
	case 9999:
		return "Pyroscope ingest"
	}
	return strconv.Itoa(int(p))
}

func rulesText(rules []rule) string {
	s := make([]string, len(rules))
	for i, r := range rules {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}

func (d *deployment) tags(kind ec2types.ResourceType) []ec2types.TagSpecification {
	return []ec2types.TagSpecification{{ResourceType: kind, Tags: []ec2types.Tag{
		{Key: aws.String("Name"), Value: aws.String(d.resourceName())},
		{Key: aws.String("vispyr:deployment"), Value: aws.String(d.o.Name)},
	}}}
}

func (d *deployment) securityGroupSteps(ctx context.Context) ([]deploy.Step, error) {
	want := wantRules(d.o.AllowCIDRs)
	var have []rule
	exists := false
	if d.st.SecurityGroup != "" {
		out, err := d.c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{d.st.SecurityGroup}})
		if err != nil && !isCode(err, "InvalidGroup.NotFound") {
			return nil, fmt.Errorf("describe security group: %w", err)
		}
		if err == nil && len(out.SecurityGroups) == 1 {
			exists, have = true, haveRules(out.SecurityGroups[0].IpPermissions)
		}
	}
	var steps []deploy.Step
	if !exists {
		name := d.resourceName()
		steps = append(steps, d.step("create security group "+name+" in the default VPC", func(ctx context.Context) error {
			out, err := d.c.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
				GroupName: aws.String(name), Description: aws.String("Vispyr " + d.o.Name + ": UI public, ingest and query ports for allowed networks"),
				TagSpecifications: d.tags(ec2types.ResourceTypeSecurityGroup),
			})
			if err != nil {
				return fmt.Errorf("create security group: %w", err)
			}
			d.st.SecurityGroup, d.st.AllowCIDRs = aws.ToString(out.GroupId), nil
			return nil
		}))
	}
	add, drop := minus(want, have), minus(have, want)
	if len(add) > 0 {
		title := fmt.Sprintf("security group: allow %d/tcp from anywhere; ports %s only from %s", deploy.UIPort, portsText(), cidrText(d.o.AllowCIDRs))
		if exists {
			title = "security group: allow " + rulesText(add)
		}
		steps = append(steps, d.step(title, func(ctx context.Context) error {
			_, err := d.c.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
				GroupId: aws.String(d.st.SecurityGroup), IpPermissions: permissions(add),
			})
			if err != nil {
				return fmt.Errorf("authorize ingress: %w", err)
			}
			d.st.AllowCIDRs = d.o.AllowCIDRs
			return nil
		}))
	}
	if len(drop) > 0 {
		steps = append(steps, d.step("security group: revoke "+rulesText(drop), func(ctx context.Context) error {
			_, err := d.c.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
				GroupId: aws.String(d.st.SecurityGroup), IpPermissions: permissions(drop),
			})
			if err != nil {
				return fmt.Errorf("revoke ingress: %w", err)
			}
			d.st.AllowCIDRs = d.o.AllowCIDRs
			return nil
		}))
	}
	return steps, nil
}

func portsText() string {
	s := make([]string, 0, 6)
	for _, p := range restrictedPorts() {
		s = append(s, strconv.Itoa(p))
	}
	return strings.Join(s, ", ")
}

func cidrText(cidrs []string) string {
	if len(cidrs) == 0 {
		return "nowhere (pass --allow CIDR)"
	}
	return strings.Join(cidrs, ", ")
}

func (d *deployment) addressSteps(ctx context.Context) ([]deploy.Step, error) {
	if d.st.AllocationID != "" {
		out, err := d.c.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{d.st.AllocationID}})
		if err != nil && !isCode(err, "InvalidAllocationID.NotFound") {
			return nil, fmt.Errorf("describe address: %w", err)
		}
		if err == nil && len(out.Addresses) == 1 {
			return nil, nil
		}
	}
	return []deploy.Step{d.step("allocate an elastic IP", func(ctx context.Context) error {
		out, err := d.c.ec2.AllocateAddress(ctx, &ec2.AllocateAddressInput{
			Domain: ec2types.DomainTypeVpc, TagSpecifications: d.tags(ec2types.ResourceTypeElasticIp),
		})
		if err != nil {
			return fmt.Errorf("allocate address: %w", err)
		}
		d.st.AllocationID, d.st.PublicIP, d.st.Association = aws.ToString(out.AllocationId), aws.ToString(out.PublicIp), ""
		return nil
	})}, nil
}

// associationSteps attaches the elastic IP unless it is attached to the instance.
func (d *deployment) associationSteps(ctx context.Context, instanceNew, addressNew bool) ([]deploy.Step, error) {
	if !instanceNew && !addressNew {
		out, err := d.c.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{d.st.AllocationID}})
		if err != nil {
			return nil, fmt.Errorf("describe address: %w", err)
		}
		if len(out.Addresses) == 1 && aws.ToString(out.Addresses[0].InstanceId) == d.st.Instance {
			return nil, nil
		}
	}
	return []deploy.Step{d.step("attach the elastic IP to the instance", func(ctx context.Context) error {
		out, err := d.c.ec2.AssociateAddress(ctx, &ec2.AssociateAddressInput{
			AllocationId: aws.String(d.st.AllocationID), InstanceId: aws.String(d.st.Instance),
		})
		if err != nil {
			return fmt.Errorf("associate address: %w", err)
		}
		d.st.Association = aws.ToString(out.AssociationId)
		return nil
	})}, nil
}
