package harness

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// RemoteWriteResult is what a remote-write endpoint answered.
type RemoteWriteResult struct {
	Status int
	Body   string
	Header http.Header
}

// EncodeWriteRequest marshals and snappy-compresses a v1 WriteRequest.
func EncodeWriteRequest(req *prompb.WriteRequest) ([]byte, error) {
	raw, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal write request: %w", err)
	}
	return snappy.Encode(nil, raw), nil
}

// PostRemoteWrite sends an already encoded body to url with the v1 remote
// write headers Prometheus sends, unless header overrides them.
func PostRemoteWrite(client *http.Client, url string, body []byte, header http.Header) (RemoteWriteResult, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return RemoteWriteResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "vispyr-e2e/1")
	for k, vs := range header {
		req.Header.Del(k)
		for _, v := range vs {
			if v != "" {
				req.Header.Add(k, v)
			}
		}
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return RemoteWriteResult{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return RemoteWriteResult{Status: resp.StatusCode, Body: string(b), Header: resp.Header}, nil
}

// RemoteWrite encodes req and posts it to url.
func RemoteWrite(client *http.Client, url string, req *prompb.WriteRequest) (RemoteWriteResult, error) {
	body, err := EncodeWriteRequest(req)
	if err != nil {
		return RemoteWriteResult{}, err
	}
	return PostRemoteWrite(client, url, body, nil)
}

// Labels builds sorted prompb labels from name/value pairs; the first pair
// is usually "__name__".
func Labels(kv ...string) []prompb.Label {
	ls := make([]prompb.Label, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	// Remote write requires sorted label names.
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].Name < ls[j-1].Name; j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
	return ls
}
