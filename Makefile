# The two commands of the README: `make run` and `make test`.
GO ?= go
PKGS ?= ./...

.PHONY: run build ui test fuzz bench

run: ui build
	./bin/vispyr serve

build:
	$(GO) build -o bin/vispyr ./cmd/vispyr

# Builds the web UI into internal/ui's embed folder (needs Node 20 + npm).
ui:
	@if [ -x web/build.sh ]; then web/build.sh; else echo "no UI sources yet"; fi

test:
	$(GO) vet $(PKGS)
	$(GO) test -timeout 25m $(PKGS)

# Runs every fuzz target for FUZZTIME each (default 20s). CI runs .ci/fuzz.sh instead:
# a rotating share of the targets within a time budget.
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Side-by-side benchmarks against real peers (see bench/README.md).
bench:
	$(GO) run ./bench/remotewrite
	@if [ -d bench/traces ]; then $(GO) run ./bench/traces; fi
