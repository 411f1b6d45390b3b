package main

import (
	"flag"
	"testing"
)

// The target may come before or after the flags, as with ssh; --port joins it.
func TestDeployTargetAndFlags(t *testing.T) {
	f := func(args []string, wantTarget string, wantYes bool, port int) {
		t.Helper()
		fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
		yes := fs.Bool("yes", false, "")
		target, err := parseTargetArgs(fs, args)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if port != 0 {
			if target, err = withPort(target, port); err != nil {
				t.Fatalf("%v: %v", args, err)
			}
		}
		if target != wantTarget || *yes != wantYes {
			t.Fatalf("%v: target %q yes %v, want %q %v", args, target, *yes, wantTarget, wantYes)
		}
	}
	f([]string{"admin@host"}, "admin@host", false, 0)
	f([]string{"--yes", "admin@host"}, "admin@host", true, 0)
	f([]string{"admin@host", "--yes"}, "admin@host", true, 0)
	f([]string{"admin@host"}, "admin@host:2222", false, 2222)
	f([]string{"admin@2001:db8::1"}, "admin@[2001:db8::1]:22", false, 22)

	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	if _, err := parseTargetArgs(fs, []string{"a@h", "b@h"}); err == nil {
		t.Fatal("two targets accepted")
	}
	if _, err := parseTargetArgs(flag.NewFlagSet("d", flag.ContinueOnError), nil); err == nil {
		t.Fatal("no target accepted")
	}
	if _, err := withPort("admin@host:22", 2222); err == nil {
		t.Fatal("--port with a port in the target accepted")
	}
}
