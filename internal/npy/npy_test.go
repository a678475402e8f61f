package npy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// values returns n deterministic float32s covering signs, fractions,
// subnormals and the non-finite values, so round trips check every bit.
func values(n int) []float32 {
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, math.MaxFloat32}
	out := make([]float32, n)
	for i := range out {
		if i%17 == 16 {
			out[i] = special[(i/17)%len(special)]
			continue
		}
		out[i] = float32(i)*0.37 - float32(n)/3
	}
	return out
}

// sameBits compares float32 slices bit for bit, so NaN equals NaN and -0
// differs from 0.
func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func TestWriteReadRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		shape []int
	}{
		{"scalar", []int{}},
		{"empty", []int{0}},
		{"vector", []int{5}},
		{"matrix", []int{2, 3}},
		{"ones", []int{1, 1, 1}},
		{"zero middle", []int{3, 0, 2}},
		{"planes", []int{2, 112, 8, 8}},
		{"larger than write buffer", []int{3, 5000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := values(prod(tt.shape))
			var buf bytes.Buffer
			if err := Write(&buf, tt.shape, data); err != nil {
				t.Fatal(err)
			}
			if buf.Len()-len(data)*4 != 128 {
				t.Errorf("header is %d bytes, want 128 (64-byte aligned, numpy's size)", buf.Len()-len(data)*4)
			}
			shape, got, err := Read(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(shape, tt.shape) {
				t.Errorf("shape %v, want %v", shape, tt.shape)
			}
			if !sameBits(got, data) {
				t.Errorf("data differs after round trip")
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name  string
		shape []int
		n     int
		want  string
	}{
		{"too few values", []int{2, 3}, 5, "holds 6 values, got 5"},
		{"too many values", []int{2}, 3, "holds 2 values, got 3"},
		{"negative dimension", []int{2, -1}, 0, "negative dimension"},
		{"overflow", []int{1 << 40, 1 << 40}, 0, "too many elements"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, tt.shape, make([]float32, tt.n))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Write error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// The fixtures were written by numpy (testdata/make_fixtures.py); the
// expected values restate the script's formulas.
func TestReadNumpyFixtures(t *testing.T) {
	a23 := []float32{-1, -0.5, 0, 0.5, 1, 1.5}
	v2 := make([]float32, 12)
	for i := range v2 {
		v2[i] = float32(i) / 4
	}
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.Copysign(0, -1)), 1e-45, 3.4028235e38}
	tests := []struct {
		file    string
		shape   []int
		data    []float32
		wantErr string
		// same: Write of (shape, data) must reproduce the file byte for byte.
		same bool
	}{
		{file: "numpy_v1_2x3.npy", shape: []int{2, 3}, data: a23, same: true},
		{file: "numpy_v2_3x2x2.npy", shape: []int{3, 2, 2}, data: v2},
		{file: "numpy_scalar.npy", shape: []int{}, data: []float32{3.5}, same: true},
		{file: "numpy_empty_0x4.npy", shape: []int{0, 4}, data: []float32{}, same: true},
		{file: "numpy_special.npy", shape: []int{6}, data: special, same: true},
		{file: "numpy_f8.npy", wantErr: `dtype "<f8" not supported`},
		{file: "numpy_be_f4.npy", wantErr: `dtype ">f4" not supported`},
		{file: "numpy_i4.npy", wantErr: `dtype "<i4" not supported`},
		{file: "numpy_fortran.npy", wantErr: "fortran_order arrays not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			shape, data, err := Read(bytes.NewReader(raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrFormat) {
					t.Fatalf("Read error %v, want ErrFormat containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(shape, tt.shape) || !sameBits(data, tt.data) {
				t.Errorf("got %v %v, want %v %v", shape, data, tt.shape, tt.data)
			}
			if tt.same {
				var buf bytes.Buffer
				if err := Write(&buf, tt.shape, tt.data); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf.Bytes(), raw) {
					t.Errorf("Write output differs from numpy.save:\n got %q\nwant %q", buf.Bytes(), raw)
				}
			}
		})
	}
}

// npyFile builds an NPY v1 file from a header dictionary and raw data.
func npyFile(dict string, data []byte) []byte {
	h := []byte(dict + "\n")
	out := append([]byte(magic), 1, 0, byte(len(h)), byte(len(h)>>8))
	return append(append(out, h...), data...)
}

func TestReadErrors(t *testing.T) {
	good := "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
	eight := make([]byte, 8)
	v2huge := append([]byte(magic), 2, 0, 0xff, 0xff, 0xff, 0x7f)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "truncated file"},
		{"not npy", []byte("PK\x03\x04 zip file here"), "not an npy file"},
		{"version 4", append([]byte(magic), 4, 0, 0, 0), "format version 4.0"},
		{"minor version", append([]byte(magic), 1, 1, 0, 0), "format version 1.1"},
		{"truncated header", append([]byte(magic), 1, 0, 100, 0, '{'), "truncated file"},
		{"huge v2 header", v2huge, "exceeds"},
		{"truncated data", npyFile(good, eight[:7]), "needs 2 values, file ends after 1"},
		{"trailing data", npyFile(good, make([]byte, 9)), "bytes after the 2 values"},
		{"unknown key", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", eight), `unexpected key "x"`},
		{"missing shape", npyFile("{'descr': '<f4', 'fortran_order': False}", eight), "lacks descr, fortran_order or shape"},
		{"negative dim", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", eight), "expected a non-negative integer"},
		{"huge shape", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", eight), "too many elements"},
		{"huge truncated", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }", eight), "file ends after 2"},
		{"bad bool", npyFile("{'descr': '<f4', 'fortran_order': false, 'shape': (2,), }", eight), "expected True or False"},
		{"garbage after dict", npyFile(good+" x", eight), "unexpected text"},
		{"not a dict", npyFile("[1, 2]", eight), "expected '{'"},
		{"escaped string", npyFile(`{'descr': '<f\4', 'fortran_order': False, 'shape': (2,), }`, eight), "quoted dtype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Read(bytes.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Read error %v, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
		})
	}
}

func TestReadAcceptsVariants(t *testing.T) {
	eight := make([]byte, 8)
	tests := []struct {
		name  string
		dict  string
		shape []int
	}{
		{"key order and double quotes", `{"shape": (1, 2), "fortran_order": False, "descr": "<f4"}`, []int{1, 2}},
		{"python 2 long", "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }", []int{2}},
		{"no trailing comma", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shape, _, err := Read(bytes.NewReader(npyFile(tt.dict, eight)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(shape, tt.shape) {
				t.Errorf("shape %v, want %v", shape, tt.shape)
			}
		})
	}
}

// numpyLoad loads each file with numpy.load and returns its shape and its
// values flattened (NaN and infinities as strings, since JSON has none).
func numpyLoad(t *testing.T, files ...string) map[string]struct {
	Shape []int
	Flat  []any
} {
	t.Helper()
	py := testutil.NumpyPython(t)
	script := `
import json, sys, numpy as np
out = {}
for p in sys.argv[1:]:
    a = np.load(p)
    assert a.dtype == np.dtype("<f4"), a.dtype
    out[p] = {"Shape": list(a.shape), "Flat": [v if np.isfinite(v) else str(v) for v in a.ravel().tolist()]}
print(json.dumps(out))
`
	cmd := exec.Command(py, append([]string{"-c", script}, files...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("numpy.load failed: %v\n%s", err, stderr.String())
	}
	var got map[string]struct {
		Shape []int
		Flat  []any
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// numpyValue maps a value as numpyLoad reports it to a float32.
func numpyValue(v any) float32 {
	switch v := v.(type) {
	case float64:
		return float32(v)
	case string:
		switch v {
		case "nan":
			return float32(math.NaN())
		case "inf":
			return float32(math.Inf(1))
		case "-inf":
			return float32(math.Inf(-1))
		}
	}
	panic(fmt.Sprintf("unexpected value %v from numpy", v))
}

func TestNumpyLoadsWrite(t *testing.T) {
	testutil.NumpyPython(t)
	dir := t.TempDir()
	shapes := [][]int{{}, {0}, {7}, {2, 3}, {2, 112, 8, 8}}
	var files []string
	for i, shape := range shapes {
		var buf bytes.Buffer
		if err := Write(&buf, shape, values(prod(shape))); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("w%d.npy", i))
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	got := numpyLoad(t, files...)
	for i, shape := range shapes {
		g := got[files[i]]
		if !slices.Equal(g.Shape, shape) {
			t.Errorf("%v: numpy shape %v", shape, g.Shape)
		}
		want := values(prod(shape))
		flat := make([]float32, len(g.Flat))
		for j, v := range g.Flat {
			flat[j] = numpyValue(v)
		}
		// The JSON trip loses the sign of zero, so compare by value with NaN
		// matching NaN.
		if !slices.EqualFunc(flat, want, func(a, b float32) bool { return a == b || a != a && b != b }) {
			t.Errorf("%v: numpy values differ", shape)
		}
	}
}

// TestReadRowAt reads single rows of a written array back without the others, and refuses a row past the
// file's end.
func TestReadRowAt(t *testing.T) {
	data := make([]float32, 5*3)
	for i := range data {
		data[i] = float32(i)*0.5 - 3
	}
	var buf bytes.Buffer
	if err := Write(&buf, []int{5, 3}, data); err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(buf.Bytes())
	shape, off, err := ReadHeader(bytes.NewReader(buf.Bytes()))
	if err != nil || len(shape) != 2 {
		t.Fatal(shape, err)
	}
	for _, i := range []int{4, 0, 2} {
		row, err := ReadRowAt(r, off, i, 3)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range row {
			if v != data[i*3+k] {
				t.Fatalf("row %d: %v, want %v", i, row, data[i*3:i*3+3])
			}
		}
	}
	if _, err := ReadRowAt(r, off, 5, 3); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("row 5 of 5: %v, want an unexpected EOF", err)
	}
}
