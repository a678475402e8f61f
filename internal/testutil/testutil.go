// Package testutil holds what the project's tests share: the module root, the reference data in ../shared
// beside the checkout, the ONNX Runtime library, numpy, and lc0's reference dumps. It is for tests only:
// nothing outside _test.go files imports it, and it imports nothing from the project, so any package's tests
// may use it.
//
// A test whose dependency is absent (../shared, ONNX Runtime, numpy) skips with a message on a developer's
// machine, but fails when CI=true: in CI an absent dependency is a broken setup, and tests that skip silently
// there prove nothing.
package testutil

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// NumPlanes is how many 8x8 input planes an lc0 reference record holds.
const NumPlanes = 112

// startDir is the working directory the test binary started in (its package's directory), taken before any
// test can change it with t.Chdir: tests that run commands inside a temporary directory still find the root.
var startDir, startErr = os.Getwd()

// FindRoot returns the module root, the nearest directory above the working directory that holds go.mod. It
// is for TestMain, which has no testing.TB; tests call Root.
func FindRoot() (string, error) {
	dir, err := startDir, startErr
	if err != nil {
		return "", fmt.Errorf("testutil: find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testutil: no go.mod above the test directory")
		}
		dir = parent
	}
}

// Root is FindRoot failing the test when there is no module root.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Strict reports whether an absent test dependency fails the test rather than skipping it: it does when the
// CI variable is true (CI=true, as CI services and .ci/run set it).
func Strict() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Missing ends a test whose dependency is absent: it skips with the message, or fails with it under Strict.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s (CI=true: a missing test dependency is an error)", msg)
	}
	t.Skipf("skipping: %s", msg)
}

// Shared returns ../shared/rel... beside the checkout and ends the test through Missing when that path is
// absent: the reference data is not part of the repository and is present only in CI and the dev sandbox.
func Shared(t testing.TB, rel ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Root(t), "..", "shared"}, rel...)...)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "shared test data %s absent (../shared is present in CI and the dev sandbox)", p)
	}
	return p
}

// FindORTLib returns the ONNX Runtime shared library in third_party, or an error saying how to get it. Like
// FindRoot it is for TestMain; tests call ORTLib.
func FindORTLib() (string, error) {
	root, err := FindRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "third_party", "onnxruntime", "libonnxruntime.so")
	if _, err := os.Stat(p); err != nil {
		// The path says it all; stat's own message would only repeat it.
		return "", fmt.Errorf("testutil: onnx runtime library %s absent (run `make ort`)", p)
	}
	return p, nil
}

// ORTLib returns the ONNX Runtime shared library in third_party and ends the test through Missing when it
// is absent.
func ORTLib(t testing.TB) string {
	t.Helper()
	p, err := FindORTLib()
	if err != nil {
		Missing(t, "%v", err)
	}
	return p
}

// Python is the interpreter the numpy checks run: the system one, which python3-numpy installs into.
const Python = "/usr/bin/python3"

// NumpyPython returns Python when it imports numpy, and otherwise ends the test through Missing.
func NumpyPython(t testing.TB) string {
	t.Helper()
	if err := exec.Command(Python, "-c", "import numpy").Run(); err != nil {
		Missing(t, "numpy check: %s cannot import numpy (%v); install python3-numpy", Python, err)
	}
	return Python
}

// numpyManifestScript loads every NPY file a manifest lists and checks its dtype and its shape, [count] and
// the key's shape; with finite set it also requires every value to be finite.
const numpyManifestScript = `
import json, sys, numpy as np
d, finite = sys.argv[1], sys.argv[2] == "1"
m = json.load(open(d + "/manifest.json"))
for key, k in m["keys"].items():
    a = np.load(d + "/" + k["file"])
    assert a.dtype == np.float32, (key, a.dtype)
    assert list(a.shape) == [m["count"]] + k["shape"], (key, a.shape, k["shape"])
    assert not finite or np.isfinite(a).all(), key
print("ok", len(m["keys"]))
`

// NumpyManifest loads every NPY file of an output directory with numpy and checks each against its
// manifest.json entry: float32, shape [count]+shape and, when finite is set, no NaN or infinity (occlusion
// writes NaN where its target's move becomes illegal, so not every output can promise that).
func NumpyManifest(t testing.TB, dir string, finite bool) {
	t.Helper()
	flag := "0"
	if finite {
		flag = "1"
	}
	out, err := exec.Command(NumpyPython(t), "-c", numpyManifestScript, dir, flag).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok") {
		t.Fatalf("numpy check of %s failed: %v\n%s", dir, err, out)
	}
}

// RefRecord is one line of an lc0 reference dump (NET.refdump.jsonl, synthetic/*.jsonl.gz): a position, the
// planes lc0 fed its network and what the network answered. Records lc0 could not produce carry only Error.
type RefRecord struct {
	Name         string     `json:"name"`
	FENStart     string     `json:"fen_start"`
	MovesFromFEN []string   `json:"moves_from_fen"`
	FENAfter     string     `json:"fen_after"`
	BlackToMove  bool       `json:"black_to_move"`
	Rule50Ply    int        `json:"rule50_ply"`
	Repetitions  int        `json:"repetitions"`
	InputFormat  int        `json:"input_format"`
	Transform    int        `json:"transform"`
	HistoryFill  string     `json:"history_fill"`
	Planes       []RefPlane `json:"planes"`
	Policy       []float64  `json:"policy_logits_1858"`
	Q            float64    `json:"q"`
	W            float64    `json:"w"`
	D            float64    `json:"d"`
	L            float64    `json:"l"`
	M            *float64   `json:"m"`
	HasWDL       bool       `json:"has_wdl"`
	HasMLH       bool       `json:"has_mlh"`
	Error        string     `json:"error"`
	LegalMoves   []RefMove  `json:"legal_moves"`
}

// RefPlane is one plane as lc0 dumps it: [mask_hex, value], bit sq of the mask set to value.
type RefPlane [2]json.RawMessage

// RefMove is one legal move of a reference record with lc0's policy for it.
type RefMove struct {
	UCI     string  `json:"uci"`
	Lc0     string  `json:"lc0_internal"`
	NNIndex int     `json:"nn_index"`
	Logit   float64 `json:"logit"`
	PExact  float64 `json:"p_exact"`
}

// ReadRefdump reads a reference dump, gzipped when path ends in .gz; any read or parse error fails the test.
func ReadRefdump(t testing.TB, path string) []RefRecord {
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
			t.Fatalf("%s: %v", path, err)
		}
		defer gz.Close()
		r = gz
	}
	var out []RefRecord
	sc := bufio.NewScanner(r)
	// A record with 1858 logits and the legal moves is tens of kilobytes.
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var rec RefRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// DensePlanes expands the record's planes to NumPlanes*64 values, [plane][rank][file] in row-major order:
// bit sq of a plane's mask sets [plane][sq/8][sq%8]. It fails unless there are exactly NumPlanes well-formed
// planes.
func (r RefRecord) DensePlanes() ([]float32, error) {
	if len(r.Planes) != NumPlanes {
		return nil, fmt.Errorf("testutil: %s: %d planes, want %d", r.Name, len(r.Planes), NumPlanes)
	}
	out := make([]float32, NumPlanes*64)
	for p, e := range r.Planes {
		var hexMask string
		var val float64
		if err := json.Unmarshal(e[0], &hexMask); err != nil {
			return nil, fmt.Errorf("testutil: %s: plane %d mask: %w", r.Name, p, err)
		}
		if err := json.Unmarshal(e[1], &val); err != nil {
			return nil, fmt.Errorf("testutil: %s: plane %d value: %w", r.Name, p, err)
		}
		mask, err := strconv.ParseUint(strings.TrimPrefix(hexMask, "0x"), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("testutil: %s: plane %d mask %q: %w", r.Name, p, hexMask, err)
		}
		for sq := range 64 {
			if mask>>sq&1 == 1 {
				out[p*64+(sq/8)*8+sq%8] = float32(val)
			}
		}
	}
	return out, nil
}

// DecodePlanes is DensePlanes failing the test on a malformed record.
func DecodePlanes(t testing.TB, rec RefRecord) []float32 {
	t.Helper()
	out, err := rec.DensePlanes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
