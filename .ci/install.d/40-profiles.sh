#!/usr/bin/env bash
# Profiles (issue 4): node + the real @pyroscope/nodejs clients (0.4.5 and 0.6.4,
# pinned by package-lock.json) that internal/receiver/pyroscope's TestNodeSDK runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -q
	apt-get -o DPkg::Lock::Timeout=600 install -y -q nodejs npm
fi
cd internal/receiver/pyroscope/testdata/node
# npm ci is idempotent: it reinstalls exactly the lockfile's versions.
# Retried: a registry that stalls once (EIDLETIMEOUT) must not fail CI.
for attempt in 1 2 3 4; do
	npm ci --no-audit --no-fund --loglevel=error --fetch-timeout=60000 --fetch-retries=4 && exit 0
	echo "40-profiles.sh: npm ci failed (attempt $attempt); retrying" >&2
	sleep $((attempt * 5))
done
exit 1
