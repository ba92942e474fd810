# edgefaas — build, test, run. `make run` starts a local platform and
# invokes hello; `make test` runs every test.

GO        ?= go
BIN       := build/edgefaas
WASM      := build/wasm
GO_WASM   := GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -ldflags='-s -w'
CLANG     := clang --target=wasm32-wasi -O2 -s
FUZZTIME  ?= 3s
# Fuzz targets, as package:Target; `make test` runs each for FUZZTIME.
FUZZ      := ./internal/core/api/:FuzzParseUpload ./internal/core/api/:FuzzDecodeJSON ./internal/core/api/:FuzzValidName ./internal/wasm/:FuzzHostABI ./internal/wasm/:FuzzInspect ./internal/actors/wire/:FuzzDecode

GO_REACTORS := hello sleep matrixmult server-reply network
GO_COMMANDS := hello-wasi-go
C_COMMANDS  := hello-c
TEST_C_REACTORS := spin calltree matmul trap stackbomb membomb outbomb nonjson fail logflood wildptr echo legacyhttp abifuzz envfile emptylog newlines bigmin ctlbloat
TEST_C_COMMANDS := sandbox cfail

EXAMPLES := $(GO_REACTORS:%=$(WASM)/%.wasm) $(GO_COMMANDS:%=$(WASM)/%.wasm) $(C_COMMANDS:%=$(WASM)/%.wasm)
TESTMODS := $(TEST_C_REACTORS:%=$(WASM)/test/%.wasm) $(TEST_C_COMMANDS:%=$(WASM)/test/%.wasm)
SDK_SRC  := $(filter-out %_test.go,$(wildcard sdk/go/*.go)) sdk/go/go.mod

.PHONY: all build test run examples testmodules bench lint deps patch-deps test-deps clean dist fuzz race jsengine

all: build examples

# Building needs Go and git only, as any user: patch-deps makes the patched
# copies of pinned dependencies (patches/README.md) that go.mod's replace
# directives name. The tests need more (clang for the C test modules,
# mosquitto, pouchdb-server, iproute2): test-deps installs those Debian
# packages, as root, quietly, and does nothing when they are present.
# deps is both. Why they are apart: docs/RATIONALE.md#why-building-needs-only-go-and-git.
patch-deps:
	@bash scripts/patch-deps.sh

test-deps:
	@bash scripts/install-deps.sh

deps: test-deps patch-deps

build: patch-deps jsengine
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/edgefaas

# The JavaScript engine the binary embeds (internal/jsengine): fetched,
# checked and compiled once, then cached under build/jsengine/. Without
# npm or a wasm32-wasi clang, build goes on without JavaScript, saying so in
# a line; the test goals need it (JSENGINE_REQUIRED) and install its tools.
jsengine:
	@$(if $(NEED_C),JSENGINE_REQUIRED=1 )bash scripts/build-jsengine.sh

examples: patch-deps $(EXAMPLES)

testmodules: test-deps patch-deps jsengine $(TESTMODS)

# The test goals build the C modules after test-deps installed clang, and
# fail without it; elsewhere (make build, examples, run) the C example is
# skipped, with one line, where clang cannot target wasm32-wasi.
TEST_GOALS := test test-patched testmodules fuzz bench bench-quick bench-edge bench-group reliability
ifneq ($(filter $(TEST_GOALS),$(MAKECMDGOALS)),)
NEED_C := 1
$(WASM)/hello-c.wasm $(TESTMODS) jsengine: | test-deps
endif

$(WASM)/%.wasm: examples/%/main.go $(SDK_SRC)
	@mkdir -p $(WASM)
	$(GO_WASM) $(if $(filter $*,$(GO_REACTORS)),-buildmode=c-shared) -o $@ ./examples/$*

$(WASM)/hello-c.wasm: examples/hello-c/hello.c
	@mkdir -p $(WASM)
	@if [ -n "$(NEED_C)" ] || bash scripts/have-wasi-clang.sh; then \
	  echo "$(CLANG) -o $@ $<"; $(CLANG) -o $@ $<; \
	else \
	  echo "skipping examples/hello-c: no clang that targets wasm32-wasi (wasi-libc, lld); scripts/install-deps.sh installs them"; \
	fi

$(WASM)/test/%.wasm: tests/functions/%.c tests/functions/funless.h
	@mkdir -p $(WASM)/test
	$(CLANG) $(if $(filter $*,$(TEST_C_REACTORS)),-mexec-model=reactor) -o $@ $<

# matmul is the C compute loop the benchmarks put beside native C: both
# sides -O2 with their target's SIMD (wasm simd128 here; SSE2 natively).
$(WASM)/test/matmul.wasm: tests/functions/matmul.h
$(WASM)/test/matmul.wasm: CLANG += -msimd128

# bigmin starts with 20 MiB of linear memory: its first call's bound.
$(WASM)/test/bigmin.wasm: CLANG += -Wl,--initial-memory=20971520

# The whole suite: unit and integration tests, the patched dependencies'
# own upstream tests, the race detector, then short fuzz runs, in two
# streams and a serial end:
# - the main stream runs the test packages two at a time, LONG_PKGS first
#   (go test starts packages in the order named, so the short ones fill
#   the gaps at the end instead of one long package running alone); its
#   packages may take 20 minutes, not 10: on a machine with a cold build
#   cache tests/arch cross-compiles five release binaries while both
#   streams compile too;
# - beside it, a side stream runs IO_PKGS one at a time (they wait mostly
#   on disk syncs and timers: Raft's elections, durable queues), then the
#   race detector, the patched dependencies' tests and the fuzz runs, which
#   use the CPU the main stream leaves idle in its second half; its output
#   is printed after the main stream's;
# - then, alone, SERIAL_PKGS and tests/reliability's SERIAL_TESTS: they
#   assert latencies against a calm baseline or a configured bound
#   (neighbours beside spinning guests, guests stopped on time), which
#   another package's load on the 2 cores would skew. The rest of
#   tests/reliability asserts counts, orderings and bounds of several
#   seconds (a hung worker dropped within 3× its 5 s staleness).
SERIAL_PKGS = ./internal/wasm
SERIAL_TESTS = ^(TestSpinningNeighbours|TestMaliciousFunctions)$$
LONG_PKGS = ./tests/arch ./internal/bench ./tests/adversarial ./tests/cluster ./tests/reliability ./tests/budget
IO_PKGS = ./internal/core/replication ./tests/group ./tests/activations
# The Go SDK is a module of its own (sdk/go/go.mod), outside the root's
# ./...: it is vetted and tested in its directory. go vet runs every
# analyzer first, so the go test runs after it (race and fuzz included)
# skip the subset go test would run again (TESTVET).
test: test-deps patch-deps examples testmodules
	$(GO) vet ./...
	cd sdk/go && $(GO) vet ./... && $(GO) test -vet=off -count=1 ./...
	@pkgs=$$($(GO) list ./... | sed 's|^github.com/edgefaas/edgefaas|.|' | grep -vxF $(foreach p,$(SERIAL_PKGS) $(LONG_PKGS) $(IO_PKGS),-e $(p))) && \
	  test -n "$$pkgs" || exit 1; \
	  ( set -e; echo "go test -vet=off -count=1 -p 1 -timeout 10m $(IO_PKGS)"; \
	    $(GO) test -vet=off -count=1 -p 1 -timeout 10m $(IO_PKGS); \
	    $(MAKE) --no-print-directory race TESTVET=-vet=off; \
	    $(MAKE) --no-print-directory test-patched; \
	    $(MAKE) --no-print-directory fuzz TESTVET=-vet=off ) > build/test-side.log 2>&1 & side=$$!; \
	  echo "go test -vet=off -count=1 -p 2 -timeout 20m -skip '$(SERIAL_TESTS)' (every package but $(SERIAL_PKGS) and $(IO_PKGS), $(LONG_PKGS) first)"; \
	  $(GO) test -vet=off -count=1 -p 2 -timeout 20m -skip '$(SERIAL_TESTS)' $(LONG_PKGS) $$pkgs; rc=$$?; \
	  wait $$side; side=$$?; \
	  echo "== the side stream (IO_PKGS, race, patched dependencies, fuzz): exit $$side"; cat build/test-side.log; \
	  test $$rc = 0 && test $$side = 0
	$(GO) test -vet=off -count=1 -p 1 -timeout 10m $(SERIAL_PKGS)
	$(GO) test -vet=off -count=1 -timeout 10m -run '$(SERIAL_TESTS)' ./tests/reliability

# Upstream tests of the packages our patches touch, run in the patched copies
# (patches/README.md lists why each set is enough). Each entry is
# 'copy:go-test-arguments', quoted (the arguments are split on spaces).
PATCHED_TESTS ?= \
  'wazero:./internal/engine/wazevo/... ./internal/integration_test/spectest/... ./internal/wasm/ ./internal/filecache/ .' \
  'wazero:-run=TerminationCheckInterval ./internal/integration_test/engine/'
# ergo: proto/dist's unit tests (but TestDecodeFragment, which fails 1 run in
# 5 on the pristine module: it keeps the last fragment's nil result), and the
# node tests of ergo's tests/ (real nodes over loopback TCP; about 15 s) in a
# loopback-only network namespace, a failed test retried once alone
# (scripts/upstream-test-exec.sh says why). ERGO_NODE_TESTS leaves out the
# ones that fail or flake on the pristine module too, and TestTCP, racy by
# construction (patches/README.md). The tests of patches 0006 and 0007 run
# with the race detector, which sees the races they fix on every run.
ERGO_NODE_TESTS = ^Test(Node|NodeStaticRoute|NodeDistHandshake|NodeRemoteSpawn|NodeResolveExtra|NodeProcessFallback|NodeCompression|Core|CoreAlias|Server.*|Application.*|MonitorLocalLocal|MonitorLocalRemoteByPid|MonitorLocalRemoteByName|MonitorEvents|Web|UDP|AtomCache.*|NodeAcceptBounded)$$
PATCHED_TESTS += 'ergo:-skip=^TestDecodeFragment$$ ./proto/dist/' 'ergo:-timeout=4m -exec=$(CURDIR)/scripts/upstream-test-exec.sh -run=$(ERGO_NODE_TESTS) ./tests/' \
  'ergo:-race -exec=$(CURDIR)/scripts/upstream-test-exec.sh -run=^(TestExitRacesTermination|TestApplicationStopRacesEnd)$$ ./tests/'
.PHONY: test-patched
test-patched: test-deps patch-deps
	@set -f; for t in $(PATCHED_TESTS); do \
	  echo "patched $${t%%:*}: go test $${t#*:}"; \
	  (cd build/patched-by-make-deps/$${t%%:*} && $(GO) test -count=1 $${t#*:}) || exit 1; \
	done

# The data-race detector over the packages where it can run: the actors,
# node assembly, supervision, the API and storage. Not what runs guests:
# internal/wasm/ and the worker's httpclient actor (wazero's compiler under -race makes them
# many times slower; internal/nodes/ skips its guest-running tests likewise) and not
# the process-level suites in tests/ (the binary they start is not built
# with -race). ergo has races of its own (docs/RATIONALE.md#why-ergo-and-actors): test nodes
# live only seconds, and two nodes over TCP hit one in its atom cache.
RACE_PKGS := $(filter-out ./internal/worker/actors/httpclient/,$(sort $(dir $(wildcard ./internal/actors/*/*.go ./internal/core/actors/*/*.go ./internal/worker/actors/*/*.go)))) ./internal/nodes/ ./internal/supervisors/ ./http/... ./internal/core/api/ ./internal/core/storage/ ./internal/core/triggers/...
.PHONY: race
race:
	$(GO) test $(TESTVET) -race -count=1 -p 2 -timeout 10m $(RACE_PKGS)

# A short run of every fuzz target (FUZZTIME each). Go's fuzzer sometimes
# fails with its own "context deadline exceeded" as -fuzztime ends and no
# failing input: that case is run once more; anything else fails.
fuzz: test-deps testmodules
	@mkdir -p build
	@for t in $(FUZZ); do \
	  echo "fuzz $${t#*:} for $(FUZZTIME)"; \
	  for try in 1 2; do \
	    if $(GO) test $(TESTVET) -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) $${t%%:*} > build/fuzz.log 2>&1; then break; fi; \
	    if [ $$try = 1 ] && grep -q 'context deadline exceeded' build/fuzz.log && ! grep -q 'Failing input written' build/fuzz.log; then \
	      echo "  the fuzzer missed its own deadline, with no failing input: running it once more"; continue; \
	    fi; \
	    cat build/fuzz.log; exit 1; \
	  done; \
	done

run: build examples
	@bash scripts/run.sh

# The benchmark suite (internal/bench/, docs/performance.md): a real cluster, the
# single box and the native and in-process baselines, in one run; the report
# goes to bench/results/DATE-COMMIT/. BENCHFLAGS passes flags, e.g.
# BENCHFLAGS='--sustained 3m --workers 2'. bench-quick: under a minute.
bench: test-deps build examples testmodules
	$(GO) run ./cmd/edgefaas-bench $(BENCHFLAGS)

# bench-edge: only the edge-budget section (idle/peak RSS, memory run, smallest cgroup limit).
.PHONY: bench-edge
bench-edge: test-deps build examples
	$(GO) run ./cmd/edgefaas-bench --only-edge-budget $(BENCHFLAGS)

# bench-group: only the replicated-core section (a core group of three against a single core).
.PHONY: bench-group
bench-group: test-deps build examples
	$(GO) run ./cmd/edgefaas-bench --only-group $(BENCHFLAGS)

.PHONY: bench-quick
bench-quick: test-deps build examples testmodules
	$(GO) run ./cmd/edgefaas-bench --quick $(BENCHFLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd sdk/go && $(GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./examples/...

# The release in dist/ (docs/packaging.md): archives for linux, darwin and
# windows, Debian packages, the multi-arch OCI image, SHA256SUMS.
dist: deps jsengine
	@bash scripts/dist.sh

# Long forms of tests/reliability (more kill rounds, a 5-minute soak) after
# longer fuzz runs; writes the figures table to tests/results/reliability.md.
# Then the core group's long tests (a leader cut off in network namespaces,
# the write and call stream through ten leader kills instead of two).
RELIABILITY_FUZZTIME ?= 60s
.PHONY: reliability
reliability: test-deps patch-deps examples testmodules
	@mkdir -p build; : > build/reliability-fuzz.txt
	@for t in $(FUZZ); do \
	  echo "fuzz $${t#*:} for $(RELIABILITY_FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(RELIABILITY_FUZZTIME) $${t%%:*} > build/fuzz.out 2>&1 || { cat build/fuzz.out; exit 1; }; \
	  echo "$${t#*:} $$(grep -o 'execs: [0-9]*' build/fuzz.out | tail -1 | cut -d' ' -f2)" >> build/reliability-fuzz.txt; \
	done
	$(GO) test -count=1 -timeout 60m -v ./tests/reliability/ -args -reliability.long \
	  -reliability.results $(CURDIR)/tests/results/reliability.md -reliability.fuzzlog $(CURDIR)/build/reliability-fuzz.txt
	$(GO) test -count=1 -timeout 10m -v ./tests/group/ -args -group.long

clean:
	rm -rf build
