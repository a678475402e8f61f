package board

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

func perft(p *Position, depth int) int64 {
	var buf [maxMoves]Move
	ms := p.genLegal(buf[:0])
	if depth == 1 {
		return int64(len(ms))
	}
	var n int64
	for _, m := range ms {
		q := *p
		q.play(m)
		n += perft(&q, depth-1)
	}
	return n
}

func TestPerftSuite(t *testing.T) {
	path := filepath.Join(testutil.Shared(t, "data", "epd"), "senjo-perftsuite.epd")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	maxNodes := int64(200000)
	if testing.Short() {
		maxNodes = 20000
	}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ";")
		if len(parts) < 2 {
			continue
		}
		p, err := ParseFEN(strings.TrimSpace(parts[0]))
		if err != nil {
			t.Fatalf("%s: %v", parts[0], err)
		}
		for _, d := range parts[1:] {
			fs := strings.Fields(d)
			depth, _ := strconv.Atoi(strings.TrimPrefix(fs[0], "D"))
			want, _ := strconv.ParseInt(fs[1], 10, 64)
			if want > maxNodes {
				break
			}
			if got := perft(p, depth); got != want {
				t.Errorf("%s depth %d: got %d, want %d", parts[0], depth, got, want)
			}
		}
		n++
	}
	if n < 100 {
		t.Fatalf("only %d positions read", n)
	}
}

func TestPerftRandom(t *testing.T) {
	path := filepath.Join(testutil.Shared(t, "data", "epd"), "pychess-random.perft")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	maxDepth := 3
	if testing.Short() {
		maxDepth = 2
	}
	sc := bufio.NewScanner(f)
	var p *Position
	var epd string
	n := 0
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		switch fs[0] {
		case "epd":
			epd = strings.Join(fs[1:], " ")
			p, err = ParseEPD(epd)
			if err != nil {
				t.Fatalf("%s: %v", epd, err)
			}
			n++
		case "perft":
			depth, _ := strconv.Atoi(fs[1])
			want, _ := strconv.ParseInt(fs[2], 10, 64)
			if depth > maxDepth {
				continue
			}
			if got := perft(p, depth); got != want {
				t.Errorf("%s depth %d: got %d, want %d", epd, depth, got, want)
			}
		}
	}
	if n < 6000 {
		t.Fatalf("only %d positions read", n)
	}
}
