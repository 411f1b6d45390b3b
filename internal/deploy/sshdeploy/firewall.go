package sshdeploy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/vispyr/vispyr/internal/deploy"
)

// The firewall opens the UI's port to everyone and the query and ingest ports only
// to the CIDRs given. With ufw active (default deny), deploy adds allow rules.
// With nftables and no ufw, deploy adds its own table that drops traffic to the
// restricted ports from elsewhere; a table of ours cannot open what another table
// drops, so a host that already filters keeps its own rules for 443. With neither,
// the plan says that nothing restricts the ports.

func restrictedPorts() []int {
	return append(append([]int{}, deploy.QueryPorts...), deploy.IngestPorts...)
}

func ufwRules(cidrs []string) []string {
	rules := []string{fmt.Sprintf("allow proto tcp to any port %d", deploy.UIPort)}
	for _, c := range cidrs {
		for _, p := range restrictedPorts() {
			rules = append(rules, fmt.Sprintf("allow proto tcp from %s to any port %d", c, p))
		}
	}
	return rules
}

func ufwScript(add, remove []string) string {
	var b strings.Builder
	b.WriteString("set -e\n")
	for _, r := range remove {
		fmt.Fprintf(&b, "ufw delete %s >/dev/null 2>&1 || true\n", r)
	}
	for _, r := range add {
		fmt.Fprintf(&b, "ufw %s comment vispyr >/dev/null\n", r)
	}
	return b.String()
}

// nftRuleset is loaded with nft -f; it replaces an older vispyr table atomically.
func nftRuleset(cidrs []string) (string, error) {
	var v4, v6 []string
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return "", fmt.Errorf("allowed CIDR %q: %w", c, err)
		}
		if p.Addr().Is4() {
			v4 = append(v4, p.Masked().String())
		} else {
			v6 = append(v6, p.Masked().String())
		}
	}
	ports := make([]string, 0, len(restrictedPorts()))
	for _, p := range restrictedPorts() {
		ports = append(ports, fmt.Sprint(p))
	}
	portSet := "{ " + strings.Join(ports, ", ") + " }"
	var b strings.Builder
	b.WriteString("# Written by `vispyr deploy`: the query and ingest ports only from the allowed CIDRs.\n")
	b.WriteString("table inet vispyr {}\ndelete table inet vispyr\ntable inet vispyr {\n")
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority filter - 10; policy accept;\n\t\tiif lo accept\n")
	if len(v4) > 0 {
		fmt.Fprintf(&b, "\t\tip saddr { %s } tcp dport %s accept\n", strings.Join(v4, ", "), portSet)
	}
	if len(v6) > 0 {
		fmt.Fprintf(&b, "\t\tip6 saddr { %s } tcp dport %s accept\n", strings.Join(v6, ", "), portSet)
	}
	fmt.Fprintf(&b, "\t\ttcp dport %s drop\n\t}\n}\n", portSet)
	return b.String(), nil
}
