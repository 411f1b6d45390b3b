#!/usr/bin/env bash
# Builds the web UI and copies it into internal/ui/dist, where go:embed picks it up.
# Usage: web/build.sh   (the Makefile's `make ui` calls it)
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx --no-install tsc --noEmit
npx --no-install vite build --logLevel warn
dest=../internal/ui/dist
# Drop the previous build but keep the committed placeholder and .gitignore.
find "$dest" -mindepth 1 -maxdepth 1 ! -name placeholder.html ! -name .gitignore -exec rm -rf {} +
cp -R dist/. "$dest"/
echo "web UI built into internal/ui/dist ($(du -sh dist | cut -f1))"
