package npy

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

func readFile(t *testing.T, path string) ([]int, []float32) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shape, data, err := Read(f)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return shape, data
}

// writeBytes returns what Write produces for shape and data.
func writeBytes(t *testing.T, shape []int, data []float32) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, shape, data); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestHeaderLenFixed(t *testing.T) {
	for _, rowShape := range [][]int{{}, {3}, {112, 8, 8}, {1858}} {
		want, err := HeaderLen(rowShape)
		if err != nil {
			t.Fatal(err)
		}
		for _, rows := range []int{0, 9, 10, 1e12, 1e18, 9223372036854775807} {
			h, err := header(append([]int{rows}, rowShape...))
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(h)) != want {
				t.Errorf("rows %d of %v: header %d bytes, want %d", rows, rowShape, len(h), want)
			}
		}
	}
}

func TestAppenderMatchesWrite(t *testing.T) {
	tests := []struct {
		name     string
		rowShape []int
		chunks   []int // rows per Append call
		bufSize  int
	}{
		{"scalar rows", []int{}, []int{1, 1, 5}, 0},
		{"planes", []int{112, 8, 8}, []int{1, 3, 2}, 0},
		{"rows larger than buffer", []int{3000}, []int{1, 2}, 4096},
		{"no rows", []int{4, 4}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.npy")
			var opts []AppenderOption
			if tt.bufSize > 0 {
				opts = append(opts, WithBufferSize(tt.bufSize))
			}
			a, err := CreateAppender(path, tt.rowShape, opts...)
			if err != nil {
				t.Fatal(err)
			}
			rowSize := prod(tt.rowShape)
			total := 0
			for _, c := range tt.chunks {
				total += c
			}
			all := values(total * rowSize)
			off := 0
			for _, c := range tt.chunks {
				if err := a.Append(all[off : off+c*rowSize]); err != nil {
					t.Fatal(err)
				}
				off += c * rowSize
				if err := a.Sync(); err != nil {
					t.Fatal(err)
				}
				// After every Sync the file is a complete NPY.
				shape, data := readFile(t, path)
				if shape[0] != off/rowSize || !sameBits(data, all[:off]) {
					t.Fatalf("after sync at %d rows: shape %v, %d values", off/rowSize, shape, len(data))
				}
			}
			if a.Rows() != total {
				t.Errorf("Rows() = %d, want %d", a.Rows(), total)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := writeBytes(t, append([]int{total}, tt.rowShape...), all)
			if !bytes.Equal(got, want) {
				t.Errorf("appender file differs from Write output (%d vs %d bytes)", len(got), len(want))
			}
			if int64(len(got)) != a.Size() {
				t.Errorf("Size() = %d, file is %d bytes", a.Size(), len(got))
			}
		})
	}
}

// TestOpenAppenderResume simulates a crash after rows beyond the caller's
// commit reached the disk: reopening truncates them and the continued file
// equals an uninterrupted one.
func TestOpenAppenderResume(t *testing.T) {
	rowShape := []int{2, 3}
	all := values(10 * 6)
	path := filepath.Join(t.TempDir(), "a.npy")
	a, err := CreateAppender(path, rowShape)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Append(all[:5*6]); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(); err != nil { // the caller's commit: 5 rows
		t.Fatal(err)
	}
	if err := a.Append(all[5*6 : 8*6]); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil { // rows 5..7 reach the disk uncommitted
		t.Fatal(err)
	}
	// Append a torn half row too.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{1, 2, 3})
	f.Close()

	a, err = OpenAppender(path, rowShape, 5)
	if err != nil {
		t.Fatal(err)
	}
	shape, data := readFile(t, path)
	if !slices.Equal(shape, []int{5, 2, 3}) || !sameBits(data, all[:30]) {
		t.Fatalf("after reopen: shape %v", shape)
	}
	if err := a.Append(all[30:]); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := writeBytes(t, []int{10, 2, 3}, all); !bytes.Equal(got, want) {
		t.Error("resumed file differs from an uninterrupted one")
	}
}

func TestAppenderErrors(t *testing.T) {
	dir := t.TempDir()
	three := filepath.Join(dir, "three.npy")
	if err := os.WriteFile(three, writeBytes(t, []int{3, 4}, values(12)), 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.npy")
	if err := os.WriteFile(short, npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", make([]byte, 8)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"zero-size rows", func() error { _, err := CreateAppender(filepath.Join(dir, "z.npy"), []int{3, 0}); return err }, "has no values"},
		{"wrong row shape", func() error { _, err := OpenAppender(three, []int{5}, 1); return err }, "want rows of shape [5]"},
		{"too few rows on disk", func() error { _, err := OpenAppender(three, []int{4}, 4); return err }, "4 rows need"},
		{"other header length", func() error { _, err := OpenAppender(short, []int{2}, 1); return err }, "not written by an Appender"},
		{"missing file", func() error { _, err := OpenAppender(filepath.Join(dir, "none.npy"), []int{4}, 0); return err }, "no such file"},
		{"partial row", func() error {
			a, err := CreateAppender(filepath.Join(dir, "p.npy"), []int{4})
			if err != nil {
				return err
			}
			defer a.Close()
			return a.Append(make([]float32, 6))
		}, "not a whole number of rows"},
		{"append after close", func() error {
			a, err := CreateAppender(filepath.Join(dir, "c.npy"), []int{4})
			if err != nil {
				return err
			}
			a.Close()
			return a.Append(make([]float32, 4))
		}, "appender closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// A file that Write made is a valid Appender file too.
	a, err := OpenAppender(three, []int{4}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if shape, _ := readFile(t, three); !slices.Equal(shape, []int{2, 4}) {
		t.Errorf("shape %v after truncating to 2 rows", shape)
	}
}

// TestNumpyLoadsAppender checks numpy reads an Appender file while it is
// still open, right after a Sync.
func TestNumpyLoadsAppender(t *testing.T) {
	testutil.NumpyPython(t)
	path := filepath.Join(t.TempDir(), "a.npy")
	a, err := CreateAppender(path, []int{64, 8, 8})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	all := values(3 * 64 * 8 * 8)
	if err := a.Append(all); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	g := numpyLoad(t, path)[path]
	if !slices.Equal(g.Shape, []int{3, 64, 8, 8}) {
		t.Fatalf("numpy shape %v", g.Shape)
	}
	for _, i := range []int{0, 1, 100, len(all) - 1} {
		if v := numpyValue(g.Flat[i]); v != all[i] {
			t.Errorf("value %d: numpy %v, wrote %v", i, v, all[i])
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	path := filepath.Join(b.TempDir(), "a.npy")
	a, err := CreateAppender(path, []int{112, 8, 8})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	row := values(112 * 8 * 8)
	b.SetBytes(int64(len(row) * 4))
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Append(row); err != nil {
			b.Fatal(err)
		}
	}
}
