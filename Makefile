# vpcflow-grapherd — build, run and test targets. `make test` installs what the
# tests need (Versity S3 Gateway, Graphviz, Chromium, Node.js, a local SQS server)
# on a fresh machine.

BIN        := bin/vpcflow-grapherd
CACHE      := $(CURDIR)/.cache
VERSITYGW  := $(CACHE)/bin/versitygw
LOCAL_AWS_SQS := $(CACHE)/sqsserver
GO         ?= go
GOTEST     := $(GO) test -race -shuffle=on -count=1
PORT       ?= 8080
BENCH_LINES ?= 1000000

export VERSITYGW
export LOCAL_AWS_SQS

.PHONY: all build run test vet versitygw sqs-server nodejs graphviz bench bench-e2e bench-views bench-queue bench-queue-procs fuzz load sample clean chromium web check-assets screenshots

all: build

## build: the binary static (no cgo) and -trimpath, as the Dockerfile builds it (which also strips
## its symbols): it starts 4-5 ms sooner than a cgo build (the dynamic loader and libc) on every command.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) .

## run: start the service on :$(PORT) with embedded defaults, graphing the sample flow logs.
run: build
	FLOW_LOGS_DIR=testdata/flowlogs \
	GRAPHERD_DATA_DIR=$${GRAPHERD_DATA_DIR:-data} \
	RUNTIME_HTTPSERVER_ADDRESS=$${RUNTIME_HTTPSERVER_ADDRESS:-:$(PORT)} \
	RUNTIME_STATS_OUTPUT=$${RUNTIME_STATS_OUTPUT:-NULLSTAT} \
	./$(BIN)

## test: vet, then every test with the race detector, against a real S3 server, a local SQS server,
## Graphviz and Chromium, after checking the embedded web bundle matches its sources.
test: versitygw sqs-server graphviz chromium check-assets vet
	$(GOTEST) -timeout 40m ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting" && exit 1)

versitygw: $(VERSITYGW)

$(VERSITYGW):
	mkdir -p $(CACHE)/bin
	GOBIN=$(CACHE)/bin $(GO) install github.com/versity/versitygw/cmd/versitygw@v1.8.0

.PHONY: sqs-server nodejs bench-queue bench-queue-procs

## sqs-server: install local-aws-sqs, at the versions tools/sqsserver's lockfile pins, into .cache/sqsserver.
sqs-server: $(LOCAL_AWS_SQS)/node_modules/local-aws-sqs/package.json

$(LOCAL_AWS_SQS)/node_modules/local-aws-sqs/package.json: tools/sqsserver/package.json tools/sqsserver/package-lock.json
	@$(MAKE) --no-print-directory nodejs
	mkdir -p $(LOCAL_AWS_SQS)
	cp tools/sqsserver/package.json tools/sqsserver/package-lock.json $(LOCAL_AWS_SQS)/
	npm ci --prefix $(LOCAL_AWS_SQS) --no-audit --no-fund --loglevel=error
	@touch $@

nodejs:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
		echo "installing nodejs and npm"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@command -v node >/dev/null && command -v npm >/dev/null

graphviz:
	@command -v dot >/dev/null 2>&1 || { \
		echo "installing graphviz"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; }
	@command -v dot >/dev/null

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }
	@command -v chromium >/dev/null

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --ignore-scripts

## web: rebuild the page's bundle in web/dist from web/src and the locked npm packages.
web: nodejs web/node_modules/.package-lock.json
	cd web && node build.mjs

## check-assets: fail when the committed bundle in web/dist does not match its sources.
check-assets: web
	@git diff --exit-code --stat -- web/dist && test -z "$$(git status --porcelain -- web/dist)" || { \
		echo "web/dist does not match web/src: run make web and commit web/dist"; exit 1; }

## screenshots: retake the page's screenshots in docs/img with headless Chromium.
screenshots: chromium
	$(GO) test -count=1 -run 'TestPageMakesSampleGraph' ./web/ -update-screenshots

## bench: converter benchmarks, the 1M-line conversion with its peak RSS, and convert against its floor (tools/floor) in one run.
bench: build
	@command -v /usr/bin/time >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./pkg/grapher/ ./pkg/flowlog/ ./pkg/digester/
	mkdir -p $(CACHE)/bench
	$(GO) run ./tools/gendigest -lines $(BENCH_LINES) -addrs 20000 -o $(CACHE)/bench/digest-$(BENCH_LINES).log
	/usr/bin/time -f 'convert -o FILE: %e s wall, %M KB peak RSS' ./$(BIN) convert -o $(CACHE)/bench/graph.dot $(CACHE)/bench/digest-$(BENCH_LINES).log
	/usr/bin/time -f 'convert to stdout: %e s wall, %M KB peak RSS' ./$(BIN) convert $(CACHE)/bench/digest-$(BENCH_LINES).log > /dev/null
	@ls -l $(CACHE)/bench/digest-$(BENCH_LINES).log $(CACHE)/bench/graph.dot
	$(GO) build -o $(CACHE)/bench/floor ./tools/floor
	$(CACHE)/bench/floor -compare ./$(BIN) -runs 5 $(CACHE)/bench/digest-$(BENCH_LINES).log

## bench-e2e: whole graph jobs through the real binary (S3 on Versity S3 Gateway, files, the built-in digester), with peak RSS, phases and CPU; then the upload floor of each storage backend.
bench-e2e: build versitygw
	GRAPHERD_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench E2E -benchtime 3x -timeout 30m ./tools/benche2e/
	$(GO) test -run '^$$' -bench Store -benchmem -benchtime 5x ./pkg/storage/

## bench-views: view benchmarks, then a 1M-record graph made by the service and its JSON views timed cold, with the peak RSS.
bench-views: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./pkg/flowtable/
	$(GO) run ./tools/benchviews -bin ./$(BIN) -lines $(BENCH_LINES) -addrs 20000 -dir $(CACHE)/bench

## fuzz: a short run of each fuzz target.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzGraph -fuzztime 30s ./pkg/grapher/
	$(GO) test -run '^$$' -fuzz FuzzParseDefault -fuzztime 20s ./pkg/flowlog/
	$(GO) test -run '^$$' -fuzz FuzzIPv6Field -fuzztime 20s ./pkg/flowlog/
	$(GO) test -run '^$$' -fuzz FuzzIPv4Field -fuzztime 20s ./pkg/flowlog/
	$(GO) test -run '^$$' -fuzz FuzzParquetReader -fuzztime 30s ./pkg/flowlog/
	$(GO) test -run '^$$' -fuzz FuzzParseWindow -fuzztime 20s ./pkg/handlers/v1/
	$(GO) test -run '^$$' -fuzz FuzzDecodeJob -fuzztime 20s ./pkg/handlers/v1/
	$(GO) test -run '^$$' -fuzz FuzzReaders -fuzztime 20s ./pkg/flowtable/
	$(GO) test -run '^$$' -fuzz FuzzParseParams -fuzztime 20s ./pkg/flowtable/

## load: many concurrent clients against the standalone service on loopback, bounded in requests and time.
load: build
	$(GO) run ./tools/loadtest -bin ./$(BIN) -flowlogs testdata/flowlogs

## sample: regenerate the sample flow logs in testdata/flowlogs.
sample:
	$(GO) run ./tools/gensample -out testdata/flowlogs

## bench-queue: jobs per second through JetStream (embedded) and SQS (local-aws-sqs) with 1, 2 and 4 consumers.
bench-queue: sqs-server
	$(GO) test -run '^$$' -bench 'JetStream|SQS' -benchmem -benchtime $${BENCH_JOBS:-2000}x ./pkg/queuer/

## bench-queue-procs: jobs per second with one API and 1, 2 and 4 worker processes apart, on JetStream and SQS (loopback).
bench-queue-procs: build sqs-server
	$(GO) run ./tools/benchqueue -bin ./$(BIN) -flowlogs testdata/flowlogs -jobs $${QUEUE_JOBS:-100}

clean:
	rm -rf bin data
