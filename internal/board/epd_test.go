package board

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestEPDFiles parses every position of the shared EPD suites.
func TestEPDFiles(t *testing.T) {
	dir := testutil.Shared(t, "data", "epd")
	files, err := filepath.Glob(filepath.Join(dir, "*.epd"))
	if err != nil || len(files) == 0 {
		testutil.Missing(t, "no EPD files in %s", dir)
	}
	// One position of senjo-test.epd has a pawn on the eighth rank.
	wantBad := map[string]int{"senjo-test.epd": 1}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for _, l := range strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n") {
			if l = strings.TrimSpace(l); l == "" || l[0] == '#' {
				continue
			}
			if _, err := ParseEPD(l); err != nil {
				bad++
			}
		}
		if bad != wantBad[filepath.Base(f)] {
			t.Errorf("%s: %d bad lines, want %d", filepath.Base(f), bad, wantBad[filepath.Base(f)])
		}
	}
}

// epdOps splits the operations after the 4 FEN fields into opcode -> operand.
func epdOps(line string) map[string]string {
	f := strings.Fields(line)
	rest := strings.Join(f[4:], " ")
	ops := map[string]string{}
	for _, op := range strings.Split(rest, ";") {
		op = strings.TrimSpace(op)
		if i := strings.IndexByte(op, ' '); i > 0 {
			ops[op[:i]] = strings.Trim(strings.TrimSpace(op[i+1:]), `"`)
		}
	}
	return ops
}

// TestSTSMoves checks our SAN writer and parsers against the Strategic Test
// Suite, which lists the same candidate moves in SAN (c7) and UCI (c9).
func TestSTSMoves(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testutil.Shared(t, "data", "epd"), "sts-STS1-STS15_LAN_v6.epd"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		p, err := ParseEPD(l)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		ops := epdOps(l)
		if _, err := p.ParseMove(ops["bm"]); err != nil {
			t.Errorf("bm: %v", err)
		}
		sans, ucis := strings.Fields(ops["c7"]), strings.Fields(ops["c9"])
		if len(sans) != len(ucis) {
			t.Fatalf("%s: c7/c9 lengths differ", l)
		}
		for i := range ucis {
			m, err := p.ParseMove(ucis[i])
			if err != nil {
				t.Errorf("c9: %v", err)
				continue
			}
			if got := p.SAN(m); got != sans[i] {
				t.Errorf("%s: SAN(%s) = %s, want %s", p.FEN(), ucis[i], got, sans[i])
			}
			if m2, err := p.ParseMove(sans[i]); err != nil || m2 != m {
				t.Errorf("%s: ParseMove(%s) = %v, %v; want %v", p.FEN(), sans[i], m2, err, m)
			}
			checked++
		}
	}
	if checked < 5000 {
		t.Errorf("only %d moves checked", checked)
	}
}
