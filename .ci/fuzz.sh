#!/usr/bin/env bash
# Fuzzes the module's Fuzz* targets for FUZZTIME each (default 3s) within a budget of
# FUZZ_BUDGET seconds (default 60), so that CI stays within ~2 minutes on 2 cores.
#
# Why not every target on every run: `go test -fuzz` builds a coverage-instrumented test
# binary per package, which takes 20-60s on 2 cores, and 15 packages hold fuzz targets.
# So each run takes whole packages (all their targets share one build) in a rotating
# order that starts at a package picked by the commit, and stops starting new ones once
# the budget is spent: successive commits reach every target. Every target's seeds run
# on every `make test` regardless. A finding fails the run and leaves the crashing input
# under the package's testdata/fuzz/ (reproduce: go test -run '<Target>/<file>' <pkg>).
# Usage: .ci/fuzz.sh   (`.ci/run` calls it after `make test`; `make fuzz` fuzzes all, longer)
set -euo pipefail
cd "$(dirname "$0")/.."
per="${FUZZTIME:-3s}"
budget="${FUZZ_BUDGET:-60}"

# Targets found by name in the test files: `go test -list` would compile every package.
pkgs=()
declare -A targets
while read -r dir pkg; do
	fs=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | cut -d' ' -f2 | tr '\n' ' ' || true)
	[ -n "$fs" ] || continue
	pkgs+=("$pkg")
	targets[$pkg]=$fs
done < <(go list -f '{{.Dir}} {{.ImportPath}}' ./...)
n=${#pkgs[@]}
[ "$n" -gt 0 ] || { echo "fuzz: no targets"; exit 0; }

seed=$(git rev-parse --short=7 HEAD 2>/dev/null || date +%s)
start=$(( 0x${seed:0:7} % n )) 2>/dev/null || start=$(( seed % n ))
began=$SECONDS
done_pkgs=0
done_targets=0
for ((i = 0; i < n; i++)); do
	pkg=${pkgs[$(( (start + i) % n ))]}
	if (( SECONDS - began >= budget )); then
		echo "fuzz: budget of ${budget}s spent; the next commit starts elsewhere"
		break
	fi
	for f in ${targets[$pkg]}; do
		echo "== fuzz $pkg $f ($per)"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "$per" -parallel 2 "$pkg"
		done_targets=$((done_targets + 1))
	done
	done_pkgs=$((done_pkgs + 1))
done
echo "fuzz: $done_targets targets of $done_pkgs/$n packages fuzzed in $(( SECONDS - began ))s"
