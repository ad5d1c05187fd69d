# Targets used by developers and by .ci/run. Tests start their own PostgreSQL, Redis and S3
# servers unless TEST_DATABASE_URL / TEST_REDIS_URL / TEST_S3_ENDPOINT point at existing ones.
GO ?= go

.PHONY: build test test-short vet lint fuzz

build:
	$(GO) build -o bin/hubexport ./cmd/hubexport

test:
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) fuzz

# Runs each fuzz target for FUZZTIME (a count of inputs, so a run costs the
# same on any machine). A longer session: make fuzz FUZZTIME=10m, or one
# target: go test -run='^$$' -fuzz='^FuzzUsageLogParams$$' -fuzztime=30m ./internal/export
# A failing input is saved under the package's testdata/fuzz/<target>/.
FUZZTIME ?= 5000x
FUZZ_TARGETS = \
	./internal/export:FuzzDecodeStrict \
	./internal/export:FuzzUsageLogParams \
	./internal/export:FuzzProbeLogParams \
	./internal/export:FuzzSessionRequestParams \
	./internal/export:FuzzBackupParams \
	./internal/export:FuzzRestoreParams \
	./internal/export:FuzzRetentionQuery \
	./web:FuzzDecodeBody \
	./web:FuzzCreateExport \
	./jobs:FuzzScheduleInput \
	./internal/webhook:FuzzWebhookInput

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t##*:} ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$${t##*:}$$" -fuzztime=$(FUZZTIME) "$${t%%:*}"; \
	done

# Skips the tests whose servers cannot be started.
test-short:
	$(GO) test -count=1 -short ./...

vet:
	$(GO) vet ./...

lint: vet
	@files=$$(gofmt -l .); if [ -n "$$files" ]; then echo "gofmt needed on:"; echo "$$files"; exit 1; fi
