package lc0

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/lc0/pblczero"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz/FuzzParse")

// fuzzSeeds are small generated nets of each architecture, plain and gzipped.
func fuzzSeeds(t testing.TB) map[string][]byte {
	f16 := pblczero.Weights_Layer_FLOAT16
	out := map[string][]byte{}
	for name, s := range map[string]GenSpec{
		"se_attnpol": {Seed: 21, Blocks: 1, Filters: 2, SE: true, Policy: "attention", WDL: true, MLH: true, Encoding: pblczero.Weights_Layer_LINEAR16},
		"plain_conv": {Seed: 22, Blocks: 1, Filters: 1, BatchNorm: true, Policy: "attention", Encoding: pblczero.Weights_Layer_BFLOAT16},
		"attn_map":   {Seed: 23, Encoders: 1, Heads: 2, Filters: 2, Gating: true, Policy: "attention", WDL: true, MLH: true, Encoding: f16},
	} {
		raw := marshal(t, genNet(s))
		out[name+".pb"] = raw
		out[name+".pb.gz"] = gzipped(t, raw)
	}
	return out
}

// FuzzParse feeds arbitrary bytes to Parse, and what parses to Describe and Convert: no panic, and every
// error is one line naming the step that failed.
func FuzzParse(f *testing.F) {
	for _, raw := range fuzzSeeds(f) {
		f.Add(raw)
		f.Add(raw[:len(raw)/3])
	}
	// Prefixes of the real files, when present: their headers, format and first layers.
	real, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "models", "*.pb*"))
	for _, p := range real {
		if raw, err := os.ReadFile(p); err == nil {
			f.Add(raw[:min(len(raw), 4096)])
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, err := Parse(raw)
		if err != nil {
			checkErr(t, err, "lc0: parse: ", ErrNotWeights, ErrTruncated, ErrMalformed)
			return
		}
		_ = n.Describe().Lines()
		n.HeadNames()
		m, err := Convert(n, Options{})
		if err != nil {
			checkErr(t, err, "lc0: convert: ", ErrTruncated, ErrMalformed, ErrUnsupported, errAny)
			return
		}
		if len(m.GetGraph().GetNode()) == 0 || len(m.GetGraph().GetOutput()) == 0 {
			t.Error("converted graph without nodes or outputs")
		}
	})
}

// errAny stands for errors of the embedded ONNX model, which wrap onnxgraph's errors.
var errAny = errors.New("any")

func checkErr(t *testing.T, err error, prefix string, kinds ...error) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), prefix) || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q: want one line starting %q", err, prefix)
	}
	for _, k := range kinds {
		if k == errAny || errors.Is(err, k) {
			return
		}
	}
	t.Errorf("error %q wraps none of %v", err, kinds)
}

// TestFuzzSeeds checks the committed seed corpus still parses and converts (rewrite it with -update).
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	seeds := fuzzSeeds(t)
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, raw := range seeds {
			if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", raw), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, raw := range seeds {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%v (run go test -run TestFuzzSeeds -update)", err)
		}
		if want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", raw); string(b) != want {
			t.Errorf("%s is stale: run go test -run TestFuzzSeeds -update", name)
		}
		n, err := Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := Convert(n, Options{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
