// Package testutil holds what the project's tests share: the module root, the reference data in ../shared
// beside the checkout, the ONNX Runtime library, and lc0's reference dumps. It is for tests only: nothing
// outside _test.go files imports it, and it imports nothing from the project, so any package's tests may use it.
package testutil

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// NumPlanes is how many 8x8 input planes an lc0 reference record holds.
const NumPlanes = 112

// FindRoot returns the module root, the nearest directory above the working directory that holds go.mod. It
// is for TestMain, which has no testing.TB; tests call Root.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
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

// Shared returns ../shared/rel... beside the checkout and skips the test when that path is absent: the
// reference data is not part of the repository and is present only in CI and the dev sandbox.
func Shared(t testing.TB, rel ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Root(t), "..", "shared"}, rel...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("skipping: shared test data %s absent (../shared is present in CI and the dev sandbox)", p)
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

// ORTLib returns the ONNX Runtime shared library in third_party and skips the test when it is absent.
func ORTLib(t testing.TB) string {
	t.Helper()
	p, err := FindORTLib()
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	return p
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
