#!/usr/bin/env bash
# Builds the web UI and copies it into internal/ui/dist, where go:embed picks it up.
# Usage: web/build.sh   (the Makefile's `make ui` calls it)
#
# Other builds may be compiling internal/ui meanwhile (go test ./... runs the browser test,
# which calls this script, next to other packages), so the copy never leaves the embedded
# tree without an index.html: new hashed assets land first, index.html is swapped in by a
# rename, and stale assets go last (VISPYR_UI_PRUNE=0 keeps them).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx --no-install tsc --noEmit
npx --no-install vite build --logLevel warn
dest=../internal/ui/dist
mkdir -p "$dest/assets"
cp -R dist/assets/. "$dest/assets/"
cp dist/index.html "$dest/.index.html.tmp"
mv -f "$dest/.index.html.tmp" "$dest/index.html"
if [ "${VISPYR_UI_PRUNE:-1}" = 1 ]; then
  for f in "$dest"/assets/*; do
    [ -e "dist/assets/$(basename "$f")" ] || rm -f "$f"
  done
fi
echo "web UI built into internal/ui/dist ($(du -sh dist | cut -f1))"
