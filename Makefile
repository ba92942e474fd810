# edgefaas — build, test, run. `make run` starts a local platform and
# invokes hello; `make test` runs every test.

GO        ?= go
BIN       := build/edgefaas
WASM      := build/wasm
GO_WASM   := GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -ldflags='-s -w'
CLANG     := clang --target=wasm32-wasi -O2 -s
FUZZTIME  ?= 10s
# Fuzz targets, as package:Target; `make test` runs each for FUZZTIME.
FUZZ      := ./http/:FuzzParseUpload ./http/:FuzzDecodeJSON ./http/:FuzzValidName

GO_REACTORS := hello sleep matrixmult server-reply network
GO_COMMANDS := hello-wasi-go
C_COMMANDS  := hello-c
TEST_C_REACTORS := spin trap stackbomb membomb outbomb nonjson fail logflood wildptr echo legacyhttp
TEST_C_COMMANDS := sandbox cfail

EXAMPLES := $(GO_REACTORS:%=$(WASM)/%.wasm) $(GO_COMMANDS:%=$(WASM)/%.wasm) $(C_COMMANDS:%=$(WASM)/%.wasm)
TESTMODS := $(TEST_C_REACTORS:%=$(WASM)/test/%.wasm) $(TEST_C_COMMANDS:%=$(WASM)/test/%.wasm)
SDK_SRC  := $(wildcard sdk/go/*.go)

.PHONY: all build test run examples testmodules bench lint deps clean

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
	@for t in $(FUZZ); do \
	  echo "fuzz $${t#*:} for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) $${t%%:*} >/dev/null || exit 1; \
	done

run: build examples
	@bash scripts/run.sh

bench: examples
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 1 ./wasm/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./sdk/... ./examples/...

clean:
	rm -rf build
