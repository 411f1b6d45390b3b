package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vispyr/vispyr/bench/internal/peers"
	"github.com/vispyr/vispyr/bench/internal/proc"
)

// gatewaySystem takes the load with vispyr gateway, which forwards it by
// OTLP gRPC to a vispyr serve: spans/s, CPU and RSS are the gateway's
// (its acknowledgement: after an fsync of its queue), flushing and queries
// the destination's, so the run also checks that every span arrived.
// Compare with the vispyr column, the same load straight to vispyr serve.
func gatewaySystem(bin string) *system {
	sys := vispyrSystem(bin)
	sys.name = "vispyr-gateway"
	var dest *proc.Server
	var gwAdmin string
	sys.start = func(bin, dir string, generatorOff bool) (*proc.Server, endpoints, error) {
		d, ep, err := startVispyr(bin, dir, generatorOff)
		if err != nil {
			return nil, ep, err
		}
		dest = d
		gw, otlp, admin, err := startGateway(bin, filepath.Join(dir, "gateway"), "grpc://"+ep.otlp)
		ep.otlp, ep.gatewayAdmin, gwAdmin = otlp, admin, admin
		return gw, ep, err
	}
	sys.drained = func() error { return waitQueueEmpty(gwAdmin, 50*time.Millisecond) }
	// Flushed once the gateway delivered its whole queue and the
	// destination cut its head.
	sys.flushed = func(ep endpoints, _ string, _ int) (time.Duration, error) {
		t0 := time.Now()
		if err := waitQueueEmpty(gwAdmin, 200*time.Millisecond); err != nil {
			return 0, err
		}
		_, err := waitHeadCut(ep.admin, 3*time.Minute)
		return time.Since(t0), err
	}
	sys.destCPU = func() time.Duration { return proc.CPUTime(dest.Pid()) }
	sys.stopped = func() {
		if dest != nil {
			dest.Stop(syscall.SIGTERM)
			dest = nil
		}
	}
	return sys
}

// startGateway runs vispyr gateway forwarding traces to url and returns its
// OTLP gRPC address and admin URL.
func startGateway(bin, dir, url string) (*proc.Server, string, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", "", err
	}
	gw, err := peers.Gateway(bin, dir, "--forward.traces.url="+url)
	if err != nil {
		return nil, "", "", err
	}
	if err := gw.WaitReady(gw.ReadyURL, time.Minute); err != nil {
		gw.Stop(syscall.SIGKILL)
		return nil, "", "", err
	}
	return gw.Server, gw.OTLPGRPC, strings.TrimSuffix(gw.ReadyURL, "/-/ready"), nil
}

// waitQueueEmpty polls the gateway every poll until its queue holds no record:
// the destination acknowledged every span. It gives up after 3 minutes.
func waitQueueEmpty(gwAdmin string, poll time.Duration) error {
	t0 := time.Now()
	for {
		n, err := metricSum(gwAdmin, "vispyr_forward_queue_records")
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Since(t0) > 3*time.Minute {
			return fmt.Errorf("gateway still holds %v records after %v", n, time.Since(t0))
		}
		time.Sleep(poll)
	}
}
