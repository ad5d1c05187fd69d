# Targets used by developers and by .ci/run. Tests start their own PostgreSQL, Redis and S3
# servers unless TEST_DATABASE_URL / TEST_REDIS_URL / TEST_S3_ENDPOINT point at existing ones.
GO ?= go

.PHONY: build demo test test-short vet lint fuzz

build:
	$(GO) build -o bin/hubexport ./cmd/hubexport

# A seeded throwaway hub on this machine's PostgreSQL and Redis binaries (Debian: apt-get
# install postgresql redis-server), on http://localhost:8080 or DEMO_ADDR; Ctrl-C removes it.
DEMO_ADDR ?= :8080

demo: build
	./bin/hubexport demo --addr $(DEMO_ADDR)

test:
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

# Runs every fuzz target (each func Fuzz... in a _test.go file) for FUZZTIME
# inputs: a count, so a run costs the same on any machine. A longer session:
# make fuzz FUZZTIME=10m, or one target:
#   go test -run='^$$' -fuzz='^FuzzUsageLogParams$$' -fuzztime=30m ./internal/export
# A failing input is saved under the package's testdata/fuzz/<target>/.
FUZZTIME ?= 5000x

fuzz:
	@set -e; for file in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$file"); do \
			echo "fuzz $$name ($(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) "./$$(dirname "$$file")"; \
		done; \
	done

# Skips the tests whose servers cannot be started.
test-short:
	$(GO) test -count=1 -short ./...

vet:
	$(GO) vet ./...

# staticcheck at a pinned version, fetched through the module proxy and checked against go.sum's
# checksum database like any module; it is not a dependency of the program.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: vet
	@files=$$(gofmt -l .); if [ -n "$$files" ]; then echo "gofmt needed on:"; echo "$$files"; exit 1; fi
	$(STATICCHECK) ./...
