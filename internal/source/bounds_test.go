package source

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
)

// shuffle writes plies legal knight moves from the start position, back and forth ("1. Nf3 Nf6 2. Ng1 Ng8
// ..."); the repetitions are draws to claim, which a PGN reader does not adjudicate.
func shuffle(w *bufio.Writer, plies int) {
	moves := [4]string{"Nf3", "Nf6", "Ng1", "Ng8"}
	for i := range plies {
		if i%2 == 0 {
			fmt.Fprintf(w, "%d. ", i/2+1)
		}
		w.WriteString(moves[i%4])
		w.WriteByte(' ')
	}
}

func shuffleGame(plies int) string {
	var b strings.Builder
	w := bufio.NewWriter(&b)
	w.WriteString("[Event \"shuffle\"]\n\n")
	shuffle(w, plies)
	w.WriteString("*\n\n")
	w.Flush()
	return b.String()
}

const nextGame = "[Event \"next\"]\n\n1. e4 e5 *\n"

func TestWalkPGNBeyondMaxPlies(t *testing.T) {
	items, bads := collect(t, shuffleGame(board.MaxPlies+1)+nextGame, PGN, "first:5")
	if len(bads) != 1 || bads[0].Record != 0 || !strings.Contains(bads[0].Reason, fmt.Sprintf("longer than %d plies", board.MaxPlies)) {
		t.Fatalf("bad records %+v, want record 0 naming the %d-ply bound", bads, board.MaxPlies)
	}
	if len(items) != 3 || items[0].Record != 1 || items[2].Ply != 2 {
		t.Fatalf("%d positions, want the 3 of the next game", len(items))
	}
	// The bound itself is a good game, whose last position is reached.
	items, bads = collect(t, shuffleGame(board.MaxPlies), PGN, "last")
	if len(bads) != 0 || len(items) != 1 || items[0].Ply != board.MaxPlies || items[0].Pos.FEN() != strings.TrimSuffix(board.StartFEN, "0 1")+"20000 10001" {
		t.Fatalf("a game of MaxPlies plies, last position: bad %+v, items %+v", bads, items)
	}
}

// TestWalkFirstBuildsOnlySelected walks a long game with first:5 and with all plies and wants the first to
// allocate a small part of what the second does: positions after the selection are not built.
func TestWalkFirstBuildsOnlySelected(t *testing.T) {
	game := shuffleGame(board.MaxPlies)
	allocated := func(plies string) uint64 {
		p, err := ParsePlies(plies)
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		n := 0
		if _, err := Walk(strings.NewReader(game), "x", PGN, Options{Plies: p}, func(*Item) error { n++; return nil }, func(b *Bad) error {
			return fmt.Errorf("bad record %+v", b)
		}); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	first, all := allocated("first:5"), allocated("last")
	if first*3 > all {
		t.Errorf("first:5 allocated %d bytes, a third of the whole game's %d or more: positions beyond the selection are built", first, all)
	}
}

func TestWalkLinesMaxLineBytes(t *testing.T) {
	// A JSONL line of exactly MaxLineBytes bytes, its newline included.
	line := func(n int) string {
		head := `{"moves":"e2e4","pad":"`
		return head + strings.Repeat("x", n-len(head)-3) + "\"}\n"
	}
	ok := line(MaxLineBytes)
	if len(ok) != MaxLineBytes {
		t.Fatalf("test line of %d bytes", len(ok))
	}
	input := ok + line(MaxLineBytes+1) + "# " + strings.Repeat("c", 2*MaxLineBytes) + "\n" + strings.Repeat("y", 3*MaxLineBytes) + `{"moves":"d2d4"}`
	items, bads, records := collectOpts(t, input, JSONL, Options{})
	if records != 3 || len(items) != 1 || items[0].Record != 0 || items[0].Ply != 1 {
		t.Fatalf("%d records, %d positions, want 3 records and the position of record 0", records, len(items))
	}
	if len(bads) != 2 || bads[0].Record != 1 || bads[0].Line != 2 || bads[1].Record != 2 || bads[1].Line != 4 ||
		!strings.Contains(bads[0].Reason, fmt.Sprintf("longer than %d bytes", MaxLineBytes)) {
		t.Fatalf("bad records %+v, want records 1 and 2 (lines 2 and 4) naming the bound", bads)
	}
}

// TestLongGameMemory reads a legal 50 MB game written on one line, then a short game, in a child process with
// --plies first:5 and wants its peak memory far below the game's size: the game is refused as too long
// without being held, and the next game is read.
func TestLongGameMemory(t *testing.T) {
	const env = "LCZEROLENS_SOURCE_LONG_GAME"
	if path := os.Getenv(env); path != "" {
		longGameChild(path)
		return
	}
	if testing.Short() {
		t.Skip("writes and reads a 50 MB file")
	}
	if runtime.GOOS != "linux" {
		t.Skip("peak RSS (rusage Maxrss in KiB) is read the Linux way")
	}
	path := filepath.Join(t.TempDir(), "long.pgn")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("[Event \"long\"]\n\n")
	shuffle(w, 8_000_000) // about 50 MB on a single line
	w.WriteString("*\n\n" + nextGame)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() < 50<<20 {
		t.Fatalf("test game: %v, %d bytes", err, st.Size())
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLongGameMemory$", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	got := string(out)
	if strings.Contains(got, "goroutine ") || strings.Contains(got, "panic") {
		t.Fatalf("child printed a stack trace:\n%s", got)
	}
	want := fmt.Sprintf("positions=3 bad=1 record=0 reason=board: pgn game 1 (line 3): game longer than %d plies", board.MaxPlies)
	if !strings.Contains(got, want) {
		t.Errorf("child said %q, want %q", got, want)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	t.Logf("peak RSS of the child: %.1f MiB", float64(rss)/(1<<20))
	if rss > 100<<20 {
		t.Errorf("peak RSS %.1f MiB reading a 50 MB game with first:5, want under 100 MiB", float64(rss)/(1<<20))
	}
}

// longGameChild walks path with first:5 and prints what it found, for TestLongGameMemory.
func longGameChild(path string) {
	f, err := os.Open(path)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	defer f.Close()
	positions, bads := 0, []*Bad{}
	_, err = Walk(f, path, PGN, Options{Plies: Plies{kind: "first", n: 5}}, func(*Item) error {
		positions++
		return nil
	}, func(b *Bad) error { bads = append(bads, b); return nil })
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Printf("positions=%d bad=%d", positions, len(bads))
	if len(bads) > 0 {
		fmt.Printf(" record=%d reason=%s", bads[0].Record, bads[0].Reason)
	}
	fmt.Println()
}
