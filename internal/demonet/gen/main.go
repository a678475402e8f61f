// Command gen writes the demo network built by internal/demonet to a file; `make demo` (go generate in
// internal/demonet) runs it to refresh internal/model's embedded demo.onnx.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/lczerolens/lczerolens/internal/demonet"
)

func main() {
	out := flag.String("o", "demo.onnx", "output file")
	flag.Parse()
	raw, err := demonet.Bytes()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, raw, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
