# Targets used by developers and by .ci/run. Tests start their own PostgreSQL, Redis and S3
# servers unless TEST_DATABASE_URL / TEST_REDIS_URL / TEST_S3_ENDPOINT point at existing ones.
GO ?= go

.PHONY: build test test-short vet lint

build:
	$(GO) build -o bin/hubexport ./cmd/hubexport

test:
	$(GO) test -count=1 -timeout 20m ./...

# Skips the tests whose servers cannot be started.
test-short:
	$(GO) test -count=1 -short ./...

vet:
	$(GO) vet ./...

lint: vet
	@files=$$(gofmt -l .); if [ -n "$$files" ]; then echo "gofmt needed on:"; echo "$$files"; exit 1; fi
