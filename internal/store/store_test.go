package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

func TestKeyFileName(t *testing.T) {
	tests := []struct{ key, want string }{
		{"policy", "policy.npy"},
		{"block3/conv2/relu_output", "block3.conv2.relu_output.npy"},
		{"/input_grad", ".input_grad.npy"},
		{"a b:c*é", "a_b_c__.npy"},
		{"x-1.y_2", "x-1.y_2.npy"},
	}
	for _, tt := range tests {
		if got := KeyFileName(tt.key); got != tt.want {
			t.Errorf("KeyFileName(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"escapes", appendString(nil, "a\"b\\c\n\t\x01é\xff"), `"a\"b\\c\n\t\u0001é\ufffd"`},
		{"float", appendFloat(nil, 0.1), "0.1"},
		{"small", appendFloat(nil, 1e-7), "1e-07"},
		{"big", appendFloat(nil, math.MaxFloat32), "3.4028235e+38"},
		{"negative zero", appendFloat(nil, float32(math.Copysign(0, -1))), "-0"},
		{"nan", appendFloat(nil, float32(math.NaN())), `"NaN"`},
		{"inf", appendFloat(nil, float32(math.Inf(1))), `"Infinity"`},
		{"-inf", appendFloat(nil, float32(math.Inf(-1))), `"-Infinity"`},
		{"scalar", appendNested(nil, nil, []float32{2}), "2"},
		{"nested", appendNested(nil, []int{2, 1, 3}, []float32{1, 2, 3, 4, 5, 6}), "[[[1,2,3]],[[4,5,6]]]"},
	}
	for _, tt := range tests {
		if string(tt.got) != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, tt.got, tt.want)
		}
		// Everything but the raw number cases must be valid JSON alone.
		if !json.Valid(tt.got) {
			t.Errorf("%s: %s is not valid JSON", tt.name, tt.got)
		}
	}
}

func TestWriterFormats(t *testing.T) {
	for _, format := range []Format{FormatNPY, FormatJSON} {
		t.Run(string(format), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			w, err := Open(dir, testOptions(format))
			if err != nil {
				t.Fatal(err)
			}
			checkOutput(t, dir, format, 0, false)
			if err := feed(w, 0, 30, 4); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			checkOutput(t, dir, format, 30, false)
			if err := feed(w, 30, 50, 4); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			checkOutput(t, dir, format, 50, true)
			if err := w.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := w.Add(meta(0, 0), results(0)); err == nil {
				t.Error("Add after Close succeeded")
			}
		})
	}
}

// TestNumpyLoadsOutput loads every file of both formats with numpy and the
// json module and compares shapes and values with the recipe.
func TestNumpyLoadsOutput(t *testing.T) {
	testutil.NumpyPython(t)
	const records = 40
	positions := positionsBefore(records)
	dirs := map[Format]string{}
	for _, format := range []Format{FormatNPY, FormatJSON} {
		dirs[format] = filepath.Join(t.TempDir(), string(format))
		w, err := Open(dirs[format], testOptions(format))
		if err != nil {
			t.Fatal(err)
		}
		if err := feed(w, 0, records, 7); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	script := `
import json, sys, os, numpy as np
npydir, jsondir = sys.argv[1], sys.argv[2]
out = {}
man = json.load(open(os.path.join(npydir, "manifest.json")))
for key, k in man["keys"].items():
    a = np.load(os.path.join(npydir, k["file"]))
    assert a.dtype == np.float32
    out[key] = {"shape": list(a.shape), "last": a.reshape(a.shape[0], -1)[-1].tolist(), "first": a.reshape(a.shape[0], -1)[0].tolist()}
rows = [json.loads(l) for l in open(os.path.join(jsondir, "results.jsonl"))]
for key in man["keys"]:
    arr = np.array([r["results"][key]["data"] for r in rows], dtype=np.float32)
    out["json:" + key] = {"shape": list(arr.shape), "last": arr.reshape(arr.shape[0], -1)[-1].tolist(),
        "nonfinite": int((~np.isfinite(arr)).sum()), "equal": bool(np.array_equal(arr, np.load(os.path.join(npydir, man["keys"][key]["file"])), equal_nan=True))}
for l in open(os.path.join(npydir, "positions.jsonl")):
    json.loads(l)
print(json.dumps(out))
`
	raw := runPython(t, script, dirs[FormatNPY], dirs[FormatJSON])
	var got map[string]struct {
		Shape       []int
		First, Last []float64
		Nonfinite   int
		Equal       bool
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	nonfinite := 0
	for k, tk := range testKeys {
		for _, prefix := range []string{"", "json:"} {
			g, ok := got[prefix+tk.key]
			if !ok {
				t.Fatalf("numpy did not load %s%s", prefix, tk.key)
			}
			if want := append([]int{positions}, tk.shape...); fmt.Sprint(g.Shape) != fmt.Sprint(want) {
				t.Errorf("%s%s: numpy shape %v, want %v", prefix, tk.key, g.Shape, want)
			}
			for i, v := range g.Last {
				if want := value(positions-1, k, i); float32(v) != want {
					t.Errorf("%s%s: last row value %d = %v, want %v", prefix, tk.key, i, v, want)
				}
			}
			for i, v := range g.First {
				if want := value(0, k, i); float32(v) != want {
					t.Errorf("%s%s: first row value %d = %v, want %v", prefix, tk.key, i, v, want)
				}
			}
		}
		if !got["json:"+tk.key].Equal {
			t.Errorf("%s: json data differs from the npy file", tk.key)
		}
		nonfinite += got["json:"+tk.key].Nonfinite
	}
	if want := nonfiniteBefore(positions); nonfinite != want {
		t.Errorf("numpy counts %d non-finite values in results.jsonl, want %d", nonfinite, want)
	}
}

func TestAddRefusesInconsistentResults(t *testing.T) {
	good := func() []Result { return results(0) }
	tests := []struct {
		name  string
		first []Result // nil: good()
		next  func() []Result
		want  string
	}{
		{"missing key", nil, func() []Result { return good()[:2] }, "2 results, want 3"},
		{"renamed key", nil, func() []Result { r := good(); r[1].Key = "wdl"; return r }, `result 1 is "wdl", want "policy"`},
		{"reordered", nil, func() []Result { r := good(); r[0], r[1] = r[1], r[0]; return r }, `result 0 is "policy"`},
		{"shape", nil, func() []Result { r := good(); r[1].Shape = []int{1, 5}; return r }, "has shape [1 5], want [5]"},
		{"short data", nil, func() []Result { r := good(); r[1].Data = r[1].Data[:4]; return r }, "has 4 values, shape [5] needs 5"},
		{"duplicate key", []Result{{Key: "a", Shape: nil, Data: []float32{1}}, {Key: "a", Shape: nil, Data: []float32{1}}}, nil, `result key "a" appears twice`},
		{"file collision", []Result{{Key: "a/b", Shape: nil, Data: []float32{1}}, {Key: "a.b", Shape: nil, Data: []float32{1}}}, nil, "both map to file a.b.npy"},
		{"case collision", []Result{{Key: "Policy", Shape: nil, Data: []float32{1}}, {Key: "policy", Shape: nil, Data: []float32{1}}}, nil, "both map to file"},
		{"empty key", []Result{{Key: "", Shape: nil, Data: []float32{1}}}, nil, "empty key"},
		{"zero dimension", []Result{{Key: "a", Shape: []int{0, 3}, Data: nil}}, nil, "every dimension must be positive"},
		{"first data short", []Result{{Key: "a", Shape: []int{3}, Data: []float32{1}}}, nil, "has 1 values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Open(t.TempDir(), testOptions(FormatNPY))
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			first := tt.first
			if first == nil {
				first = good()
			}
			err = w.Add(meta(0, 0), first)
			if tt.next != nil {
				if err != nil {
					t.Fatal(err)
				}
				err = w.Add(meta(0, 1), tt.next())
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Add error %v, want it to contain %q", err, tt.want)
			}
			// A refused position writes nothing and fixes nothing: a good one
			// is still accepted afterwards.
			if err := w.Add(meta(0, 0), good()); err != nil && tt.next == nil {
				t.Errorf("good Add after a refused first Add: %v", err)
			}
		})
	}
}

func TestOpenDirectoryStates(t *testing.T) {
	mk := func(t *testing.T, files ...string) string {
		dir := t.TempDir()
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	tests := []struct {
		name    string
		files   []string
		edit    func(*Options)
		want    string // "" for success
		sentry  error
		remains string // a file that must survive
	}{
		{"not empty", []string{"manifest.json"}, nil, "is not empty: use --resume to continue or --force to overwrite", ErrNotEmpty, "manifest.json"},
		{"force wipes our files", []string{"manifest.json", "policy.npy", "progress.json.tmp"}, func(o *Options) { o.Force = true }, "", nil, ""},
		{"force keeps foreign files", []string{"policy.npy", "notes.txt"}, func(o *Options) { o.Force = true }, `holds "notes.txt"`, ErrNotEmpty, "notes.txt"},
		{"resume without progress starts fresh", []string{"positions.jsonl", "a.npy"}, func(o *Options) { o.Resume = true }, "", nil, ""},
		{"resume foreign dir", []string{"data.csv"}, func(o *Options) { o.Resume = true }, "has no progress.json", ErrNotEmpty, "data.csv"},
		{"resume and force", nil, func(o *Options) { o.Resume, o.Force = true, true }, "exclude each other", nil, ""},
		{"unknown format", nil, func(o *Options) { o.Format = "csv" }, `unknown format "csv"`, nil, ""},
		{"extra collides", nil, func(o *Options) { o.Extra = map[string]any{"count": 1} }, `extra manifest field "count"`, nil, ""},
		{"unencodable option", nil, func(o *Options) { o.Lens.Options = map[string]any{"x": math.NaN()} }, "lens options", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := mk(t, tt.files...)
			opts := testOptions(FormatNPY)
			if tt.edit != nil {
				tt.edit(&opts)
			}
			w, err := Open(dir, opts)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				checkOutput(t, dir, FormatNPY, 0, true)
				return
			}
			if err == nil {
				w.Close()
				t.Fatalf("Open succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || tt.sentry != nil && !errors.Is(err, tt.sentry) {
				t.Fatalf("Open error %v, want %q (%v)", err, tt.want, tt.sentry)
			}
			if tt.remains != "" {
				if _, err := os.Stat(filepath.Join(dir, tt.remains)); err != nil {
					t.Errorf("%s was removed", tt.remains)
				}
			}
		})
	}
}

func TestResumeRefusesOtherSettings(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want string // "" when the resume must be accepted
	}{
		{"model", func(o *Options) { o.Model.SHA256 = "def456" }, "model sha256 is abc123 in the existing output, def456 now"},
		{"lens", func(o *Options) { o.Lens.Name = "gradient" }, `lens is "activation" in the existing output, "gradient" now`},
		{"option value", func(o *Options) { o.Lens.Options["batch"] = 16 }, `lens option "batch" is 8 in the existing output, 16 now`},
		{"option added", func(o *Options) { o.Lens.Options["target"] = "wdl" }, `lens option "target" is unset in the existing output, "wdl" now`},
		{"format", func(o *Options) { o.Format = FormatJSON }, "format is npy in the existing output, json now"},
		{"same option as float", func(o *Options) { o.Lens.Options["batch"] = 8.0 }, ""},
		{"other model path and tool", func(o *Options) { o.Model.Path = "elsewhere.onnx"; o.ToolVersion = "v2" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Open(dir, testOptions(FormatNPY))
			if err != nil {
				t.Fatal(err)
			}
			if err := feed(w, 0, 5, 3); err != nil {
				t.Fatal(err)
			}
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
			opts := testOptions(FormatNPY)
			opts.Resume = true
			tt.edit(&opts)
			w, err = Open(dir, opts)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, _, rec := w.Done(); rec != 5 {
					t.Errorf("resumed at record %d, want 5", rec)
				}
				w.Close()
				return
			}
			if err == nil {
				w.Close()
				t.Fatal("resume accepted")
			}
			if !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrMismatch) {
				t.Fatalf("error %v, want ErrMismatch containing %q", err, tt.want)
			}
		})
	}
}

// simulateCrash stops a Writer as a SIGKILL after its buffers reached the
// disk would: files keep uncommitted bytes, progress.json does not know them.
func simulateCrash(t *testing.T, w *Writer) {
	t.Helper()
	if err := w.closeFiles(); err != nil {
		t.Fatal(err)
	}
	// The kernel drops a dead process's lock but leaves its lock file.
	if err := w.lock.f.Close(); err != nil {
		t.Fatal(err)
	}
	w.closed = true
}

// TestResumeAfterCrash interrupts runs at chosen points (mid-record, after
// a commit, before the first commit, after Abort) and checks that resuming
// restores the committed prefix and ends byte-identical to a clean run.
func TestResumeAfterCrash(t *testing.T) {
	const records = 40
	for _, format := range []Format{FormatNPY, FormatJSON} {
		ref := filepath.Join(t.TempDir(), "ref")
		w, err := Open(ref, testOptions(format))
		if err != nil {
			t.Fatal(err)
		}
		if err := feed(w, 0, records, 5); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name      string
			upTo      int  // records fed before the crash
			extra     bool // also add the first position of the next record
			commitAt  int  // commit every n positions
			abort     bool
			committed int // records that must survive
		}{
			{"mid record", 17, true, 4, false, -1},
			{"right after commit", 12, false, 1, false, 12},
			{"before first commit", 2, true, 1000, false, 0},
			{"abort", 23, true, 6, true, -1},
		}
		for _, tt := range tests {
			t.Run(string(format)+"/"+tt.name, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "out")
				opts := testOptions(format)
				w, err := Open(dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				if err := feed(w, 0, tt.upTo, tt.commitAt); err != nil {
					t.Fatal(err)
				}
				if tt.committed >= 0 && tt.committed == tt.upTo {
					if err := w.Commit(); err != nil {
						t.Fatal(err)
					}
				}
				if tt.extra {
					if err := w.Add(meta(tt.upTo, 0), results(positionsBefore(tt.upTo))); err != nil {
						t.Fatal(err)
					}
				}
				if tt.abort {
					if err := w.Abort(); err != nil {
						t.Fatal(err)
					}
				} else {
					simulateCrash(t, w)
				}
				opts.Resume = true
				w, err = Open(dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				pos, nerr, rec := w.Done()
				if tt.committed >= 0 && rec != tt.committed || rec > tt.upTo ||
					pos != positionsBefore(rec) || nerr != errorsBefore(rec) {
					t.Fatalf("Done() = %d, %d, %d after feeding %d records", pos, nerr, rec, tt.upTo)
				}
				checkOutput(t, dir, format, rec, false)
				if err := feed(w, rec, records, 5); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				compareDirs(t, ref, dir)
			})
		}
	}
}

func TestResumeRefusesDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(dir string) error
		want   string
	}{
		{"short positions", func(dir string) error {
			return os.Truncate(filepath.Join(dir, PositionsFile), 10)
		}, "shorter than the"},
		{"short npy", func(dir string) error {
			return os.Truncate(filepath.Join(dir, "policy.npy"), 200)
		}, "rows need"},
		{"missing npy", func(dir string) error {
			return os.Remove(filepath.Join(dir, "policy.npy"))
		}, "no such file"},
		{"bad progress", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, ProgressFile), []byte("{"), 0o644)
		}, "parse progress.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Open(dir, testOptions(FormatNPY))
			if err != nil {
				t.Fatal(err)
			}
			if err := feed(w, 0, 10, 3); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := tt.damage(dir); err != nil {
				t.Fatal(err)
			}
			opts := testOptions(FormatNPY)
			opts.Resume = true
			w, err = Open(dir, opts)
			if err == nil {
				w.Close()
				t.Fatal("resume of a damaged output succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestSetRecordsRepeatedKeepsMark: a record longer than a commit interval calls SetRecords with the same n
// at several commits; the positions added in between belong to the open record and must not count as
// committed, or a resume would repeat them.
func TestSetRecordsRepeatedKeepsMark(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, testOptions(FormatNPY))
	if err != nil {
		t.Fatal(err)
	}
	w.SetRecords(0)
	for j := 0; j < 3; j++ { // record 0's first positions, committed mid-record
		if err := w.Add(meta(0, j), results(j)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.SetRecords(0) // the next batch starts inside record 0 still
	if err := w.Add(meta(0, 3), results(3)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	// Crash here (no Close), then resume: nothing of the open record counts.
	simulateCrash(t, w)
	opts := testOptions(FormatNPY)
	opts.Resume = true
	w2, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if p, e, r := w2.Done(); p != 0 || e != 0 || r != 0 {
		t.Fatalf("after resume Done() = %d positions, %d errors, %d records; want 0, 0, 0", p, e, r)
	}
}

// TestSetCutInsideARecord: a cut inside a record keeps the positions added before it across a crash and
// tells the resume how many items of the open record to skip; finishing from there gives the same files as
// a run that never stopped. A later SetRecords clears the open count.
func TestSetCutInsideARecord(t *testing.T) {
	for _, format := range []Format{FormatNPY, FormatJSON} {
		t.Run(string(format), func(t *testing.T) {
			dir := t.TempDir()
			w, err := Open(dir, testOptions(format))
			if err != nil {
				t.Fatal(err)
			}
			if err := feed(w, 0, 5, 1000); err != nil {
				t.Fatal(err)
			}
			p := positionsBefore(5) // record 5 has 3 positions: add 2, cut, crash
			for j := range 2 {
				if err := w.Add(meta(5, j), results(p+j)); err != nil {
					t.Fatal(err)
				}
			}
			w.SetCut(5, 2)
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			simulateCrash(t, w)
			opts := testOptions(format)
			opts.Resume = true
			w2, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			if pos, e, r := w2.Done(); pos != p+2 || e != errorsBefore(5) || r != 5 || w2.DoneItems() != 2 {
				t.Fatalf("after resume Done() = %d, %d, %d and DoneItems %d; want %d, %d, 5 and 2", pos, e, r, w2.DoneItems(), p+2, errorsBefore(5))
			}
			if err := w2.Add(meta(5, 2), results(p+2)); err != nil {
				t.Fatal(err)
			}
			w2.SetRecords(6)
			if w2.current().openItems != 0 {
				t.Fatal("SetRecords kept the open record's item count")
			}
			if err := feed(w2, 6, 20, 1000); err != nil {
				t.Fatal(err)
			}
			if err := w2.Close(); err != nil {
				t.Fatal(err)
			}
			checkOutput(t, dir, format, 20, true)
		})
	}
}
