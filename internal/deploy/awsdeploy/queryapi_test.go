package awsdeploy

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
)

// queryAPI is a small EC2 and IAM endpoint for the tests: it answers the Query
// API calls deploy makes with the response shapes of AWS's API reference (EC2
// 2016-11-15, IAM 2010-05-08), keeps the resources they create, and records
// every call. It is not an emulator: it knows only these calls.
type queryAPI struct {
	t   testing.TB
	mu  sync.Mutex
	seq int
	// calls are "ec2 RunInstances"-style names with their parameters, in order.
	calls []apiCall

	groups    map[string]*fakeGroup // by id
	addresses map[string]*fakeAddress
	instances map[string]string // id -> state
	roles     map[string]bool
	policies  map[string]string // role/policy -> document
	profiles  map[string][]string
	// profileLag is how many RunInstances calls still fail as AWS answers
	// while a new instance profile has not reached EC2.
	profileLag int
}

type apiCall struct {
	Service, Action string
	Params          url.Values
}

type fakeGroup struct {
	name  string
	rules map[string]bool // "port cidr"
}

type fakeAddress struct {
	ip, instance, association string
}

func newQueryAPI(t testing.TB) (*queryAPI, *httptest.Server, *httptest.Server) {
	q := &queryAPI{t: t, groups: map[string]*fakeGroup{}, addresses: map[string]*fakeAddress{},
		instances: map[string]string{}, roles: map[string]bool{}, policies: map[string]string{}, profiles: map[string][]string{}}
	ec2 := httptest.NewServer(q.handler("ec2", q.ec2))
	iam := httptest.NewServer(q.handler("iam", q.iam))
	t.Cleanup(ec2.Close)
	t.Cleanup(iam.Close)
	return q, ec2, iam
}

// apiError is an error answer: the HTTP status and the error code.
type apiError struct {
	status        int
	code, message string
}

func (q *queryAPI) handler(service string, answer func(action string, p url.Values) (string, *apiError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The SDK signs every call with SigV4 for this service.
		if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "/"+service+"/aws4_request") {
			http.Error(w, "unsigned request", http.StatusForbidden)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		action := r.PostForm.Get("Action")
		q.mu.Lock()
		defer q.mu.Unlock()
		q.calls = append(q.calls, apiCall{service, action, r.PostForm})
		body, aerr := answer(action, r.PostForm)
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		if aerr != nil {
			w.WriteHeader(aerr.status)
			if service == "ec2" {
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>req-%d</RequestID></Response>`,
					aerr.code, esc(aerr.message), q.seq)
			} else {
				fmt.Fprintf(w, `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-%d</RequestId></ErrorResponse>`,
					aerr.code, esc(aerr.message), q.seq)
			}
			return
		}
		if service == "ec2" {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><%[1]sResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-%[2]d</requestId>%[3]s</%[1]sResponse>`, action, q.seq, body)
			return
		}
		result := ""
		if body != "" {
			result = fmt.Sprintf("<%[1]sResult>%[2]s</%[1]sResult>", action, body)
		}
		fmt.Fprintf(w, `<%[1]sResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">%[2]s<ResponseMetadata><RequestId>req-%[3]d</RequestId></ResponseMetadata></%[1]sResponse>`, action, result, q.seq)
	}
}

func esc(s string) string { return html.EscapeString(s) }

func (q *queryAPI) id(prefix string) string {
	q.seq++
	return fmt.Sprintf("%s-%08x", prefix, q.seq)
}

// list reads a Query API list parameter: Name.1, Name.2, ...
func list(p url.Values, name string) []string {
	var out []string
	for i := 1; p.Has(fmt.Sprintf("%s.%d", name, i)); i++ {
		out = append(out, p.Get(fmt.Sprintf("%s.%d", name, i)))
	}
	return out
}

// permissionRules flattens IpPermissions.N.* into "port cidr" rules.
func permissionRules(p url.Values) []string {
	var rules []string
	for i := 1; p.Has(fmt.Sprintf("IpPermissions.%d.FromPort", i)); i++ {
		pre := fmt.Sprintf("IpPermissions.%d.", i)
		port := p.Get(pre + "FromPort")
		for j := 1; p.Has(fmt.Sprintf("%sIpRanges.%d.CidrIp", pre, j)); j++ {
			rules = append(rules, port+" "+p.Get(fmt.Sprintf("%sIpRanges.%d.CidrIp", pre, j)))
		}
		for j := 1; p.Has(fmt.Sprintf("%sIpv6Ranges.%d.CidrIpv6", pre, j)); j++ {
			rules = append(rules, port+" "+p.Get(fmt.Sprintf("%sIpv6Ranges.%d.CidrIpv6", pre, j)))
		}
	}
	return rules
}

func notFound(code, what string) *apiError {
	return &apiError{400, code, fmt.Sprintf("The %s does not exist", what)}
}

func (q *queryAPI) ec2(action string, p url.Values) (string, *apiError) {
	switch action {
	case "DescribeInstanceTypes":
		return `<instanceTypeSet><item><instanceType>` + esc(p.Get("InstanceType.1")) + `</instanceType><processorInfo><supportedArchitectures><item>x86_64</item></supportedArchitectures></processorInfo></item></instanceTypeSet>`, nil
	case "DescribeImages":
		img := func(id, date string) string {
			return `<item><imageId>` + id + `</imageId><imageLocation>136693071363/debian-13-amd64-` + date + `</imageLocation><imageState>available</imageState><imageOwnerId>136693071363</imageOwnerId><creationDate>` + date[:4] + `-` + date[4:6] + `-` + date[6:8] + `T00:00:00.000Z</creationDate><isPublic>true</isPublic><architecture>x86_64</architecture><imageType>machine</imageType><name>debian-13-amd64-` + date + `</name><rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda</rootDeviceName><virtualizationType>hvm</virtualizationType></item>`
		}
		return `<imagesSet>` + img("ami-0older", "20260101") + img("ami-0newest", "20261115") + `</imagesSet>`, nil
	case "CreateSecurityGroup":
		id := q.id("sg")
		q.groups[id] = &fakeGroup{name: p.Get("GroupName"), rules: map[string]bool{}}
		return `<return>true</return><groupId>` + id + `</groupId>`, nil
	case "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress":
		g := q.groups[p.Get("GroupId")]
		if g == nil {
			return "", notFound("InvalidGroup.NotFound", "security group '"+p.Get("GroupId")+"'")
		}
		for _, r := range permissionRules(p) {
			g.rules[r] = action == "AuthorizeSecurityGroupIngress"
		}
		return `<return>true</return>`, nil
	case "DescribeSecurityGroups":
		var b strings.Builder
		for _, id := range list(p, "GroupId") {
			g := q.groups[id]
			if g == nil {
				return "", notFound("InvalidGroup.NotFound", "security group '"+id+"'")
			}
			fmt.Fprintf(&b, `<item><ownerId>123456789012</ownerId><groupId>%s</groupId><groupName>%s</groupName><groupDescription>x</groupDescription><vpcId>vpc-1</vpcId><ipPermissions>%s</ipPermissions><ipPermissionsEgress/></item>`, id, esc(g.name), g.permissionsXML())
		}
		return `<securityGroupInfo>` + b.String() + `</securityGroupInfo>`, nil
	case "DeleteSecurityGroup":
		if q.groups[p.Get("GroupId")] == nil {
			return "", notFound("InvalidGroup.NotFound", "security group")
		}
		for _, s := range q.instances {
			if s != "terminated" {
				return "", &apiError{400, "DependencyViolation", "resource has a dependent object"}
			}
		}
		delete(q.groups, p.Get("GroupId"))
		return `<return>true</return>`, nil
	case "AllocateAddress":
		id := q.id("eipalloc")
		q.addresses[id] = &fakeAddress{ip: fmt.Sprintf("198.51.100.%d", q.seq)}
		return `<publicIp>` + q.addresses[id].ip + `</publicIp><domain>vpc</domain><allocationId>` + id + `</allocationId><networkBorderGroup>eu-west-3</networkBorderGroup>`, nil
	case "DescribeAddresses":
		var b strings.Builder
		for _, id := range list(p, "AllocationId") {
			a := q.addresses[id]
			if a == nil {
				return "", notFound("InvalidAllocationID.NotFound", "allocation ID '"+id+"'")
			}
			fmt.Fprintf(&b, `<item><publicIp>%s</publicIp><allocationId>%s</allocationId><domain>vpc</domain>`, a.ip, id)
			if a.instance != "" {
				fmt.Fprintf(&b, `<instanceId>%s</instanceId><associationId>%s</associationId>`, a.instance, a.association)
			}
			b.WriteString(`</item>`)
		}
		return `<addressesSet>` + b.String() + `</addressesSet>`, nil
	case "AssociateAddress":
		a := q.addresses[p.Get("AllocationId")]
		if a == nil {
			return "", notFound("InvalidAllocationID.NotFound", "allocation ID")
		}
		if q.instances[p.Get("InstanceId")] != "running" {
			return "", &apiError{400, "IncorrectInstanceState", "The instance is not in a valid state for this operation."}
		}
		a.instance, a.association = p.Get("InstanceId"), q.id("eipassoc")
		return `<return>true</return><associationId>` + a.association + `</associationId>`, nil
	case "DisassociateAddress":
		for _, a := range q.addresses {
			if a.association == p.Get("AssociationId") {
				a.instance, a.association = "", ""
				return `<return>true</return>`, nil
			}
		}
		return "", notFound("InvalidAssociationID.NotFound", "association ID")
	case "ReleaseAddress":
		a := q.addresses[p.Get("AllocationId")]
		if a == nil {
			return "", notFound("InvalidAllocationID.NotFound", "allocation ID")
		}
		if a.instance != "" {
			return "", &apiError{400, "InvalidIPAddress.InUse", "Address is in use"}
		}
		delete(q.addresses, p.Get("AllocationId"))
		return `<return>true</return>`, nil
	case "RunInstances":
		if q.profileLag > 0 {
			q.profileLag--
			return "", &apiError{400, "InvalidParameterValue", "Value (" + p.Get("IamInstanceProfile.Name") + ") for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"}
		}
		id := q.id("i")
		q.instances[id] = "pending"
		return `<reservationId>r-1</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet><item><instanceId>` + id +
			`</instanceId><imageId>` + esc(p.Get("ImageId")) + `</imageId><instanceState><code>0</code><name>pending</name></instanceState><instanceType>` +
			esc(p.Get("InstanceType")) + `</instanceType></item></instancesSet>`, nil
	case "DescribeInstances":
		var b strings.Builder
		for _, id := range list(p, "InstanceId") {
			s, ok := q.instances[id]
			if !ok {
				return "", notFound("InvalidInstanceID.NotFound", "instance ID '"+id+"'")
			}
			// Each look moves a transition along, as time does on EC2.
			switch s {
			case "pending":
				q.instances[id] = "running"
			case "shutting-down":
				q.instances[id] = "terminated"
			}
			fmt.Fprintf(&b, `<item><reservationId>r-1</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet><item><instanceId>%s</instanceId><instanceState><code>0</code><name>%s</name></instanceState></item></instancesSet></item>`, id, s)
		}
		return `<reservationSet>` + b.String() + `</reservationSet>`, nil
	case "TerminateInstances":
		id := p.Get("InstanceId.1")
		prev, ok := q.instances[id]
		if !ok {
			return "", notFound("InvalidInstanceID.NotFound", "instance ID")
		}
		q.instances[id] = "shutting-down"
		return `<instancesSet><item><instanceId>` + id + `</instanceId><currentState><code>32</code><name>shutting-down</name></currentState><previousState><code>16</code><name>` + prev + `</name></previousState></item></instancesSet>`, nil
	}
	return "", &apiError{400, "InvalidAction", "The action " + action + " is not valid for this web service."}
}

func (g *fakeGroup) permissionsXML() string {
	byPort := map[string][]string{}
	for r, on := range g.rules {
		if on {
			port, cidr, _ := strings.Cut(r, " ")
			byPort[port] = append(byPort[port], cidr)
		}
	}
	ports := make([]string, 0, len(byPort))
	for p := range byPort {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	var b strings.Builder
	for _, p := range ports {
		var v4, v6 string
		for _, c := range byPort[p] {
			if strings.Contains(c, ":") {
				v6 += `<item><cidrIpv6>` + c + `</cidrIpv6></item>`
			} else {
				v4 += `<item><cidrIp>` + c + `</cidrIp></item>`
			}
		}
		fmt.Fprintf(&b, `<item><ipProtocol>tcp</ipProtocol><fromPort>%s</fromPort><toPort>%s</toPort><groups/><ipRanges>%s</ipRanges><ipv6Ranges>%s</ipv6Ranges><prefixListIds/></item>`, p, p, v4, v6)
	}
	return b.String()
}

func (q *queryAPI) iam(action string, p url.Values) (string, *apiError) {
	role, profile := p.Get("RoleName"), p.Get("InstanceProfileName")
	noRole := &apiError{404, "NoSuchEntity", "The role with name " + role + " cannot be found."}
	noProfile := &apiError{404, "NoSuchEntity", "Instance Profile " + profile + " cannot be found."}
	roleXML := func() string {
		return `<Role><Path>/</Path><RoleName>` + esc(role) + `</RoleName><RoleId>AROAEXAMPLE</RoleId><Arn>arn:aws:iam::123456789012:role/` + esc(role) + `</Arn><CreateDate>2026-12-06T00:00:00Z</CreateDate></Role>`
	}
	profileXML := func() string {
		var roles string
		for _, r := range q.profiles[profile] {
			roles += `<member><Path>/</Path><RoleName>` + esc(r) + `</RoleName><RoleId>AROAEXAMPLE</RoleId><Arn>arn:aws:iam::123456789012:role/` + esc(r) + `</Arn><CreateDate>2026-12-06T00:00:00Z</CreateDate></member>`
		}
		return `<InstanceProfile><InstanceProfileId>AIPAEXAMPLE</InstanceProfileId><Roles>` + roles + `</Roles><InstanceProfileName>` + esc(profile) +
			`</InstanceProfileName><Path>/</Path><Arn>arn:aws:iam::123456789012:instance-profile/` + esc(profile) + `</Arn><CreateDate>2026-12-06T00:00:00Z</CreateDate></InstanceProfile>`
	}
	switch action {
	case "CreateRole":
		if q.roles[role] {
			return "", &apiError{409, "EntityAlreadyExists", "Role with name " + role + " already exists."}
		}
		q.roles[role] = true
		return roleXML(), nil
	case "GetRole":
		if !q.roles[role] {
			return "", noRole
		}
		return roleXML(), nil
	case "PutRolePolicy":
		if !q.roles[role] {
			return "", noRole
		}
		q.policies[role+"/"+p.Get("PolicyName")] = p.Get("PolicyDocument")
		return "", nil
	case "DeleteRolePolicy":
		if _, ok := q.policies[role+"/"+p.Get("PolicyName")]; !ok {
			return "", &apiError{404, "NoSuchEntity", "The role policy with name " + p.Get("PolicyName") + " cannot be found."}
		}
		delete(q.policies, role+"/"+p.Get("PolicyName"))
		return "", nil
	case "DeleteRole":
		if !q.roles[role] {
			return "", noRole
		}
		for k := range q.policies {
			if strings.HasPrefix(k, role+"/") {
				return "", &apiError{409, "DeleteConflict", "Cannot delete entity, must delete policies first."}
			}
		}
		for _, rs := range q.profiles {
			for _, r := range rs {
				if r == role {
					return "", &apiError{409, "DeleteConflict", "Cannot delete entity, must remove roles from instance profile first."}
				}
			}
		}
		delete(q.roles, role)
		return "", nil
	case "CreateInstanceProfile":
		if _, ok := q.profiles[profile]; ok {
			return "", &apiError{409, "EntityAlreadyExists", "Instance Profile " + profile + " already exists."}
		}
		q.profiles[profile] = []string{}
		return profileXML(), nil
	case "GetInstanceProfile":
		if _, ok := q.profiles[profile]; !ok {
			return "", noProfile
		}
		return profileXML(), nil
	case "AddRoleToInstanceProfile":
		if _, ok := q.profiles[profile]; !ok {
			return "", noProfile
		}
		if !q.roles[role] {
			return "", noRole
		}
		if len(q.profiles[profile]) > 0 {
			return "", &apiError{409, "LimitExceeded", "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1"}
		}
		q.profiles[profile] = []string{role}
		return "", nil
	case "RemoveRoleFromInstanceProfile":
		rs, ok := q.profiles[profile]
		if !ok || len(rs) == 0 || rs[0] != role {
			return "", noProfile
		}
		q.profiles[profile] = []string{}
		return "", nil
	case "DeleteInstanceProfile":
		rs, ok := q.profiles[profile]
		if !ok {
			return "", noProfile
		}
		if len(rs) > 0 {
			return "", &apiError{409, "DeleteConflict", "Cannot delete entity, must remove roles from instance profile first."}
		}
		delete(q.profiles, profile)
		return "", nil
	}
	return "", &apiError{400, "InvalidAction", "Could not find operation " + action}
}

// snapshot returns the calls so far and forgets them.
func (q *queryAPI) take() []apiCall {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.calls
	q.calls = nil
	return c
}
