#!/usr/bin/env bash
# Peers of the deploy tests (internal/deploy): Debian's openssh-server, whose sshd
# the SSH test runs in a network namespace of its own (the package's daemon is
# never started here), nftables, whose rules deploy writes into that namespace,
# and Pebble, the ACME test server, for certificate issuance.
# Idempotent, non-interactive, run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
PEBBLE_VERSION=v2.10.3
STAMP=/var/lib/vispyr-ci/apt-updated

if ! dpkg-query -W -f='${Status}' openssh-server nftables 2>/dev/null | grep -q 'install ok installed.*install ok installed'; then
	if [ ! -e "$STAMP" ]; then
		apt-get -o DPkg::Lock::Timeout=600 update -q
		mkdir -p "$(dirname "$STAMP")" && touch "$STAMP"
	fi
	# Refuse service starts from the maintainer scripts (policy-rc.d exit 101).
	own_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		own_policy=1
	fi
	trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends openssh-server nftables
fi
# A daemon started anyway (sysvinit machines) would listen on :22: stop it.
[ -x /etc/init.d/ssh ] && /etc/init.d/ssh stop >/dev/null 2>&1 || true

GOBIN_DIR="$(go env GOBIN)"
[ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH | cut -d: -f1)/bin"
have=""
if [ -x "$GOBIN_DIR/pebble" ] && [ -x "$GOBIN_DIR/pebble-challtestsrv" ]; then
	have="$(go version -m "$GOBIN_DIR/pebble" 2>/dev/null | awk '$1=="mod"{print $3}')"
fi
if [ "$have" != "$PEBBLE_VERSION" ]; then
	# pebble-challtestsrv answers Pebble's DNS lookups of the test domain.
	(cd / && GOFLAGS=-mod=mod go install "github.com/letsencrypt/pebble/v2/cmd/pebble@${PEBBLE_VERSION}" \
		"github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@${PEBBLE_VERSION}")
fi
test -x /usr/sbin/sshd
test -x /usr/sbin/nft
echo "70-deploy.sh: sshd $(dpkg-query -W -f='${Version}' openssh-server), pebble $PEBBLE_VERSION ready"
