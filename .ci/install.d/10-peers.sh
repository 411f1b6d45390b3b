#!/usr/bin/env bash
# Installs the real peers the metrics tests and bench/ run against:
# Debian prometheus (+ promtool), prometheus-node-exporter, victoria-metrics,
# strace (to see WAL fsyncs), and telemetrygen (go install). Idempotent, non-interactive, run as root.
#
# The Debian packages would normally start system daemons on :9090/:9100/
# :8428; tests bind free loopback ports, but a stray daemon would still waste
# memory and confuse bench/, so service starts are refused during install and
# anything that started anyway is stopped afterwards.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
# go may not be on a non-login root shell's PATH.
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
TELEMETRYGEN_VERSION=v0.161.0
APT_PACKAGES=(prometheus prometheus-node-exporter victoria-metrics strace)
STAMP=/var/lib/vispyr-ci/apt-updated

need_apt=0
for p in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_apt=1
done

if [ "$need_apt" = 1 ]; then
	# apt-get update once per machine: other install.d scripts may share the stamp.
	if [ ! -e "$STAMP" ]; then
		apt-get -o DPkg::Lock::Timeout=600 update -q
		mkdir -p "$(dirname "$STAMP")" && touch "$STAMP"
	fi

	# Refuse service starts from maintainer scripts (invoke-rc.d honours
	# policy-rc.d exit 101) unless a policy is already in place.
	own_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		own_policy=1
	fi
	trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT

	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
fi

# Stop any daemon the packages managed to start anyway (no systemd here, but a
# machine with sysvinit or a policy that allows starts would run them).
for svc in prometheus prometheus-node-exporter victoria-metrics; do
	if [ -x "/etc/init.d/$svc" ]; then
		"/etc/init.d/$svc" stop >/dev/null 2>&1 || true
	fi
done
for bin in /usr/bin/prometheus /usr/bin/prometheus-node-exporter /usr/bin/victoria-metrics; do
	# Only daemons run by the packages' own user, never a test's child process.
	for pid in $(pgrep -u prometheus -f "^$bin" 2>/dev/null || true) \
		$(pgrep -u victoria-metrics -f "^$bin" 2>/dev/null || true); do
		kill "$pid" 2>/dev/null || true
	done
done

# telemetrygen: OTLP load generator for the metrics e2e tests.
GOBIN_DIR="$(go env GOBIN)"
[ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH | cut -d: -f1)/bin"
have_tg=""
if [ -x "$GOBIN_DIR/telemetrygen" ]; then
	have_tg="$(go version -m "$GOBIN_DIR/telemetrygen" 2>/dev/null | awk '$1=="mod"{print $3}')"
fi
if [ "$have_tg" != "$TELEMETRYGEN_VERSION" ]; then
	# Outside the module so the project's go.mod is never touched.
	(cd / && GOFLAGS=-mod=mod go install "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@${TELEMETRYGEN_VERSION}")
fi

for b in prometheus promtool prometheus-node-exporter victoria-metrics strace; do
	command -v "$b" >/dev/null || { echo "10-peers.sh: $b missing after install" >&2; exit 1; }
done
"$GOBIN_DIR/telemetrygen" --help >/dev/null
echo "10-peers.sh: prometheus $(prometheus --version 2>&1 | awk 'NR==1{print $3}'), node-exporter, victoria-metrics, telemetrygen $TELEMETRYGEN_VERSION ready"
