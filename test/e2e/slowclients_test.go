package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// slowBody opens a connection from src to addr and sends the headers of a
// POST declaring a 10 MB body, then nothing more: the body trickles in later.
func slowBody(src net.IP, addr, path string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-protobuf\r\n"+
		"Content-Encoding: snappy\r\nContent-Length: %d\r\n\r\n", path, addr, 10<<20)
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// normalClients sends one small remote write, OTLP trace export and
// Pyroscope ingest, and returns what failed.
func normalClients(v *harness.Vispyr) []string {
	var failed []string
	client := &http.Client{Timeout: 10 * time.Second}
	if res, err := harness.RemoteWrite(client, v.MetricsURL("/api/v1/write"), seriesRequest(10)); err != nil || res.Status != http.StatusNoContent {
		failed = append(failed, fmt.Sprintf("remote write: %v %d %s", err, res.Status, res.Body))
	}
	post := func(what, url, ct, body string) {
		resp, err := client.Post(url, ct, strings.NewReader(body))
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", what, err))
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failed = append(failed, fmt.Sprintf("%s: %d", what, resp.StatusCode))
		}
	}
	post("otlp http", v.OTLPHTTPURL("/v1/traces"), "application/x-protobuf", "")
	post("pyroscope ingest", "http://"+v.PyroscopeIngestAddr+"/ingest?name=slowtest&from=1700000000&until=1700000010",
		"application/octet-stream", "main;work 10\n")
	return failed
}

// 2,000 connections that each declare a 10 MB body and send one byte a
// second (the slow-body attack): bodies are read as they arrive and charged
// to the in-flight budget by what arrived, never by the declared length, so
// memory stays small and clients from other addresses are still served.
func TestSlowBodiesDoNotExhaustMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 connections for 20 s")
	}
	v := harness.Start(t, harness.Options{})
	attacker := net.ParseIP("127.0.0.2")
	if _, err := slowBody(attacker, v.MetricsAddr, "/api/v1/write"); err != nil {
		t.Skipf("cannot dial from %s (loopback aliases not routed here): %v", attacker, err)
	}
	targets := []struct{ addr, path string }{
		{v.MetricsAddr, "/api/v1/write"},
		{v.OTLPHTTPAddr, "/v1/traces"},
		{v.PyroscopeIngestAddr, "/ingest?name=slow&format=pprof"},
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 2000; i++ {
		tg := targets[i%len(targets)]
		c, err := slowBody(attacker, tg.addr, tg.path)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	var peak int64
	var wg sync.WaitGroup
	var writeErrs atomic.Int64
	for round := 0; round < 20; round++ {
		for _, c := range conns {
			wg.Add(1)
			go func(c net.Conn) {
				defer wg.Done()
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write([]byte{0}); err != nil {
					writeErrs.Add(1)
				}
			}(c)
		}
		wg.Wait()
		if round%5 == 4 {
			if failed := normalClients(v); len(failed) > 0 {
				t.Errorf("round %d: normal clients failed during the slow-body attack: %v", round, failed)
			}
		}
		_, p, err := v.Process().RSS()
		if err != nil {
			t.Fatalf("read RSS: %v", err)
		}
		peak = max(peak, p)
		time.Sleep(time.Second)
	}
	t.Logf("2000 slow bodies for 20 s: peak RSS %d MiB, %d failed writes", peak>>20, writeErrs.Load())
	if peak > 1<<30 {
		t.Errorf("peak RSS %d MiB with 2,000 slow bodies, want < 1 GiB", peak>>20)
	}
	v.CheckServing(t)
}

// Connections over the per-client limit are answered 429 with Retry-After
// and closed; other clients are not affected.
func TestConnectionsPerClientLimit(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{Args: []string{"--limits.max-connections-per-client=10"}})
	attacker := net.ParseIP("127.0.0.2")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 10; i++ {
		c, err := slowBody(attacker, v.MetricsAddr, "/api/v1/write")
		if err != nil {
			t.Skipf("cannot dial from %s: %v", attacker, err)
		}
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond) // let the server accept them
	c, err := slowBody(attacker, v.MetricsAddr, "/api/v1/write")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, _ := c.Read(buf)
	if got := string(buf[:n]); !strings.HasPrefix(got, "HTTP/1.1 429") || !strings.Contains(got, "Retry-After: 5") {
		t.Errorf("11th connection from one client read %q, want a 429 with Retry-After", got)
	}
	if failed := normalClients(v); len(failed) > 0 {
		t.Errorf("clients from another address: %v", failed)
	}
}

// 40 concurrent 60 MB bodies (2.4 GB) against the default 1 GiB in-flight budget: each
// chunk is charged before it is kept, so those that no longer fit are
// answered 503 with Retry-After while their bodies arrive, and memory stays
// near the budget instead of holding every body.
func TestLargeBodiesChargedAsTheyArrive(t *testing.T) {
	if testing.Short() {
		t.Skip("2.4 GB of request bodies")
	}
	// The ceiling makes the runtime collect the answered requests' buffers
	// promptly; the budget keeps the live ones under 1 GiB.
	v := harness.Start(t, harness.Options{Args: []string{"--limits.max-memory-bytes=1400000000"}})
	body := make([]byte, 60<<20)
	_, _ = rand.Read(body)
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, v.MetricsURL("/api/v1/write"), bytes.NewReader(body))
			req.Header.Set("Content-Encoding", "snappy")
			req.Header.Set("Content-Type", "application/x-protobuf")
			resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
			key := ""
			if err != nil {
				key = "connection error"
			} else {
				key = fmt.Sprint(resp.StatusCode)
				if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
					key = "503 without Retry-After"
				}
				resp.Body.Close()
			}
			mu.Lock()
			codes[key]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	_, peak, _ := v.Process().RSS()
	t.Logf("40 × 60 MB bodies: answers %v, peak RSS %d MiB", codes, peak>>20)
	if codes["503"] == 0 {
		t.Errorf("no request was answered 503 with Retry-After: %v", codes)
	}
	if peak > 1600<<20 {
		t.Errorf("peak RSS %d MiB, want < 1.6 GiB (1 GiB budget plus the process)", peak>>20)
	}
	v.CheckServing(t)
}
