package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func content(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestWrite(t *testing.T) {
	failure := errors.New("disk full")
	tests := []struct {
		name     string
		existing bool
		replace  bool
		write    func(io.Writer) error
		want     string // content afterwards
		wantErr  error  // nil for success
	}{
		{"new file", false, false, writeString("new"), "new", nil},
		{"new file with replace", false, true, writeString("new"), "new", nil},
		{"existing refused", true, false, writeString("new"), "old", ErrExists},
		{"existing replaced", true, true, writeString("new"), "new", nil},
		{"failed write leaves the old file", true, true, failAfter("partial", failure), "old", failure},
		{"failed write creates nothing", false, false, failAfter("partial", failure), "", failure},
		// More than the buffer: part of the content reached the temporary file before the failure.
		{"failed large write", true, true, failAfter(strings.Repeat("x", 1<<20), failure), "old", failure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.json")
			if tt.existing {
				if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := Write(path, tt.replace, tt.write)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Write error %v, want %v", err, tt.wantErr)
			}
			if tt.want == "" {
				if names := entries(t, dir); len(names) != 0 {
					t.Fatalf("directory holds %v, want nothing", names)
				}
				return
			}
			if got := content(t, path); got != tt.want {
				t.Errorf("content %q, want %q", got, tt.want)
			}
			if names := entries(t, dir); len(names) != 1 {
				t.Errorf("directory holds %v, want only out.json (no temporary file left)", names)
			}
		})
	}
}

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

// failAfter writes s, then fails: a disk that fills up mid-file.
func failAfter(s string, err error) func(io.Writer) error {
	return func(w io.Writer) error {
		if _, werr := io.WriteString(w, s); werr != nil {
			return werr
		}
		return err
	}
}

// TestWriteNoClobberRace: of many writers racing to create one file without replace, exactly one wins and
// the file holds its complete content.
func TestWriteNoClobberRace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = WriteFile(path, []byte(strings.Repeat(string(rune('a'+i)), 4096)), false)
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("writers %d and %d both created the file", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, ErrExists):
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no writer created the file")
	}
	if got := content(t, path); got != strings.Repeat(string(rune('a'+won)), 4096) {
		t.Errorf("the file does not hold the winner's content")
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only the file", names)
	}
}

func TestIsTemp(t *testing.T) {
	dir := t.TempDir()
	f, err := createTemp(dir, "manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	name := filepath.Base(f.Name())
	if !IsTemp(name, "manifest.json") || IsTemp(name, "progress.json") || IsTemp("manifest.json", "manifest.json") {
		t.Errorf("IsTemp(%q) misjudged", name)
	}
	if g, err := createTemp(dir, "manifest.json"); err != nil || g.Name() == f.Name() {
		t.Errorf("second temporary file %v (%v): want a distinct name", g, err)
	} else {
		g.Close()
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x")
	if err := Check(path, false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(path, false); !errors.Is(err, ErrExists) {
		t.Errorf("Check of an existing file: %v", err)
	}
	if err := Check(path, true); err != nil {
		t.Errorf("Check with replace: %v", err)
	}
}
