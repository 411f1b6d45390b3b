#!/usr/bin/env bash
# Installs what the web UI's build and browser tests need: Debian chromium (driven by
# playwright-core in test/ui), and the npm packages of web/ (Vite, Preact, uPlot, Vitest)
# and test/ui/ (playwright-core). Idempotent, non-interactive, run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/../.."
STAMP=/var/lib/vispyr-ci/apt-updated

apt_install() {
	if [ ! -e "$STAMP" ]; then
		apt-get -o DPkg::Lock::Timeout=600 update -q
		mkdir -p "$(dirname "$STAMP")" && touch "$STAMP"
	fi
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@"
}

if ! command -v chromium >/dev/null 2>&1; then
	apt_install chromium fonts-dejavu-core
fi
# Node.js 20 is part of this machine image; Debian's nodejs is the fallback.
if ! command -v npm >/dev/null 2>&1; then
	apt_install nodejs npm
fi

# npm ci with retries: a registry that stalls once (EIDLETIMEOUT) must not fail CI.
npm_ci() {
	for attempt in 1 2 3 4; do
		(cd "$1" && npm ci --no-audit --no-fund --loglevel=error --fetch-timeout=60000 --fetch-retries=4) && return 0
		echo "60-ui.sh: npm ci in $1 failed (attempt $attempt); retrying" >&2
		sleep $((attempt * 5))
	done
	return 1
}

for dir in web test/ui; do
	# npm ci is skipped when node_modules was installed after the lockfile last changed.
	if [ ! "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
		npm_ci "$dir"
	fi
done
chromium --version
node --version
