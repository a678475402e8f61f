package testutil

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// record builds a reference line whose plane p has mask masks[p] (zero when absent) and value p+1.
func record(name string, n int, masks map[int]string) string {
	planes := make([][2]any, n)
	for p := range planes {
		m, ok := masks[p]
		if !ok {
			m = "0x0000000000000000"
		}
		planes[p] = [2]any{m, p + 1}
	}
	b, _ := json.Marshal(map[string]any{"name": name, "planes": planes, "q": 0.25, "d": 0, "m": 7.5,
		"legal_moves": []map[string]any{{"uci": "e2e4", "lc0_internal": "e2e4", "nn_index": 322, "logit": 0.5, "p_exact": 0.1}}})
	return string(b)
}

func TestDensePlanes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		masks map[int]string
		set   map[int]float32 // index into the dense planes -> value; every other value is 0
		err   string
	}{
		{"a1 and h8", NumPlanes, map[int]string{0: "0x8000000000000001"}, map[int]float32{0: 1, 63: 1}, ""},
		{"c2 is rank 1 file 2", NumPlanes, map[int]string{3: "0x0000000000000400"}, map[int]float32{3*64 + 1*8 + 2: 4}, ""},
		{"last plane full", NumPlanes, map[int]string{111: "0xffffffffffffffff"}, nil, ""},
		{"too few planes", 104, nil, nil, "104 planes"},
		{"bad mask", NumPlanes, map[int]string{5: "0xzz"}, nil, "plane 5 mask"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec RefRecord
			if err := json.Unmarshal([]byte(record(tc.name, tc.n, tc.masks)), &rec); err != nil {
				t.Fatal(err)
			}
			got, err := rec.DensePlanes()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != NumPlanes*64 {
				t.Fatalf("%d values", len(got))
			}
			for i, v := range got {
				want := tc.set[i]
				if tc.name == "last plane full" && i >= 111*64 {
					want = 112
				}
				if v != want {
					t.Fatalf("value %d (plane %d square %d) = %g, want %g", i, i/64, i%64, v, want)
				}
			}
		})
	}
}

func TestReadRefdump(t *testing.T) {
	lines := record("one", NumPlanes, nil) + "\n" + record("two", NumPlanes, map[int]string{0: "0x1"}) + "\n"
	dir := t.TempDir()
	plain := filepath.Join(dir, "x.refdump.jsonl")
	if err := os.WriteFile(plain, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	gzPath := filepath.Join(dir, "x.refdump.jsonl.gz")
	f, err := os.Create(gzPath)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	fmt.Fprint(zw, lines)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{plain, gzPath} {
		recs := ReadRefdump(t, path)
		if len(recs) != 2 || recs[0].Name != "one" || recs[1].Name != "two" {
			t.Fatalf("%s: %+v", path, recs)
		}
		r := recs[1]
		if r.Q != 0.25 || r.D != 0 || r.M == nil || *r.M != 7.5 || len(r.LegalMoves) != 1 || r.LegalMoves[0].NNIndex != 322 ||
			r.LegalMoves[0].Lc0 != "e2e4" || r.LegalMoves[0].Logit != 0.5 || r.LegalMoves[0].PExact != 0.1 {
			t.Errorf("%s: fields %+v", path, r)
		}
		if p := DecodePlanes(t, r); p[0] != 1 {
			t.Errorf("%s: a1 of plane 0 = %g, want 1", path, p[0])
		}
	}
}

// recorder is a testing.TB that records how a helper ended the test instead of ending it; Skipf and Fatalf
// stop the calling goroutine as the real ones do, so code after them must not run.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder on its own goroutine, so that Skipf and Fatalf can stop it.
func run(t *testing.T, f func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// TestMissingStrictInCI checks that an absent dependency skips a developer's test but fails it under CI=true,
// through Shared, ORTLib's Missing and Missing itself, and that a present path neither skips nor fails.
func TestMissingStrictInCI(t *testing.T) {
	absent := []string{"no such folder", "of test data"}
	for _, tc := range []struct {
		ci           string
		skip, strict bool
	}{
		{"", true, false},
		{"false", true, false},
		{"true", false, true},
		{"1", false, true},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			if Strict() != tc.strict {
				t.Fatalf("Strict() = %v with CI=%q", Strict(), tc.ci)
			}
			for name, f := range map[string]func(testing.TB){
				"Shared":  func(tb testing.TB) { Shared(tb, absent...) },
				"Missing": func(tb testing.TB) { Missing(tb, "thing %s absent", "x") },
			} {
				r := run(t, f)
				if r.skipped != tc.skip || r.failed != tc.strict {
					t.Errorf("%s: skipped %v failed %v, want %v %v (%s)", name, r.skipped, r.failed, tc.skip, tc.strict, r.msg)
				}
				if tc.strict && !strings.Contains(r.msg, "CI=true") {
					t.Errorf("%s: failure %q does not say CI=true made it one", name, r.msg)
				}
			}
			// ../shared/../<checkout> is the checkout itself: a path that exists whether ../shared does or not.
			here := filepath.Base(Root(t))
			if r := run(t, func(tb testing.TB) { Shared(tb, "..", here) }); r.skipped || r.failed {
				t.Errorf("the checkout itself, seen from ../shared, is present but: %s", r.msg)
			}
		})
	}
}
