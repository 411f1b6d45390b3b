// Command vispyr is the whole telemetry backend in one binary: `vispyr serve`
// runs it with embedded storage; `vispyr deploy ssh` installs it on a host;
// `vispyr version` prints the build.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/server"
	"github.com/vispyr/vispyr/internal/version"
)

const usage = `Usage: vispyr <command> [flags]

Commands:
  serve     run Vispyr with embedded storage (flags: vispyr serve --help)
  gateway   receive like serve, forward to other backends instead of storing
            (flags: vispyr gateway --help)
  auth      new-token, hash-token, hash-password: the values of the auth: section
  deploy ssh user@host
            install or upgrade Vispyr on a Linux host over SSH (vispyr deploy --help)
  deploy aws [--region r]
            run Vispyr on an EC2 instance with an S3 bucket for traces
            (vispyr deploy aws --help)
  destroy ssh user@host | destroy aws
            remove what deploy installed (vispyr destroy --help)
  version   print the version
  healthcheck URL
            exit 0 when URL answers 200 (for container health checks)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		os.Exit(serve(os.Args[2:]))
	case "gateway":
		os.Exit(gateway(os.Args[2:]))
	case "deploy":
		os.Exit(deployCmd(os.Args[2:], false))
	case "destroy":
		os.Exit(deployCmd(os.Args[2:], true))
	case "healthcheck":
		os.Exit(healthcheck(os.Args[2:]))
	case "auth":
		os.Exit(authCmd(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	case "version", "--version", "-version":
		fmt.Printf("vispyr %s (revision %s, %s)\n", version.Version, version.Revision, version.GoVersion)
	case "help", "--help", "-h", "-help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}

func serve(args []string) int {
	return runMode("serve", "", args, server.Run)
}

func gateway(args []string) int {
	return runMode("gateway", "Receives like serve and forwards through durable queues under --data-dir.\n", args, server.RunGateway)
}

// runMode loads the configuration of a mode (serve or gateway) and runs it
// until SIGINT or SIGTERM.
func runMode(mode, about string, args []string, run func(context.Context, config.Config, *slog.Logger) error) int {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Printf("Usage: vispyr %s [flags]\n\n%sEvery flag can also be set as VISPYR_<FLAG> (dots and dashes as underscores).\n", mode, about)
			config.Usage(mode)
			return 0
		}
	}
	cfg, err := config.Load(mode, args, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vispyr:", err)
		return 2
	}
	logger := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("vispyr "+mode+" stopped", "err", err)
		return 1
	}
	logger.Info("vispyr " + mode + " stopped cleanly")
	return 0
}

// healthcheck lets a distroless container probe itself without curl.
func healthcheck(args []string) int {
	url := "http://127.0.0.1:13133/health/status"
	if len(args) > 0 {
		url = args[0]
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vispyr healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "vispyr healthcheck:", resp.Status)
		return 1
	}
	return 0
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by config
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
