package awsdeploy

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vispyr/vispyr/internal/deploy"
)

// Where the instance keeps Vispyr: the same layout as deploy ssh.
const (
	binaryFile = "/usr/local/bin/vispyr"
	configFile = "/etc/vispyr/vispyr.yaml"
	certFile   = "/etc/vispyr/tls/cert.pem"
	keyFile    = "/etc/vispyr/tls/key.pem"
	dataDir    = "/var/lib/vispyr"
	unitFile   = "/etc/systemd/system/vispyr.service"
	runAs      = "vispyr"
)

// urlLifetime bounds the presigned URLs in the user data: the first boot
// fetches within minutes, and the URLs must not open the bucket for long.
const urlLifetime = 2 * time.Hour

func (d *deployment) putObject(ctx context.Context, key string, body []byte) error {
	_, err := d.c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(d.st.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		return fmt.Errorf("upload s3://%s/%s: %w", d.st.Bucket, key, err)
	}
	return nil
}

// userData is the first boot's script. The instance fetches the uploaded files
// through presigned URLs (Debian's image has python3 but no AWS CLI), then
// deletes them, so the URLs in the user data open nothing afterwards.
func (d *deployment) userData(ctx context.Context) (string, error) {
	ps := s3.NewPresignClient(d.c.s3, s3.WithPresignExpires(urlLifetime))
	get := func(name string) (string, error) {
		r, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.st.Bucket), Key: aws.String(installPrefix + name)})
		if err != nil {
			return "", fmt.Errorf("presign %s: %w", name, err)
		}
		return r.URL, nil
	}
	del := func(name string) (string, error) {
		r, err := ps.PresignDeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(d.st.Bucket), Key: aws.String(installPrefix + name)})
		if err != nil {
			return "", fmt.Errorf("presign delete %s: %w", name, err)
		}
		return r.URL, nil
	}
	files := []struct{ name, path, mode, group string }{
		{"vispyr", binaryFile, "755", "root"},
		{"vispyr.yaml", configFile, "640", runAs},
	}
	if d.o.Domain == "" {
		files = append(files, struct{ name, path, mode, group string }{"cert.pem", certFile, "644", "root"},
			struct{ name, path, mode, group string }{"key.pem", keyFile, "640", runAs})
	}
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/sh
# Written by vispyr deploy aws: installs Vispyr as vispyr deploy ssh does.
set -eu
py() { python3 -c "$1" "$2" "$3"; }
fetch() {
  i=0
  until py 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "$1" "$2"; do
    i=$((i+1)); [ $i -lt 30 ] || exit 1; sleep 5
  done
}
drop() { py 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="DELETE"))' "$1" x || true; }
id -u %[1]s >/dev/null 2>&1 || useradd --system --no-create-home --home-dir %[2]s --shell /usr/sbin/nologin %[1]s
install -d -o %[1]s -g %[1]s -m 750 %[2]s
install -d -m 755 /etc/vispyr /etc/vispyr/tls
`, runAs, dataDir)
	for _, f := range files {
		getURL, err := get(f.name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "fetch %s %s.new\nchgrp %s %s.new; chmod %s %s.new; mv %s.new %s\n",
			shq(getURL), f.path, f.group, f.path, f.mode, f.path, f.path, f.path)
	}
	for _, f := range files {
		delURL, err := del(f.name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "drop %s\n", shq(delURL))
	}
	unit := deploy.Unit{User: runAs, Binary: binaryFile, Config: configFile, DataDir: dataDir}.Render()
	fmt.Fprintf(&b, "cat >%s <<'UNIT'\n%sUNIT\nsystemctl daemon-reload\nsystemctl enable --now vispyr.service\n", unitFile, unit)
	if b.Len() > 16384 {
		return "", fmt.Errorf("user data is %d bytes, EC2 takes 16 KiB", b.Len())
	}
	return b.String(), nil
}

// shq quotes s for the shell.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
