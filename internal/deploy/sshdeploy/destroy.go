package sshdeploy

import (
	"context"
	"fmt"

	"github.com/vispyr/vispyr/internal/deploy"
)

// Destroy removes what Deploy installed on the host, as its manifest records it;
// the data directory only with Purge.
func Destroy(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "Connecting to %s ...\n", o.Target)
	c, err := dial(o.Target, o.SSH)
	if err != nil {
		return err
	}
	defer c.close()
	l := layout{root: o.Root}
	f, err := c.probe(l, o.RunAs)
	if err != nil {
		return err
	}
	p := destroyPlan(o, c, l, f)
	p.Print(o.Out)
	if err := deploy.Confirm(p, o.In, o.Out, o.Yes); err != nil {
		return err
	}
	if err := deploy.Execute(ctx, p, o.Out); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "Vispyr is removed from %s.\n", o.Target)
	return nil
}

func destroyPlan(o Options, c *conn, l layout, f facts) deploy.Plan {
	p := deploy.Plan{Action: "destroy", Target: o.Target}
	m := f.manifest
	if m == nil {
		p.Notes = append(p.Notes, fmt.Sprintf("no Vispyr installed by deploy here (%s is missing)", l.manifest()))
		return p
	}
	run := func(script string) func(context.Context) error {
		return func(context.Context) error { _, err := c.run(script, nil); return err }
	}
	if m.Service == "systemd" {
		p.Steps = append(p.Steps, deploy.Step{
			Title: "stop and disable vispyr.service, remove " + l.unit(),
			Run: run(fmt.Sprintf("systemctl disable --now --quiet vispyr.service 2>/dev/null || true; rm -f %s; systemctl daemon-reload",
				quote(l.unit()))),
		})
	} else {
		p.Steps = append(p.Steps, deploy.Step{
			Title: "stop the Vispyr process (pid in " + l.pidFile() + ")",
			Run:   run(stopProcessScript(l)),
		})
	}
	switch m.Firewall {
	case "ufw":
		p.Steps = append(p.Steps, deploy.Step{
			Title: fmt.Sprintf("ufw: delete the %d rules deploy added", len(m.UFWRules)),
			Run:   run(ufwScript(nil, m.UFWRules)),
		})
	case "nftables":
		p.Steps = append(p.Steps, deploy.Step{
			Title: "nftables: delete table inet vispyr",
			Run:   run("nft delete table inet vispyr 2>/dev/null || true"),
		})
	}
	p.Steps = append(p.Steps, deploy.Step{
		Title: fmt.Sprintf("remove %s, %s (config, TLS, manifest)", l.binary(), l.etc()),
		Run:   run(fmt.Sprintf("rm -rf %s %s %s", quote(l.binary()), quote(l.etc()), quote(l.logFile()))),
	})
	if m.UserCreated {
		p.Steps = append(p.Steps, deploy.Step{
			Title: "remove system user " + m.User,
			Run:   run(fmt.Sprintf("userdel %s", quote(m.User))),
		})
	}
	if o.Purge {
		p.Steps = append(p.Steps, deploy.Step{
			Title: "delete the data directory " + l.data() + " (--purge)",
			Run:   run("rm -rf " + quote(l.data())),
		})
	} else {
		p.Notes = append(p.Notes, "the data in "+l.data()+" stays (pass --purge to delete it)")
	}
	return p
}
