package cli

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/notnil/chess"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestMain lets tests re-run this binary as the CLI (for SIGKILL and memory tests).
func TestMain(m *testing.M) {
	if os.Getenv("LCZEROLENS_TEST_CLI") == "1" {
		code := Main(os.Args[1:])
		// Peak RSS of this process image: rusage's maxrss would include the parent's, inherited at exec.
		if f := os.Getenv("LCZEROLENS_TEST_RSS_FILE"); f != "" {
			if status, err := os.ReadFile("/proc/self/status"); err == nil {
				for _, line := range strings.Split(string(status), "\n") {
					if strings.HasPrefix(line, "VmHWM:") {
						_ = os.WriteFile(f, []byte(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "VmHWM:"), "kB"))), 0o644)
					}
				}
			}
		}
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// cliProcess prepares this test binary to run as the CLI with args.
func cliProcess(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "LCZEROLENS_TEST_CLI=1", "LCZEROLENS_ORT_LIB="+testutil.ORTLib(t), "HOME="+t.TempDir())
	return cmd
}

// pgnCounts reads a PGN with the board package and returns its games and positions (plies + 1 per game).
func pgnCounts(t testing.TB, path string) (games, positions, bad int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := board.NewPGNReader(f)
	for {
		g, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			bad++
			continue
		}
		games++
		positions += len(g.Moves) + 1
	}
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(raw), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

type manifest struct {
	Count int `json:"count"`
	Keys  map[string]struct {
		File  string `json:"file"`
		Shape []int  `json:"shape"`
	} `json:"keys"`
	Complete bool `json:"complete"`
}

func readManifest(t testing.TB, dir string) manifest {
	t.Helper()
	var m manifest
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBatchRealPGN runs the activation lens over 1,000 real games (demo network) and checks the counts,
// the positions index and that numpy loads every file with the manifest's shapes. The values are checked
// without the project's chess code: the first games' positions against notnil/chess replaying the PGN, and
// sampled rows' activations against the demo network's closed form computed from their FEN.
func TestBatchRealPGN(t *testing.T) {
	pgn := testutil.Shared(t, "data/pgn/corentings-lichess-big.pgn")
	lib := testutil.ORTLib(t)
	games, positions, _ := pgnCounts(t, pgn)
	if games < 1000 {
		t.Fatalf("expected >= 1000 games, got %d", games)
	}
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runCLI(t, map[string]string{"LCZEROLENS_ORT_LIB": lib}, "batch", pgn, "-o", out, "--lens", "activation", "--quiet", "--batch-size", "512")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m := readManifest(t, out)
	if m.Count != positions || !m.Complete {
		t.Fatalf("manifest count %d complete %v, want %d positions (%d games)", m.Count, m.Complete, positions, games)
	}
	rows := readLines(t, filepath.Join(out, "positions.jsonl"))
	if len(rows) != positions {
		t.Fatalf("positions.jsonl has %d rows, want %d", len(rows), positions)
	}
	// Row 0 is game 0's start position; the last row of a game has move null.
	var first, last struct {
		Game int     `json:"game"`
		Ply  int     `json:"ply"`
		Move *string `json:"move"`
	}
	_ = json.Unmarshal([]byte(rows[0]), &first)
	_ = json.Unmarshal([]byte(rows[len(rows)-1]), &last)
	if first.Game != 0 || first.Ply != 0 || first.Move == nil || last.Move != nil || last.Game != games-1 {
		t.Errorf("first row %+v, last row %+v", first, last)
	}
	checkRowsAgainstNotnil(t, pgn, rows, 3)
	key, ok := m.Keys["block0/conv2/relu_output"]
	if !ok {
		t.Fatalf("no block0/conv2/relu_output among the keys %v", m.Keys)
	}
	// Every 97th row, and the last: rows of every game phase, both sides to move.
	var sample []int
	for i := 0; i < len(rows); i += 97 {
		sample = append(sample, i)
	}
	checkDemoBody(t, filepath.Join(out, key.File), rows, append(sample, len(rows)-1))
	testutil.NumpyManifest(t, out, true)
}

// checkRowsAgainstNotnil replays the first n games of pgn with notnil/chess and checks that the first rows of
// positions.jsonl are their positions in order (placement, side to move, castling).
func checkRowsAgainstNotnil(t *testing.T, pgn string, rows []string, n int) {
	t.Helper()
	f, err := os.Open(pgn)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := chess.NewScanner(f)
	row := 0
	for g := 0; g < n; g++ {
		if !sc.Scan() {
			t.Fatalf("notnil read %d games: %v", g, sc.Err())
		}
		for ply, pos := range sc.Next().Positions() {
			var r struct {
				Game int    `json:"game"`
				Ply  int    `json:"ply"`
				FEN  string `json:"fen"`
			}
			if err := json.Unmarshal([]byte(rows[row]), &r); err != nil {
				t.Fatal(err)
			}
			got, want := strings.Fields(r.FEN)[:3], strings.Fields(pos.String())[:3]
			if r.Game != g || r.Ply != ply || !slices.Equal(got, want) {
				t.Fatalf("row %d: game %d ply %d %v, notnil game %d ply %d %v", row, r.Game, r.Ply, got, g, ply, want)
			}
			row++
		}
	}
}

// checkDemoBody checks rows of the demo network's block0/conv2/relu_output against its closed form computed
// from each row's FEN: channel c at a square is 2*(x+1), x being the value of the mover's piece there (c=0),
// of the opponent's (c=1), or whether the mover (c=2) or the opponent (c=3) has a piece there; the board is
// seen from the mover's side (ranks mirrored when black moves). See internal/demonet.
func checkDemoBody(t *testing.T, path string, rows []string, sample []int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shape, off, err := npy.ReadHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shape, []int{len(rows), 4, 8, 8}) {
		t.Fatalf("%s: shape %v, want [%d 4 8 8]", path, shape, len(rows))
	}
	values := map[rune]float64{'p': 1, 'n': 3, 'b': 3, 'r': 5, 'q': 9, 'k': 0}
	raw := make([]byte, 4*8*8*4)
	for _, i := range sample {
		var r struct {
			FEN string `json:"fen"`
		}
		if err := json.Unmarshal([]byte(rows[i]), &r); err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(r.FEN)
		black := fields[1] == "b"
		var want [4][8][8]float64
		for rank, line := range strings.Split(fields[0], "/") {
			rank = 7 - rank // FEN lists rank 8 first
			file := 0
			for _, c := range line {
				if c >= '1' && c <= '8' {
					file += int(c - '0')
					continue
				}
				lower := unicode.ToLower(c)
				mine := (c == lower) == black // lower case is black
				rk := rank
				if black {
					rk = 7 - rank
				}
				ch := 1
				if mine {
					ch = 0
				}
				want[ch][rk][file] = values[lower]
				want[ch+2][rk][file] = 1
				file++
			}
		}
		if _, err := f.ReadAt(raw, off+int64(i)*int64(len(raw))); err != nil {
			t.Fatal(err)
		}
		for c := range 4 {
			for rk := range 8 {
				for file := range 8 {
					got := float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*((c*8+rk)*8+file):])))
					if w := 2 * (want[c][rk][file] + 1); got != w {
						t.Fatalf("row %d (%s): channel %d rank %d file %d = %g, closed form %g", i, r.FEN, c, rk+1, file+1, got, w)
					}
				}
			}
		}
	}
}

// TestBatchBadRecords checks that a malformed game goes to errors.jsonl and the run goes on, and that
// --strict stops with exit code 2 (the input is at fault) keeping what was done.
func TestBatchBadRecords(t *testing.T) {
	lib := testutil.ORTLib(t)
	dir := t.TempDir()
	pgn := filepath.Join(dir, "g.pgn")
	body := "[Event \"a\"]\n\n1. e4 e5 2. Nf3 *\n\n[Event \"b\"]\n\n1. e4 e5 2. Qh5 Ke7 3. Qxf9 *\n\n[Event \"c\"]\n\n1. d4 d5 *\n"
	if err := os.WriteFile(pgn, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LCZEROLENS_ORT_LIB": lib}
	out := filepath.Join(dir, "out")
	code, _, stderr := runCLI(t, env, "batch", pgn, "-o", out, "--lens", "activation", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	errs := readLines(t, filepath.Join(out, "errors.jsonl"))
	if len(errs) != 1 || !strings.Contains(errs[0], "Qxf9") {
		t.Fatalf("errors.jsonl: %q", errs)
	}
	if n := len(readLines(t, filepath.Join(out, "results.jsonl"))); n != 4+3 {
		t.Fatalf("results.jsonl has %d rows, want 7", n)
	}
	if !strings.Contains(stderr, "1 bad records") {
		t.Errorf("summary does not count the bad record: %q", stderr)
	}
	// Resuming with another ply selection would mix positions: refused, naming the flag.
	if code, _, stderr = runCLI(t, env, "batch", pgn, "-o", out, "--lens", "activation", "--format", "json", "--resume", "--plies", "last"); code != ExitUsage || !strings.Contains(stderr, "--plies") {
		t.Errorf("resume with other --plies: exit %d %q", code, stderr)
	}
	// Rerunning into the same directory needs --resume or --force.
	if code, _, stderr = runCLI(t, env, "batch", pgn, "-o", out, "--lens", "activation"); code != ExitUsage || !strings.Contains(stderr, "--resume") {
		t.Errorf("non-empty output dir: exit %d %q", code, stderr)
	}
	out2 := filepath.Join(dir, "strict")
	code, _, stderr = runCLI(t, env, "batch", pgn, "-o", out2, "--lens", "activation", "--strict")
	if code != ExitUsage || !strings.Contains(stderr, "bad record 1") || !strings.Contains(stderr, "Qxf9") {
		t.Fatalf("--strict: exit %d %q", code, stderr)
	}
	if n := len(readLines(t, filepath.Join(out2, "positions.jsonl"))); n != 4 {
		t.Errorf("--strict kept %d positions, want the 4 before the bad game", n)
	}
}

// TestBatchKillResume SIGKILLs a batch run three times at fixed fractions of its output, resuming after each
// kill, and compares every file with an uninterrupted run byte for byte. A run that ends before its kill
// fails the test: a resume that never followed a kill proves nothing.
func TestBatchKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in -short mode")
	}
	pgn := testutil.Shared(t, "data/pgn/educhess-Morphy.pgn")
	dir := t.TempDir()
	args := func(out string, extra ...string) []string {
		return append([]string{"batch", pgn, "-o", out, "--lens", "activation,saliency", "--batch-size", "16", "--plies", "every:3", "--quiet"}, extra...)
	}
	clean := filepath.Join(dir, "clean")
	if out, err := cliProcess(t, args(clean)...).CombinedOutput(); err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}
	total := fileSize(t, filepath.Join(clean, "positions.jsonl"))
	// A fixed seed: the kill points vary within their windows but are the same on every run of the test.
	rng := rand.New(rand.NewPCG(12, 7))
	killed := filepath.Join(dir, "killed")
	for attempt := 0; attempt < 3; attempt++ {
		extra := []string{}
		if attempt > 0 {
			extra = append(extra, "--resume")
		}
		cmd := cliProcess(t, args(killed, extra...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once the index has grown past a point in the attempt's quarter of the output (20-30%,
		// 45-55%, 70-80%), so that each attempt has rows to write before it and rows left after it.
		target := total * int64(20+25*attempt+rng.IntN(11)) / 100
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if fi, err := os.Stat(filepath.Join(killed, "positions.jsonl")); err == nil && fi.Size() > target {
				break
			}
			time.Sleep(time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if err == nil || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("attempt %d (kill past %d of %d index bytes) was not killed: %v; the resume would prove nothing", attempt, target, total, err)
		}
		if got := fileSize(t, filepath.Join(killed, "positions.jsonl")); got >= total {
			t.Fatalf("attempt %d was killed with the whole index (%d of %d bytes) written: nothing was left to resume", attempt, got, total)
		}
	}
	if out, err := cliProcess(t, args(killed, "--resume")...).CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(clean)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "manifest.json" || e.Name() == "progress.json" {
			continue // hold timestamps-free but path-specific fields; data files are what must match
		}
		a, b := fileSum(t, filepath.Join(clean, e.Name())), fileSum(t, filepath.Join(killed, e.Name()))
		if a != b {
			t.Errorf("%s differs after kill and resume (%s vs %s)", e.Name(), a, b)
		}
	}
	if readManifest(t, killed).Count != readManifest(t, clean).Count {
		t.Error("manifest counts differ")
	}
}

// fileSize is a file's size, failing the test when it cannot be read.
func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// fileSum is a file's size and sha256, read as a stream.
func fileSum(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d bytes sha256 %x", n, h.Sum(nil))
}

// TestBatchMemoryBounded runs the same input at 1x and 10x size in subprocesses and compares peak RSS.
func TestBatchMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in -short mode")
	}
	dir := t.TempDir()
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(f)
		moves := []string{"e2e4", "e7e5", "g1f3", "b8c6", "f1b5", "a7a6", "b5a4", "g8f6"}
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "{\"fen\":\"startpos\",\"moves\":%q}\n", strings.Join(moves[:i%len(moves)], " "))
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	peak := func(input string) int64 {
		out := filepath.Join(dir, filepath.Base(input)+".out")
		rssFile := out + ".rss"
		cmd := cliProcess(t, "batch", input, "-o", out, "--lens", "activation", "--quiet", "--batch-size", "256")
		cmd.Env = append(cmd.Env, "LCZEROLENS_TEST_RSS_FILE="+rssFile)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		raw, err := os.ReadFile(rssFile)
		if err != nil {
			t.Skipf("skipping: no VmHWM reading (%v)", err)
		}
		kib, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return kib
	}
	small := peak(write("small.jsonl", 10_000))
	large := peak(write("large.jsonl", 100_000))
	t.Logf("peak RSS: 10k positions %d KiB, 100k positions %d KiB", small, large)
	if large > small+small/4+8*1024 {
		t.Errorf("peak memory grows with input size: %d KiB for 10k positions, %d KiB for 100k", small, large)
	}
}
