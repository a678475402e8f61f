package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// writePart writes the records r of [0, records) with r%n == i (all of them
// for n == 1), as a shard of the synthetic input, and closes the output.
func writePart(t testing.TB, dir string, opts Options, records, i, n int) {
	t.Helper()
	writePartCommits(t, dir, opts, records, i, n, 7)
}

// writePartCommits is writePart committing every commitEvery records.
func writePartCommits(t testing.TB, dir string, opts Options, records, i, n, commitEvery int) {
	t.Helper()
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := 0
	for r := range records {
		np := recordPositions(r)
		if r%n == i {
			if np == 0 {
				if err := w.AddError(errRecord(r)); err != nil {
					t.Fatal(err)
				}
			}
			for j := range np {
				if err := w.Add(meta(r, j), results(p+j)); err != nil {
					t.Fatal(err)
				}
			}
		}
		p += np
		w.SetRecords(r + 1)
		if r%commitEvery == 0 {
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMergeEqualsWholeRun writes the synthetic input whole and in n parts,
// merges the parts and compares every file byte for byte (manifest and
// progress included), in both formats, for part counts that leave some parts
// without positions.
func TestMergeEqualsWholeRun(t *testing.T) {
	const records = 60
	for _, format := range []Format{FormatNPY, FormatJSON} {
		for _, n := range []int{1, 2, 5, 64} {
			t.Run(fmt.Sprintf("%s/%d", format, n), func(t *testing.T) {
				dir := t.TempDir()
				opts := testOptions(format)
				whole := filepath.Join(dir, "whole")
				writePart(t, whole, opts, records, 0, 1)
				checkOutput(t, whole, format, records, true)
				var parts []string
				for i := n - 1; i >= 0; i-- { // argument order does not matter
					p := filepath.Join(dir, fmt.Sprintf("part%d", i))
					writePart(t, p, opts, records, i, n)
					parts = append(parts, p)
				}
				merged := filepath.Join(dir, "merged")
				if err := Merge(merged, parts, opts); err != nil {
					t.Fatal(err)
				}
				compareDirs(t, whole, merged)
			})
		}
	}
}

func TestMergeRefuses(t *testing.T) {
	const records = 30
	dir := t.TempDir()
	opts := testOptions(FormatNPY)
	part := func(name string, o Options, i, n int) string {
		p := filepath.Join(dir, name)
		writePart(t, p, o, records, i, n)
		return p
	}
	a, b := part("a", opts, 0, 2), part("b", opts, 1, 2)
	otherModel := opts
	otherModel.Model.SHA256 = "def456"
	otherLens := opts
	otherLens.Lens = LensInfo{Name: "activation", Options: map[string]any{"pattern": "x", "batch": 8}}
	jsonFormat := opts
	jsonFormat.Format = FormatJSON
	incomplete := filepath.Join(dir, "incomplete")
	w, err := Open(incomplete, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	writePart(t, short, opts, records-5, 1, 2)
	damaged := part("damaged", opts, 1, 2)
	if err := os.Truncate(filepath.Join(damaged, KeyFileName(testKeys[1].key)), 200); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		dst    string
		parts  []string
		opts   Options
		want   string
		sentry error
	}{
		{"model", "", []string{a, part("m", otherModel, 1, 2)}, opts, "model sha256 def456", ErrMismatch},
		{"lens options", "", []string{a, part("l", otherLens, 1, 2)}, opts, `lens options {"batch":8,"pattern":"x"}`, ErrMismatch},
		{"format", "", []string{a, part("j", jsonFormat, 1, 2)}, opts, "format json", ErrMismatch},
		{"overlap", "", []string{a, b, part("a2", opts, 0, 2)}, opts, "record 0 is in both", ErrMismatch},
		{"incomplete", "", []string{a, incomplete}, opts, "did not finish", ErrMismatch},
		{"other record count", "", []string{a, short}, opts, "input records", nil},
		{"output is an input", a, []string{a, b}, opts, "is also an input", ErrNotEmpty},
		{"damaged npy", "", []string{a, damaged}, opts, "bytes, its shape needs", nil},
		{"resume", "", []string{a, b}, Options{Resume: true}, "cannot be resumed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := tt.dst
			if dst == "" {
				dst = filepath.Join(t.TempDir(), "merged")
			}
			err := Merge(dst, tt.parts, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if tt.sentry != nil && !errors.Is(err, tt.sentry) {
				t.Errorf("%v does not wrap %v", err, tt.sentry)
			}
		})
	}
}

// TestReadManifest reads back what a Writer wrote, Extra fields (SetExtra's
// included) as their JSON.
func TestReadManifest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	opts := testOptions(FormatNPY)
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := feed(w, 0, 20, 5); err != nil {
		t.Fatal(err)
	}
	if err := w.SetExtra("input", map[string]any{"sha256": "00ff", "size": 12}); err != nil {
		t.Fatal(err)
	}
	if err := w.SetExtra("count", 1); err == nil {
		t.Error("SetExtra accepted a manifest field name")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := opts.Extra["input"].([]string); !ok {
		t.Error("SetExtra changed the caller's Extra map")
	}
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var keys []ManifestKey
	for _, tk := range testKeys {
		keys = append(keys, ManifestKey{Key: tk.key, File: KeyFileName(tk.key), Shape: tk.shape})
	}
	want := &Manifest{
		ToolVersion: "test", Model: opts.Model,
		Lens:    LensInfo{Name: "activation", Options: map[string]any{"pattern": "block\\d+/conv1", "batch": 8.0}},
		Storage: FormatNPY, Count: positionsBefore(20), Errors: errorsBefore(20), Records: 20,
		Nonfinite: nonfiniteBefore(positionsBefore(20)), Keys: keys, Complete: true,
	}
	extra := m.Extra
	m.Extra = nil
	if !reflect.DeepEqual(m, want) {
		t.Errorf("manifest\n%+v\nwant\n%+v", m, want)
	}
	var input struct {
		SHA256 string
		Size   int
	}
	if err := json.Unmarshal(extra["input"], &input); err != nil || input.SHA256 != "00ff" || input.Size != 12 || len(extra) != 2 {
		t.Errorf("extra %s (%v)", extra, err)
	}
}

func TestRowRecord(t *testing.T) {
	tests := []struct {
		row  string
		want int
		ok   bool
	}{
		{`{"source":"a","record":12,"game":3}`, 12, true},
		{`{"source":"x\"record\":7","record":3,"game":3}`, 3, true},
		{`{"game":1,"record":5}`, 5, true},
		{`{ "record" : 9 }`, 9, true},
		{`{"source":"a","game":3}`, 0, false},
		{`{"record":-1}`, 0, false},
		{`{"record":"1"}`, 0, false},
		{`not json`, 0, false},
	}
	for _, tt := range tests {
		got, err := rowRecord([]byte(tt.row))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("rowRecord(%s) = %d, %v", tt.row, got, err)
		}
	}
}

// FuzzRowRecord checks that the record of any row the Writer writes is read
// back, whatever its source name.
func FuzzRowRecord(f *testing.F) {
	f.Add("games.pgn", 12, "8/8/8/8/8/8/8/K1k5 w - - 0 1")
	f.Add(`x","record":5,"`, 0, `"record":3`)
	f.Fuzz(func(t *testing.T, source string, record int, fen string) {
		if record < 0 {
			record = -(record + 1)
		}
		row := appendMeta(nil, PositionMeta{Source: source, Record: record, Game: -1, FEN: fen})
		got, err := rowRecord(row)
		if err != nil || got != record {
			t.Fatalf("rowRecord(%s) = %d, %v, want %d", row, got, err, record)
		}
		row = appendError(nil, ErrorRecord{Source: source, Record: record, Reason: fen})
		if got, err := rowRecord(row); err != nil || got != record {
			t.Fatalf("rowRecord(%s) = %d, %v, want %d", row, got, err, record)
		}
	})
}

const (
	mergeDstEnv   = "LCZEROLENS_STORE_MERGE_DST"
	mergePartsEnv = "LCZEROLENS_STORE_MERGE_PARTS"
	mergeRSSEnv   = "LCZEROLENS_STORE_MERGE_RSS"
)

// TestMergeChild is the process TestMergeMemoryBounded measures: it merges
// the parts named by the environment and records its peak RSS.
func TestMergeChild(t *testing.T) {
	dst := os.Getenv(mergeDstEnv)
	if dst == "" {
		t.Skip("helper process for TestMergeMemoryBounded")
	}
	if err := Merge(dst, filepath.SplitList(os.Getenv(mergePartsEnv)), testOptions(FormatNPY)); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if err := os.WriteFile(os.Getenv(mergeRSSEnv), []byte(strings.TrimSpace(strings.TrimSuffix(v, "kB"))), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestMergeMemoryBounded merges 4 parts of 1x and 10x the records in a
// child process and compares peak RSS: merge must stream.
func TestMergeMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in -short mode")
	}
	peak := func(records int) (kib int64, dataBytes int64) {
		dir := t.TempDir()
		var parts []string
		for i := range 4 {
			p := filepath.Join(dir, fmt.Sprintf("part%d", i))
			writePartCommits(t, p, testOptions(FormatNPY), records, i, 4, records)
			parts = append(parts, p)
		}
		rss := filepath.Join(dir, "rss")
		dst := filepath.Join(dir, "merged")
		cmd := exec.Command(os.Args[0], "-test.run=^TestMergeChild$")
		cmd.Env = append(os.Environ(), mergeDstEnv+"="+dst, mergePartsEnv+"="+strings.Join(parts, string(os.PathListSeparator)), mergeRSSEnv+"="+rss)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("merge child: %v\n%s", err, out)
		}
		raw, err := os.ReadFile(rss)
		if err != nil {
			t.Skipf("skipping: no VmHWM reading (%v)", err)
		}
		if kib, err = strconv.ParseInt(string(raw), 10, 64); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(dst)
		for _, e := range entries {
			if fi, err := e.Info(); err == nil {
				dataBytes += fi.Size()
			}
		}
		return kib, dataBytes
	}
	small, smallBytes := peak(6000)
	large, largeBytes := peak(60000)
	t.Logf("peak RSS merging %d bytes: %d KiB; %d bytes: %d KiB", smallBytes, small, largeBytes, large)
	if large > small+small/4+8*1024 {
		t.Errorf("peak memory grows with the size of the parts: %d KiB for %d bytes, %d KiB for %d bytes", small, smallBytes, large, largeBytes)
	}
}
