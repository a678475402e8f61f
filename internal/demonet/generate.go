package demonet

// The directive lives here, beside the builder it runs, so that `go generate ./internal/demonet/...` (what
// `make demo` runs) refreshes the network internal/model embeds; TestEmbeddedUpToDate fails when it is stale.
//go:generate go run ./gen -o ../model/demo.onnx
