#!/usr/bin/env bash
# Peers of test/e2e/packaging's README test: curl and jq (used by the examples)
# and iproute2 (the network namespace the examples run in). Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in curl jq iproute2; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi
