package testutil

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
