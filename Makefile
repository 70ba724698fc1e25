# berth - make targets for users and CI.
#   make demo   build the CLI and run a container (needs root)
#   make test   install test dependencies and run every test (needs root)
#   make fixtures  build the service images (Debian, redis, mariadb, tomcat)
#               into the machine's cache, /var/cache/berth-fixtures (needs root)
#   make torture   the full reliability suite: 100+ SIGKILLs at random points,
#               1,000 run --rm, 8 racing processes, each audited for leaks
#               (needs root; make test runs a reduced one)
#   make bench  berth side by side with podman, dockerd, runc and crun, in one
#               run: prints the table, writes bench/report.md and report.png
#               (needs root; BENCHFLAGS=-quick: one round each, as CI does;
#               -only REGEXP picks scenarios, -rounds N, -list)

GO ?= go
BIN := bin/berth
export BERTH_TEST_STRICT ?= 1

.PHONY: all build demo test deps vet fixtures torture fuzz bench

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./examples/berth

deps:
	./scripts/install-deps.sh

vet:
	CGO_ENABLED=0 $(GO) build ./...
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...
	cd examples/berthtest && $(GO) vet ./...
	cd bench && $(GO) vet ./...

demo: deps build
	./scripts/demo.sh

# Built once per machine (cached by recipe); the tests load them from there.
fixtures: deps
	CGO_ENABLED=0 $(GO) run ./internal/fixtures/cmd -cache

test: deps vet fixtures
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 60m ./...
	./scripts/fuzz.sh

# Every fuzz target for FUZZTIME (10s) each; make test runs it.
fuzz:
	./scripts/fuzz.sh

torture: deps
	CGO_ENABLED=0 $(GO) test -count=1 -v -timeout 6h -run Torture ./internal/torture -torture.full

# The harness is a module of its own (bench/go.mod): its peers' client
# libraries stay out of berth's go.mod.
BENCHFLAGS ?=
bench: deps fixtures
	cd bench && CGO_ENABLED=0 $(GO) run . -out . $(BENCHFLAGS)
