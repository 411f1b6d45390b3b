#!/usr/bin/env bash
# Real JavaScript clients of the logs tests (issue 13): the Grafana Faro Web SDK
# and its tracing package (prebuilt browser bundles served to Chromium by
# test/e2e/faro, with playwright-core to drive it; Chromium itself comes from
# 60-ui.sh) and the OpenTelemetry JS SDK's OTLP log exporters run by
# test/e2e TestLogsFromOTelNodeSDK. Versions pinned by each package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -q
	apt-get -o DPkg::Lock::Timeout=600 install -y -q nodejs npm
fi
for dir in test/e2e/faro/testdata test/e2e/testdata/otelnode; do
	# Skipped when node_modules was installed after the lockfile last changed.
	[ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] && continue
	# Retried: a registry that stalls once (EIDLETIMEOUT) must not fail CI.
	for attempt in 1 2 3 4; do
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error --fetch-timeout=60000 --fetch-retries=4) && break
		[ "$attempt" = 4 ] && exit 1
		echo "46-faro.sh: npm ci in $dir failed (attempt $attempt); retrying" >&2
		sleep $((attempt * 5))
	done
done
echo "46-faro.sh: Faro Web SDK and OTel JS log exporters ready"
