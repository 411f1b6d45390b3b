package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

var (
	levels = []string{"info", "info", "info", "info", "debug", "debug", "warn", "error"}
	paths  = []string{"/api/cart", "/api/checkout", "/health", "/api/items", "/login", "/api/search"}
)

const (
	services   = 20
	levelKinds = 4 // info, debug, warn, error: one stream per service and level
	needleRate = 10_000
)

func service(i int) string { return fmt.Sprintf("svc-%02d", i) }

// Load is the pre-built push requests: Loki PushRequests, protobuf and
// snappy-compressed as Loki clients send them, so sending costs little more
// than socket writes and every target gets the very same bytes.
type Load struct {
	reqs       [][]byte
	sender     []int // the sender of each request: a stream's lines always go through one sender, in order
	lines      int
	rawBytes   int64 // bytes of the log lines themselves
	needles    map[string]int
	start, end time.Time // the lines' timestamps span [start, end)
}

// buildLoad makes lines logfmt lines of about 130 bytes over services×levels
// streams, their timestamps spread evenly over span ending a minute ago. One
// line in needleRate carries the word "needle".
func buildLoad(lines, batch, senders int, span time.Duration) *Load {
	rng := rand.New(rand.NewPCG(7, 11))
	l := &Load{lines: lines, needles: map[string]int{}}
	l.end = time.Now().Add(-time.Minute).Truncate(time.Second)
	l.start = l.end.Add(-span)
	step := span.Nanoseconds() / int64(lines)
	streams := services * levelKinds
	// Each request carries batch lines of the streams of one sender.
	type entry struct {
		ts   int64
		line string
	}
	perStream := make([][]entry, streams)
	flush := func(sender int) {
		var req []byte
		for s := sender; s < streams; s += senders {
			if len(perStream[s]) == 0 {
				continue
			}
			svc, lvl := s/levelKinds, []string{"info", "debug", "warn", "error"}[s%levelKinds]
			var es []byte
			for _, e := range perStream[s] {
				es = protowire.AppendTag(es, 2, protowire.BytesType)
				es = protowire.AppendBytes(es, entryProto(e.ts, e.line))
			}
			var sb []byte
			sb = protowire.AppendTag(sb, 1, protowire.BytesType)
			sb = protowire.AppendString(sb, fmt.Sprintf(`{service_name=%q, env="prod", level=%q}`, service(svc), lvl))
			sb = append(sb, es...)
			req = protowire.AppendTag(req, 1, protowire.BytesType)
			req = protowire.AppendBytes(req, sb)
			perStream[s] = perStream[s][:0]
		}
		l.reqs = append(l.reqs, snappy.Encode(nil, req))
		l.sender = append(l.sender, sender)
	}
	pending := make([]int, senders)
	for i := 0; i < lines; i++ {
		svc := rng.IntN(services)
		lvl := levels[rng.IntN(len(levels))]
		li := map[string]int{"info": 0, "debug": 1, "warn": 2, "error": 3}[lvl]
		s := svc*levelKinds + li
		ts := l.start.UnixNano() + int64(i)*step
		msg := "request served"
		if i%needleRate == needleRate/2 {
			msg = "needle found in request"
			l.needles[service(svc)]++
		}
		line := fmt.Sprintf("ts=%d level=%s method=GET path=%s status=%d duration_ms=%d user_id=%d request_id=%016x msg=%q",
			ts/1e6, lvl, paths[rng.IntN(len(paths))], 200+rng.IntN(4)*100, rng.IntN(900), rng.IntN(100000), rng.Uint64(), msg)
		l.rawBytes += int64(len(line))
		perStream[s] = append(perStream[s], entry{ts, line})
		sender := s % senders
		if pending[sender]++; pending[sender] == batch {
			flush(sender)
			pending[sender] = 0
		}
	}
	for sender := range pending {
		if pending[sender] > 0 {
			flush(sender)
		}
	}
	return l
}

// needleService is the service with the most needles (the first, on a tie).
func (l *Load) needleService() string {
	best := service(0)
	for i := range services {
		if l.needles[service(i)] > l.needles[best] {
			best = service(i)
		}
	}
	return best
}

func entryProto(ts int64, line string) []byte {
	var t []byte
	t = protowire.AppendTag(t, 1, protowire.VarintType)
	t = protowire.AppendVarint(t, uint64(ts/1e9))
	t = protowire.AppendTag(t, 2, protowire.VarintType)
	t = protowire.AppendVarint(t, uint64(ts%1e9))
	var e []byte
	e = protowire.AppendTag(e, 1, protowire.BytesType)
	e = protowire.AppendBytes(e, t)
	e = protowire.AppendTag(e, 2, protowire.BytesType)
	e = protowire.AppendString(e, line)
	return e
}

// send pushes every request to url from senders goroutines, each sending its
// own requests in order and one at a time, retrying 429 and 5xx with back-off.
func (l *Load) send(url string, senders int) (time.Duration, int, error) {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		first   error
		retries int
	)
	start := time.Now()
	for k := 0; k < senders; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, body := range l.reqs {
				if l.sender[i] != k {
					continue
				}
				n, err := push(client, url, body)
				mu.Lock()
				retries += n
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), retries, first
}

func push(client *http.Client, url string, body []byte) (retries int, err error) {
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := client.Do(req)
		if err != nil {
			return attempt, fmt.Errorf("push: %w", err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		switch {
		case resp.StatusCode/100 == 2:
			return attempt, nil
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500) && attempt < 20:
			time.Sleep(backoff)
			backoff = min(2*backoff, 2*time.Second)
		default:
			return attempt, fmt.Errorf("push: HTTP %d: %s", resp.StatusCode, msg)
		}
	}
}
