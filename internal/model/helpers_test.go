package model

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the directory holding go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// sharedDir is ../shared beside the checkout; tests skip without it.
func sharedDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(repoRoot(t), "..", "shared")
	if _, err := os.Stat(filepath.Join(d, "models")); err != nil {
		t.Skipf("reference data %s absent: skipping", d)
	}
	return d
}

var testRT struct {
	once sync.Once
	rt   *Runtime
	err  error
}

// ortLibrary is the library the tests load.
func ortLibrary(t testing.TB) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "third_party", "onnxruntime", "libonnxruntime.so")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("onnx runtime library %s absent (run \"make ort\"): skipping", p)
	}
	return p
}

// testRuntime is one CPU runtime shared by the package's tests.
func testRuntime(t testing.TB) *Runtime {
	t.Helper()
	lib := ortLibrary(t)
	testRT.once.Do(func() {
		if _, err := InitRuntime([]string{lib}); err != nil {
			testRT.err = err
			return
		}
		testRT.rt, testRT.err = NewRuntime(SessionOptions{Device: DeviceCPU})
	})
	if testRT.err != nil {
		t.Fatal(testRT.err)
	}
	return testRT.rt
}

// refRecord is one line of lc0's NET.refdump.jsonl.
type refRecord struct {
	Name       string          `json:"name"`
	FEN        string          `json:"fen_after"`
	Planes     [][2]any        `json:"planes"`
	Policy     []float64       `json:"policy_logits_1858"`
	Q, W, D, L float64         `json:"-"`
	RawQ       json.RawMessage `json:"q"`
	RawW       json.RawMessage `json:"w"`
	RawD       json.RawMessage `json:"d"`
	RawL       json.RawMessage `json:"l"`
	M          *float64        `json:"m"`
	Error      string          `json:"error"`
	Legal      []struct {
		UCI    string  `json:"uci"`
		Index  int     `json:"nn_index"`
		Logit  float64 `json:"logit"`
		PExact float64 `json:"p_exact"`
	} `json:"legal_moves"`
}

// readRefdump parses a (possibly gzipped) refdump file.
func readRefdump(t testing.TB, path string) []refRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		defer gz.Close()
		r = gz
	}
	var out []refRecord
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var rec refRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, f := range []struct {
			raw json.RawMessage
			dst *float64
		}{{rec.RawQ, &rec.Q}, {rec.RawW, &rec.W}, {rec.RawD, &rec.D}, {rec.RawL, &rec.L}} {
			if len(f.raw) > 0 {
				if err := json.Unmarshal(f.raw, f.dst); err != nil {
					t.Fatalf("%s %s: %v", path, rec.Name, err)
				}
			}
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// decodePlanes expands the refdump's [mask_hex, value] pairs: bit sq of the mask sets [plane][sq/8][sq%8].
func decodePlanes(t testing.TB, rec refRecord) []float32 {
	t.Helper()
	if len(rec.Planes) != Planes {
		t.Fatalf("%s: %d planes, want %d", rec.Name, len(rec.Planes), Planes)
	}
	out := make([]float32, Planes*64)
	for p, e := range rec.Planes {
		hexMask, ok1 := e[0].(string)
		val, ok2 := e[1].(float64)
		if !ok1 || !ok2 {
			t.Fatalf("%s: plane %d: bad entry %v", rec.Name, p, e)
		}
		mask, err := strconv.ParseUint(strings.TrimPrefix(hexMask, "0x"), 16, 64)
		if err != nil {
			t.Fatalf("%s: plane %d: %v", rec.Name, p, err)
		}
		for sq := 0; sq < 64; sq++ {
			if mask>>sq&1 == 1 {
				out[p*64+(sq/8)*8+sq%8] = float32(val)
			}
		}
	}
	return out
}

// refNets lists the real networks with a refdump, skipping when the data is absent.
func refNets(t testing.TB) []string {
	t.Helper()
	sh := sharedDir(t)
	paths, err := filepath.Glob(filepath.Join(sh, "models", "*.onnx"))
	if err != nil || len(paths) == 0 {
		t.Skipf("no nets in %s/models", sh)
	}
	return paths
}

func refdumpFor(t testing.TB, netPath string) string {
	t.Helper()
	base := strings.TrimSuffix(filepath.Base(netPath), ".onnx")
	return filepath.Join(sharedDir(t), "reference", "lc0", base+".refdump.jsonl")
}
