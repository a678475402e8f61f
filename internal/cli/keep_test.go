package cli

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestBatchKeep runs batch with and without --keep: the kept run writes only the named result files, with
// the values the full run writes, and records --keep in its manifest so a resume without it differs.
func TestBatchKeep(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	pgn := smallPGN(t, dir, "games.pgn")
	full, kept := filepath.Join(dir, "full"), filepath.Join(dir, "kept")
	for _, c := range []struct {
		out  string
		keep []string
	}{{full, nil}, {kept, []string{"--keep", "saliency"}}} {
		args := append([]string{"batch", pgn, "-o", c.out, "--lens", "saliency", "--quiet"}, c.keep...)
		if code, _, stderr := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	npys := func(d string) []string {
		m, _ := filepath.Glob(filepath.Join(d, "*.npy"))
		for i := range m {
			m[i] = filepath.Base(m[i])
		}
		slices.Sort(m)
		return m
	}
	if got := npys(full); !slices.Equal(got, []string{"input_grad.npy", "saliency.npy"}) {
		t.Fatalf("full run wrote %v", got)
	}
	if got := npys(kept); !slices.Equal(got, []string{"saliency.npy"}) {
		t.Fatalf("--keep saliency wrote %v", got)
	}
	read := func(p string) ([]int, []float32) {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		shape, data, err := npy.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		return shape, data
	}
	s1, d1 := read(filepath.Join(full, "saliency.npy"))
	s2, d2 := read(filepath.Join(kept, "saliency.npy"))
	if !slices.Equal(s1, s2) || !slices.Equal(d1, d2) {
		t.Errorf("kept saliency %v differs from the full run's %v", s2, s1)
	}
	// The kept run's manifest records --keep: resuming it without --keep is refused.
	code, _, stderr := runCLI(t, env, "batch", pgn, "-o", kept, "--lens", "saliency", "--quiet", "--resume")
	if code != ExitUsage {
		t.Errorf("resume without --keep: exit %d: %s", code, stderr)
	}
}
