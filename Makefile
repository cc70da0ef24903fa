# vpcflow-grapherd — build, run and test targets. `make test` installs what the
# tests need (Versity S3 Gateway, Graphviz) on a fresh machine.

BIN        := bin/vpcflow-grapherd
CACHE      := $(CURDIR)/.cache
VERSITYGW  := $(CACHE)/bin/versitygw
GO         ?= go
GOTEST     := $(GO) test -race -shuffle=on -count=1
PORT       ?= 8080
BENCH_LINES ?= 1000000

export VERSITYGW

.PHONY: all build run test vet versitygw graphviz bench bench-e2e fuzz load sample clean

all: build

build:
	$(GO) build -o $(BIN) .

## run: start the service on :$(PORT) with embedded defaults, graphing the sample flow logs.
run: build
	FLOW_LOGS_DIR=testdata/flowlogs \
	GRAPHERD_DATA_DIR=$${GRAPHERD_DATA_DIR:-data} \
	RUNTIME_HTTPSERVER_ADDRESS=$${RUNTIME_HTTPSERVER_ADDRESS:-:$(PORT)} \
	RUNTIME_STATS_OUTPUT=$${RUNTIME_STATS_OUTPUT:-NULLSTAT} \
	./$(BIN)

## test: vet, then every test with the race detector, against a real S3 server and Graphviz.
test: versitygw graphviz vet
	$(GOTEST) -timeout 40m ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting" && exit 1)

versitygw: $(VERSITYGW)

$(VERSITYGW):
	mkdir -p $(CACHE)/bin
	GOBIN=$(CACHE)/bin $(GO) install github.com/versity/versitygw/cmd/versitygw@v1.8.0

graphviz:
	@command -v dot >/dev/null 2>&1 || { \
		echo "installing graphviz"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; }
	@command -v dot >/dev/null

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

## bench-e2e: whole graph jobs through the real binary (S3 on Versity S3 Gateway, files, the built-in digester), with peak RSS and phases.
bench-e2e: build versitygw
	GRAPHERD_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench E2E -benchtime 3x -timeout 30m ./tools/benche2e/

## fuzz: a short run of each fuzz target.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzGraph -fuzztime 30s ./pkg/grapher/
	$(GO) test -run '^$$' -fuzz FuzzParseWindow -fuzztime 20s ./pkg/handlers/v1/
	$(GO) test -run '^$$' -fuzz FuzzDecodeJob -fuzztime 20s ./pkg/handlers/v1/

## load: many concurrent clients against the standalone service on loopback, bounded in requests and time.
load: build
	$(GO) run ./tools/loadtest -bin ./$(BIN) -flowlogs testdata/flowlogs

## sample: regenerate the sample flow logs in testdata/flowlogs.
sample:
	$(GO) run ./tools/gensample -out testdata/flowlogs

clean:
	rm -rf bin data
