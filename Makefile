# edgefaas — build, test, run. `make run` starts a local platform and
# invokes hello; `make test` runs every test.

GO        ?= go
BIN       := build/edgefaas
WASM      := build/wasm
GO_WASM   := GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -ldflags='-s -w'
CLANG     := clang --target=wasm32-wasi -O2 -s
FUZZTIME  ?= 10s
# Fuzz targets, as package:Target; `make test` runs each for FUZZTIME.
FUZZ      := ./http/:FuzzParseUpload ./http/:FuzzDecodeJSON ./http/:FuzzValidName ./wasm/:FuzzHostABI ./wasm/:FuzzInspect ./actors/wire/:FuzzDecode

GO_REACTORS := hello sleep matrixmult server-reply network
GO_COMMANDS := hello-wasi-go
C_COMMANDS  := hello-c
TEST_C_REACTORS := spin trap stackbomb membomb outbomb nonjson fail logflood wildptr echo legacyhttp abifuzz envfile
TEST_C_COMMANDS := sandbox cfail

EXAMPLES := $(GO_REACTORS:%=$(WASM)/%.wasm) $(GO_COMMANDS:%=$(WASM)/%.wasm) $(C_COMMANDS:%=$(WASM)/%.wasm)
TESTMODS := $(TEST_C_REACTORS:%=$(WASM)/test/%.wasm) $(TEST_C_COMMANDS:%=$(WASM)/test/%.wasm)
SDK_SRC  := $(wildcard sdk/go/*.go)

.PHONY: all build test run examples testmodules bench lint deps clean dist fuzz race

all: build examples

deps:
	@bash scripts/install-deps.sh

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/edgefaas

examples: deps $(EXAMPLES)

testmodules: deps $(TESTMODS)

$(WASM)/%.wasm: examples/%/main.go $(SDK_SRC)
	@mkdir -p $(WASM)
	$(GO_WASM) $(if $(filter $*,$(GO_REACTORS)),-buildmode=c-shared) -o $@ ./examples/$*

$(WASM)/hello-c.wasm: examples/hello-c/hello.c
	@mkdir -p $(WASM)
	$(CLANG) -o $@ $<

$(WASM)/test/%.wasm: tests/functions/%.c tests/functions/funless.h
	@mkdir -p $(WASM)/test
	$(CLANG) $(if $(filter $*,$(TEST_C_REACTORS)),-mexec-model=reactor) -o $@ $<

# The whole suite: unit and integration tests, then short fuzz runs.
test: deps examples testmodules
	$(GO) vet ./...
	$(GO) test -count=1 -p 1 -timeout 10m ./...
	@$(MAKE) --no-print-directory race
	@$(MAKE) --no-print-directory fuzz

# The data-race detector over the packages where it can run: the actors,
# node assembly, supervision, the API and storage. Not what runs guests:
# wasm/ and actors/httpclient (wazero's compiler under -race makes them
# many times slower; nodes/ skips its guest-running tests likewise) and not
# the process-level suites in tests/ (the binary they start is not built
# with -race). ergo has races of its own (see the ergo note): test nodes
# live only seconds, and two nodes over TCP hit one in its atom cache.
RACE_PKGS := $(filter-out ./actors/httpclient/,$(sort $(dir $(wildcard ./actors/*/*.go)))) ./nodes/ ./supervisors/ ./http/ ./storage/
race:
	$(GO) test -race -count=1 -p 1 -timeout 10m $(RACE_PKGS)

# A short run of every fuzz target (FUZZTIME each). Go's fuzzer sometimes
# fails with its own "context deadline exceeded" as -fuzztime ends and no
# failing input: that case is run once more; anything else fails.
fuzz: testmodules
	@mkdir -p build
	@for t in $(FUZZ); do \
	  echo "fuzz $${t#*:} for $(FUZZTIME)"; \
	  for try in 1 2; do \
	    if $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) $${t%%:*} > build/fuzz.log 2>&1; then break; fi; \
	    if [ $$try = 1 ] && grep -q 'context deadline exceeded' build/fuzz.log && ! grep -q 'Failing input written' build/fuzz.log; then \
	      echo "  the fuzzer missed its own deadline, with no failing input: running it once more"; continue; \
	    fi; \
	    cat build/fuzz.log; exit 1; \
	  done; \
	done

run: build examples
	@bash scripts/run.sh

# The benchmark suite (bench/, docs/benchmarks.md): a real cluster, the
# single box and the native and in-process baselines, in one run; the report
# goes to bench/results/DATE-COMMIT/. BENCHFLAGS passes flags, e.g.
# BENCHFLAGS='--sustained 3m --workers 2'. bench-quick: under a minute.
bench: build examples
	$(GO) run ./bench/cmd/edgefaas-bench $(BENCHFLAGS)

.PHONY: bench-quick
bench-quick: build examples
	$(GO) run ./bench/cmd/edgefaas-bench --quick $(BENCHFLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./sdk/... ./examples/...

# Static release binaries for linux/amd64, arm64 and arm v7 in dist/.
dist:
	@bash scripts/dist.sh

# Long forms of tests/reliability (more kill rounds, a 5-minute soak) after
# longer fuzz runs; writes the figures table to tests/results/reliability.md.
RELIABILITY_FUZZTIME ?= 60s
.PHONY: reliability
reliability: deps examples testmodules
	@mkdir -p build; : > build/reliability-fuzz.txt
	@for t in $(FUZZ); do \
	  echo "fuzz $${t#*:} for $(RELIABILITY_FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(RELIABILITY_FUZZTIME) $${t%%:*} > build/fuzz.out 2>&1 || { cat build/fuzz.out; exit 1; }; \
	  echo "$${t#*:} $$(grep -o 'execs: [0-9]*' build/fuzz.out | tail -1 | cut -d' ' -f2)" >> build/reliability-fuzz.txt; \
	done
	$(GO) test -count=1 -timeout 60m -v ./tests/reliability/ -args -reliability.long \
	  -reliability.results $(CURDIR)/tests/results/reliability.md -reliability.fuzzlog $(CURDIR)/build/reliability-fuzz.txt

clean:
	rm -rf build
