# berth - make targets for users and CI.
#   make demo   build the CLI and run a container (needs root)
#   make test   install test dependencies and run every test (needs root)

GO ?= go
BIN := bin/berth
export BERTH_TEST_STRICT ?= 1

.PHONY: all build demo test deps vet

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./examples/berth

deps:
	./scripts/install-deps.sh

vet:
	CGO_ENABLED=0 $(GO) build ./...
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...

demo: deps build
	./scripts/demo.sh

test: deps vet
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 60m ./...
