package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vispyr/vispyr/bench/internal/peers"
	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/bench/internal/rwload"
)

// Forwarding targets: a front (vispyr gateway, or vmagent with its
// persistent queue) that takes the load and forwards it by remote write to a
// VictoriaMetrics started behind it. The figures (throughput, CPU, RSS,
// disk) are the front's; the flush step waits until VictoriaMetrics holds
// every sample, so the note gives the end-to-end time. Compare with the
// victoria-metrics target, the same load sent straight to it.

// forwardTarget runs front (given VictoriaMetrics' write URL) in front of a
// fresh VictoriaMetrics.
func forwardTarget(name, bin, vmBin string, load *rwload.Load, front func(bin, dir, vmWrite string) (*proc.Server, string, string, error)) target {
	var vm *proc.Server
	var began time.Time
	return target{name: name, bin: bin, stop: syscall.SIGTERM, skip: []string{ballastGroup},
		start: func(bin, dir string) (*proc.Server, string, string, string, error) {
			addr, err := proc.FreeAddr()
			if err != nil {
				return nil, "", "", "", err
			}
			vm, err = proc.Start(filepath.Join(dir, "victoria-metrics.log"), vmBin,
				"-storageDataPath="+filepath.Join(dir, "vm"), "-httpListenAddr="+addr, "-retentionPeriod=100y")
			if err != nil {
				return nil, "", "", "", err
			}
			vmURL := "http://" + addr
			if err := vm.WaitReady(vmURL+"/health", time.Minute); err != nil {
				return nil, "", "", "", err
			}
			srv, writeURL, readyURL, err := front(bin, dir, vmURL+"/api/v1/write")
			began = time.Now()
			return srv, writeURL, readyURL, vmURL, err
		},
		cleanup: func() {
			if vm != nil {
				vm.Kill()
			}
		},
		flush: func(apiURL, _ string) (string, int64) {
			deadline := time.Now().Add(5 * time.Minute)
			for time.Now().Before(deadline) {
				if n, err := storedSamples(apiURL, load); err == nil && n >= load.Samples {
					// The last samples become searchable after VictoriaMetrics' own flush.
					return fmt.Sprintf("every sample in VictoriaMetrics %v after the load began (front start-up included)",
						time.Since(began).Round(100*time.Millisecond)), 0
				}
				time.Sleep(500 * time.Millisecond)
			}
			return "VictoriaMetrics did not get every sample within 5 minutes", 0
		},
	}
}

func gatewayTarget(name, bin, vmBin string, load *rwload.Load) target {
	return forwardTarget(name, bin, vmBin, load, func(bin, dir, vmWrite string) (*proc.Server, string, string, error) {
		gw, err := peers.Gateway(bin, dir, append([]string{"--forward.metrics.url=" + vmWrite}, vispyrExtraArgs...)...)
		if err != nil {
			return nil, "", "", err
		}
		return gw.Server, gw.WriteURL, gw.ReadyURL, nil
	})
}

// vmagentTarget runs vmagent with its persistent queue under the data dir,
// as documented (-remoteWrite.tmpDataPath). Its acknowledgement is weaker
// than the gateway's: see vmagentNote.
func vmagentTarget(bin, vmBin string, load *rwload.Load) target {
	return forwardTarget("vmagent", bin, vmBin, load, func(bin, dir, vmWrite string) (*proc.Server, string, string, error) {
		addr, err := proc.FreeAddr()
		if err != nil {
			return nil, "", "", err
		}
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			return nil, "", "", err
		}
		srv, err := proc.Start(filepath.Join(dir, "vmagent.log"), bin, "-httpListenAddr="+addr,
			"-remoteWrite.url="+vmWrite, "-remoteWrite.tmpDataPath="+filepath.Join(dir, "data"))
		u := "http://" + addr
		return srv, u + "/api/v1/write", u + "/health", err
	})
}

// vmagentNote is printed under the table when vmagent ran: what its
// acknowledgement means, read in lib/persistentqueue (v1.151.0).
const vmagentNote = `note: vmagent acknowledges a request once its blocks are in an in-memory queue; they reach
      its persistent queue file only when that queue overflows, is not read for 5 s, or at
      shutdown, and the file is flushed without fsync. vispyr gateway acknowledges a request
      only once it is fdatasync'd in its queue (nothing acknowledged is lost on kill -9).`

// vmagentBin is the vmagent binary (-vmagent).
var vmagentBin string
