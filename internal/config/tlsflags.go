package config

import (
	"flag"

	"gopkg.in/yaml.v3"

	"github.com/vispyr/vispyr/internal/auth"
)

// bindTLS registers the flags of the `tls:` section's common fields; the rest
// (cipher_suites, client_allowed_sans, …) is set in the YAML file.
func bindTLS(fs *flag.FlagSet, t *auth.TLSConfig) {
	fs.StringVar(&t.TLSCertPath, "tls.cert-file", t.TLSCertPath, "PEM certificate (chain) served on every listener but health; re-read when it changes (empty: plain HTTP)")
	fs.StringVar(&t.TLSKeyPath, "tls.key-file", t.TLSKeyPath, "PEM private key of --tls.cert-file")
	fs.StringVar(&t.ClientCAs, "tls.client-ca-file", t.ClientCAs, "PEM CA bundle: clients must present a certificate it signed (mutual TLS)")
	fs.Var(tlsVersionFlag{t}, "tls.min-version", "lowest TLS version accepted: TLS12 or TLS13 (default TLS12)")
}

// tlsVersionFlag sets min_version with the names the YAML file takes.
type tlsVersionFlag struct{ t *auth.TLSConfig }

func (f tlsVersionFlag) String() string {
	if f.t == nil || f.t.MinVersion == 0 {
		return ""
	}
	v, _ := f.t.MinVersion.MarshalYAML()
	s, _ := v.(string)
	return s
}

func (f tlsVersionFlag) Set(s string) error {
	return yaml.Unmarshal([]byte(s), &f.t.MinVersion)
}
