package e2e

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/acme/pebbletest"
	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// With an `acme:` section Vispyr obtains its certificate from an ACME CA
// (Pebble, Let's Encrypt's test server), which validates the domain with the
// TLS-ALPN-01 challenge on Vispyr's UI port; a client trusting only Pebble's
// roots then verifies the UI and the Prometheus API for that domain.
func TestACMECertificateFromPebble(t *testing.T) {
	t.Parallel()
	uiPort := testpeer.FreePort(t)
	pebble := pebbletest.Start(t, "127.0.0.1", uiPort)
	client := &tls.Config{RootCAs: pebble.Roots(t), ServerName: "vispyr.test"}
	cfg := fmt.Sprintf("acme:\n  domains: [vispyr.test]\n  directory_url: %s\n  directory_ca_file: %s\n",
		pebble.DirectoryURL, pebble.CAFile)
	v := harness.Start(t, harness.Options{Config: cfg, TLS: client,
		Args: []string{"--ui.listen-address=127.0.0.1:" + strconv.Itoa(uiPort)}})

	hc := v.HTTPClient()
	hc.Timeout = 30 * time.Second
	for _, url := range []string{v.URL("127.0.0.1:"+strconv.Itoa(uiPort), "/"), v.MetricsURL("/api/v1/query?query=1")} {
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("GET %s with a certificate from Pebble: %v\n%s", url, err, v.Tail(30))
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", url, resp.Status)
		}
		if err := resp.TLS.PeerCertificates[0].VerifyHostname("vispyr.test"); err != nil {
			t.Fatal(err)
		}
	}
}
