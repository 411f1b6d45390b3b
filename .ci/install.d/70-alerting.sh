#!/usr/bin/env bash
# Installs the real peer of the alerting tests: Debian prometheus-alertmanager
# (0.25), which receives the alerts of Vispyr's rules. Idempotent,
# non-interactive, run as root. As 10-peers.sh does, service starts are refused
# during install and a daemon that started anyway is stopped: tests run their
# own Alertmanager on a free loopback port.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
APT_PACKAGES=(prometheus-alertmanager)
STAMP=/var/lib/vispyr-ci/apt-updated

need_apt=0
for p in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_apt=1
done

if [ "$need_apt" = 1 ]; then
	if [ ! -e "$STAMP" ]; then
		apt-get -o DPkg::Lock::Timeout=600 update -q
		mkdir -p "$(dirname "$STAMP")" && touch "$STAMP"
	fi
	own_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		own_policy=1
	fi
	trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
fi

if [ -x /etc/init.d/prometheus-alertmanager ]; then
	/etc/init.d/prometheus-alertmanager stop >/dev/null 2>&1 || true
fi
# Only the daemon run by the package's own user, never a test's child process.
for pid in $(pgrep -u prometheus -f '^/usr/bin/prometheus-alertmanager' 2>/dev/null || true); do
	kill "$pid" 2>/dev/null || true
done

command -v prometheus-alertmanager >/dev/null || { echo "70-alerting.sh: prometheus-alertmanager missing after install" >&2; exit 1; }
echo "70-alerting.sh: $(prometheus-alertmanager --version 2>&1 | awk 'NR==1{print $1, $3}') ready"
