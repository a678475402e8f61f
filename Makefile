# lczerolens build, test and benchmark entry points. cgo is required (ONNX Runtime is loaded at run time).
GO      ?= go
BIN     := bin/lczerolens
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/lczerolens/lczerolens/internal/cli.Version=$(VERSION)
ORT_LIB := third_party/onnxruntime/libonnxruntime.so
# Benchmarks: one count by default; override e.g. BENCH_COUNT=5 for benchstat.
BENCH_COUNT ?= 1
BENCH_TIME  ?= 3x

export CGO_ENABLED := 1

.PHONY: all build ort test bench lint clean proto demo fuzz

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lczerolens

# Fetches ONNX Runtime 1.29.0 (npm package onnxruntime-node) into the ignored third_party/ folder, checking its sha256.
ort: $(ORT_LIB)
$(ORT_LIB):
	bash scripts/fetch-ort.sh

test: ort
	$(GO) test -count=1 ./...

bench: ort
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) ./...

lint:
	@out=$$(gofmt -l cmd internal); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Short fuzzing runs of every parser and of the policy index round trip under canonical transforms (FUZZ_TIME each).
FUZZ_TIME ?= 20s
fuzz:
	$(GO) test ./internal/board -run '^$$' -fuzz '^FuzzParseFEN$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./internal/board -run '^$$' -fuzz '^FuzzPGNReader$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./internal/board -run '^$$' -fuzz '^FuzzPolicyTranspose$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./internal/npy -run '^$$' -fuzz '^FuzzNPYRead$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./internal/lc0 -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./internal/model -run '^$$' -fuzz '^FuzzLoadBytes$$' -fuzztime $(FUZZ_TIME)

# Regenerates the ONNX and lc0 protobuf bindings (needs protoc and protoc-gen-go; the output is committed).
proto:
	cd internal/onnxpb && protoc --go_out=. --go_opt=paths=source_relative onnx.proto
	cd internal/lc0/pblczero && protoc --go_out=. --go_opt=paths=source_relative net.proto

# Regenerates the embedded demo network (its test fails when the committed file is stale).
demo:
	$(GO) generate ./internal/demonet/...

clean:
	rm -rf bin dist
