# sessionkit's developer commands. `make test` is what CI runs.
GO       ?= go
# An execution count, not a duration: with a duration, Go 1.26's fuzz
# coordinator can report "context deadline exceeded" as a failure when the
# time runs out mid-input on a busy machine (golang/go#75804, fixed in 1.27).
FUZZTIME ?= 40000x
PKGS     := ./...
SHELL    := /bin/bash
.SHELLFLAGS := -eo pipefail -c

.PHONY: test test-short vet lint compat fuzz bench bench-load example example-nethttp services-up services-down

## test: start every server the provider tests need, then vet, race-test
## everything against them (the log lists every test and subtest, so each
## provider's conformance run shows), check the allocation budgets without
## the race detector, test against the newest dependencies checked too
## (compat), and run each fuzz target briefly.
test: vet
	scripts/services.sh up
	eval "$$(scripts/services.sh env)" && $(GO) test -race -count=1 -timeout 30m -v $(PKGS) 2>&1 | tee test-verbose.log \
	  | grep --line-buffered -E '^(\s*--- (PASS|FAIL|SKIP)|ok |FAIL|panic:|\s+\S+_test\.go:[0-9]+:)'
	# Allocation budgets, without -race (which makes sync.Pool drop objects).
	$(GO) test -count=1 -v -run 'Allocs$$' . | grep -E '^(\s*--- (PASS|FAIL|SKIP)|ok |FAIL)'
	cd bench/compare && eval "$$(../../scripts/services.sh env)" && $(GO) test -count=1 ./...
	$(MAKE) compat
	$(MAKE) fuzz

## compat: every package vetted and tested again against the newest
## release checked of fasthttp, go-redis and the MySQL driver
## (scripts/compat.sh), as well as go.mod's minimums, under the machine's
## Go and under Go 1.27.3; servers as for test.
compat:
	scripts/services.sh up
	eval "$$(scripts/services.sh env)" && scripts/compat.sh

## test-short: unit and memory-provider tests only; no servers needed
## (server-backed provider tests skip loudly).
test-short:
	$(GO) test -race -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)
	$(GO) vet ./_examples/basic ./_examples/nethttp
	cd bench/compare && $(GO) vet ./...

lint: vet
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck $(PKGS)

## fuzz: every fuzz target for FUZZTIME executions each (seed corpora live
## in testdata/fuzz).
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## bench: the W1/W2/W3 benchmarks on the memory provider, then the
## comparison with the other session libraries (bench/README.md) and its chart.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 .
	cd bench/compare && $(GO) run ./cmd/compare -rounds 9 -benchtime 700ms -json ../compare.json -csv ../compare.csv
	cd bench/compare && $(GO) run ./cmd/chart -in ../compare.json -out ../compare.svg

## bench-load: end-to-end req/s of a loopback fasthttp server, bare vs W1 vs W2.
bench-load:
	$(GO) run ./cmd/sessionkit-load -duration 5s -conns 32 -rounds 5

## example: the fasthttp example on the memory provider.
example:
	$(GO) run ./_examples/basic

example-nethttp:
	$(GO) run ./_examples/nethttp

## services-up / services-down: the servers for the provider tests, with
## Docker (docker-compose.yml) where a Docker engine runs, otherwise local
## processes started by scripts/services.sh.
services-up:
	@if docker info >/dev/null 2>&1; then docker compose up -d; else scripts/services.sh up; fi

services-down:
	@if docker info >/dev/null 2>&1; then docker compose down; else scripts/services.sh down; fi
