package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// jsonlText is n JSONL positions (record i: the start position after i%8 moves of a Ruy Lopez), with a
// malformed line after every 50th.
func jsonlText(n int) []byte {
	moves := []string{"e2e4", "e7e5", "g1f3", "b8c6", "f1b5", "a7a6", "b5a4", "g8f6"}
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "{\"fen\":\"startpos\",\"moves\":%q}\n", strings.Join(moves[:i%len(moves)], " "))
		if i%50 == 49 {
			b.WriteString("{\"fen\":\"not a fen\"}\n")
		}
	}
	return b.Bytes()
}

// writeJSONLInput writes jsonlText(n) to dir/in.jsonl and returns its path.
func writeJSONLInput(t *testing.T, dir string, n int) string {
	t.Helper()
	p := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(p, jsonlText(n), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameFiles compares every file of dir want with the same file of dir got, byte for byte.
func sameFiles(t *testing.T, want, got string) {
	t.Helper()
	entries, err := os.ReadDir(want)
	if err != nil {
		t.Fatal(err)
	}
	gotEntries, err := os.ReadDir(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(gotEntries) {
		t.Errorf("%s holds %d files, %s %d", want, len(entries), got, len(gotEntries))
	}
	for _, e := range entries {
		if a, b := fileSum(t, filepath.Join(want, e.Name())), fileSum(t, filepath.Join(got, e.Name())); a != b {
			t.Errorf("%s differs (%s, want %s)", e.Name(), b, a)
		}
	}
}

// fullDisk fails with ENOSPC once the file named name has been given rows lines: a short write ending part
// way into the next line, as a disk that fills up leaves it. Every later write fails too.
type fullDisk struct {
	w     io.Writer
	path  string
	rows  int
	calls int // writes refused
}

func (d *fullDisk) Write(p []byte) (int, error) {
	if d.rows < 0 {
		d.calls++
		return 0, &os.PathError{Op: "write", Path: d.path, Err: syscall.ENOSPC}
	}
	n := 0
	for n < len(p) && d.rows > 0 {
		i := bytes.IndexByte(p[n:], '\n')
		if i < 0 {
			i = len(p) - n - 1
		} else {
			d.rows--
		}
		n += i + 1
	}
	if n == len(p) && d.rows > 0 {
		return d.w.Write(p)
	}
	short := min(len(p), n+7) // part of the next line
	m, err := d.w.Write(p[:short])
	if err != nil {
		return m, err
	}
	d.rows = -1
	d.calls++
	return m, &os.PathError{Op: "write", Path: d.path, Err: syscall.ENOSPC}
}

// TestBatchDiskFull: a write failing with ENOSPC stops the run with one line naming the file and what to
// do, exit 1; --resume then gives files byte-identical to an uninterrupted run (npy and json).
func TestBatchDiskFull(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	in := writeJSONLInput(t, dir, 600)
	for _, tc := range []struct{ format, file string }{{"npy", "positions.jsonl"}, {"json", "results.jsonl"}, {"npy", "errors.jsonl"}} {
		t.Run(tc.format+"/"+tc.file, func(t *testing.T) {
			args := func(out string, extra ...string) []string {
				return append([]string{"batch", in, "-o", out, "--lens", "activation", "--batch-size", "16", "--format", tc.format, "--quiet"}, extra...)
			}
			clean := filepath.Join(dir, tc.format+"-"+tc.file+"-clean")
			if code, _, stderr := runCLI(t, env, args(clean)...); code != 0 {
				t.Fatalf("clean run: exit %d: %s", code, stderr)
			}
			full := filepath.Join(dir, tc.format+"-"+tc.file+"-full")
			var disk *fullDisk
			wrapOutput = func(path string, w io.Writer) io.Writer {
				if filepath.Base(path) != tc.file {
					return w
				}
				rows := 100
				if tc.file == "errors.jsonl" {
					rows = 3
				}
				disk = &fullDisk{w: w, path: path, rows: rows}
				return disk
			}
			code, _, stderr := runCLI(t, env, args(full)...)
			wrapOutput = nil
			want := "no space left on device while writing " + filepath.Join(full, tc.file) + ": output left at its last commit; free space and rerun with --resume"
			if code != ExitFailure || !strings.Contains(stderr, want) {
				t.Fatalf("exit %d, stderr %q: want 1 and %q", code, stderr, want)
			}
			if n := strings.Count(stderr, "no space left"); n != 1 || disk.calls != 1 {
				t.Errorf("the failure is reported %d times (%d writes refused): %q", n, disk.calls, stderr)
			}
			m := readManifest(t, full)
			if m.Complete || m.Count == 0 || m.Count >= readManifest(t, clean).Count {
				t.Errorf("after the failure the manifest says %d positions, complete %v", m.Count, m.Complete)
			}
			if code, _, stderr := runCLI(t, env, args(full, "--resume")...); code != 0 {
				t.Fatalf("resume: exit %d: %s", code, stderr)
			}
			sameFiles(t, clean, full)
		})
	}
}

// TestBatchNothingUsable: an input in which no record is usable exits 2 with one line saying so, even with
// --quiet, rather than an empty output and exit 0.
func TestBatchNothingUsable(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(jsonlText(200))
	_ = zw.Close()
	var csv strings.Builder
	csv.WriteString("id,fen,rating\n")
	for i := range 30 {
		fmt.Fprintf(&csv, "%d,rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1,%d\n", i, 1500+i)
	}
	for _, tc := range []struct {
		name, file string
		data       []byte
		extra      []string
		want       string
	}{
		{"random bytes as pgn", "random.pgn", random, nil, " records usable (first error: "},
		// A compressed input is decompressed (told by its first bytes): JSONL read as PGN is still unusable.
		{"gzip as pgn", "games.pgn", gz.Bytes(), nil, " records usable"},
		{"csv as fen", "puzzles.csv", []byte(csv.String()), []string{"--input-type", "fen"}, "0 of 31 records usable (first error: line 1: "},
		{"empty file", "empty.pgn", nil, nil, "0 of 0 records usable: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(dir, tc.file)
			if err := os.WriteFile(in, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, tc.name)
			code, _, stderr := runCLI(t, env, append([]string{"batch", in, "-o", out, "--lens", "activation", "--quiet"}, tc.extra...)...)
			last := strings.TrimSpace(stderr[strings.LastIndex(strings.TrimSpace(stderr), "\n")+1:])
			if code != ExitUsage || !strings.HasPrefix(last, "lczerolens: batch: 0 of ") || !strings.Contains(last, tc.want) {
				t.Errorf("exit %d, last line %q: want 2 and %q", code, last, tc.want)
			}
		})
	}
}

// TestBatchPerPositionFailures: a position where the lens's target is undefined (policy:e2e4 where e2e4 is
// illegal, policy:best with no legal move) is a bad record with its ply; the run goes on and exits 0.
func TestBatchPerPositionFailures(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	pgn := filepath.Join(dir, "g.pgn")
	// e2e4 is legal only from the start positions and after 1. d4 d5 (white to move, e2 and e4 free).
	if err := os.WriteFile(pgn, []byte("[Event \"a\"]\n\n1. e4 e5 2. Nf3 *\n\n[Event \"b\"]\n\n1. d4 d5 *\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	epd := filepath.Join(dir, "p.epd")
	mated := "rnb1kbnr/pppp1ppp/8/4p3/6Pq/5P2/PPPPP2P/RNBQKBNR w KQkq - 1 3" // fool's mate
	if err := os.WriteFile(epd, []byte("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1\n"+mated+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, input, target string
		rows                []string // game/record and ply of each analysed position
		errs                []string // reasons, in order
	}{
		{"illegal move", pgn, "policy:e2e4", []string{`"game":0,"ply":0`, `"game":1,"ply":0`, `"game":1,"ply":2`},
			[]string{"ply 1: ", "ply 2: ", "ply 3: ", "ply 1: "}},
		{"mated", epd, "policy:best", []string{`"record":0`}, []string{"ply 0: lens: target policy:best: no legal move"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, lensName := range []string{"saliency", "occlusion"} {
				out := filepath.Join(dir, tc.name+"-"+lensName)
				code, _, stderr := runCLI(t, env, "batch", tc.input, "-o", out, "--lens", lensName, "--target", tc.target, "--format", "json")
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", lensName, code, stderr)
				}
				rows := readLines(t, filepath.Join(out, "positions.jsonl"))
				if len(rows) != len(tc.rows) {
					t.Fatalf("%s: %d positions analysed, want %d: %q", lensName, len(rows), len(tc.rows), rows)
				}
				for i, want := range tc.rows {
					if !strings.Contains(rows[i], want) {
						t.Errorf("%s: row %d is %s, want %s", lensName, i, rows[i], want)
					}
				}
				if n := len(readLines(t, filepath.Join(out, "results.jsonl"))); n != len(tc.rows) {
					t.Errorf("%s: results.jsonl has %d rows, want %d", lensName, n, len(tc.rows))
				}
				errs := readLines(t, filepath.Join(out, "errors.jsonl"))
				if len(errs) != len(tc.errs) {
					t.Fatalf("%s: errors.jsonl %q, want %d rows", lensName, errs, len(tc.errs))
				}
				for i, want := range tc.errs {
					if !strings.Contains(errs[i], want) {
						t.Errorf("%s: error %d is %s, want %q in it", lensName, i, errs[i], want)
					}
				}
				if !strings.Contains(stderr, fmt.Sprintf("%d bad records", len(tc.errs))) {
					t.Errorf("%s: summary does not count the positions set aside: %q", lensName, stderr)
				}
			}
		})
	}
}

// TestBatchDiskFullTmpfs fills a real disk: a 256 KiB tmpfs, with the input fed on a stdin that stays open.
// The run must stop on its own at the failure (exit 1, one error line naming the file) rather than read on
// through the input, and --resume on a copy of the directory on a normal disk must end byte-identical to an
// uninterrupted run. Mounting needs root and a kernel and container that allow it, which depends on the
// machine rather than on the code: the test skips with a message when it cannot mount, CI=true included.
func TestBatchDiskFullTmpfs(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root: the injected ENOSPC of TestBatchDiskFull stands in")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): the injected ENOSPC of TestBatchDiskFull stands in", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	const batch = 32
	input := jsonlText(10000) // about 470 KB of input, 10 MB of output
	args := func(out string, extra ...string) []string {
		return append([]string{"batch", "-", "--input-type", "jsonl", "-o", out, "--lens", "activation", "--batch-size", strconv.Itoa(batch), "--quiet"}, extra...)
	}
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean")
	cmd := cliProcess(t, args(clean)...)
	cmd.Stdin = bytes.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}

	full := filepath.Join(mnt, "out")
	cmd = cliProcess(t, args(full)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Fed in small writes, never closed while the child runs: a run that read on past the failure would
	// wait here for the rest of its input.
	fed := make(chan int, 1)
	go func() {
		n := 0
		for n < len(input) {
			m, err := stdin.Write(input[n:min(n+4096, len(input))])
			n += m
			if err != nil {
				break
			}
		}
		fed <- n
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-exited // gone before the tmpfs is unmounted
		t.Fatalf("the run did not stop when the disk filled: %s", stderr.String())
	}
	stdin.Close()
	accepted := <-fed
	code := cmd.ProcessState.ExitCode()
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	want := "lczerolens: batch: no space left on device while writing " + full + string(filepath.Separator)
	if code != ExitFailure || !strings.HasPrefix(last, want) || !strings.HasSuffix(last, ": output left at its last commit; free space and rerun with --resume") {
		t.Fatalf("exit %d, last line %q: want 1 and %q...", code, last, want)
	}
	if n := strings.Count(stderr.String(), "lczerolens: "); n != 1 || strings.Count(stderr.String(), "no space left") != 1 {
		t.Errorf("the failure is not reported once, in one line: %q", stderr.String())
	}
	m := readManifest(t, full)
	if m.Complete || m.Count == 0 {
		t.Fatalf("after the failure the manifest says %d positions, complete %v", m.Count, m.Complete)
	}
	// What the child read is bounded by the committed positions, the batches in flight in the pipeline (the
	// one that failed, one being run, one queued, one being read) and the buffers between this process and
	// the pipeline's reader (the pipe, the pump's and the parser's buffers): 256 KiB is more than they hold.
	lineEnd := func(positions int) int { // input bytes up to the last line holding position positions-1
		lines := positions + positions/50 // a malformed line follows every 50th position
		end := 0
		for range lines {
			end += bytes.IndexByte(input[end:], '\n') + 1
		}
		return end
	}
	bound := lineEnd(m.Count+4*batch) + 256<<10
	t.Logf("the disk filled after %d committed positions; the child took %d of %d input bytes (bound %d)", m.Count, accepted, len(input), bound)
	if accepted >= len(input) || accepted > bound {
		t.Errorf("the child read %d of %d input bytes after committing %d positions: want at most %d, no further than the batches in flight", accepted, len(input), m.Count, bound)
	}

	resumed := filepath.Join(dir, "resumed")
	if err := os.CopyFS(resumed, os.DirFS(full)); err != nil {
		t.Fatal(err)
	}
	cmd = cliProcess(t, args(resumed, "--resume")...)
	cmd.Stdin = bytes.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	sameFiles(t, clean, resumed)
}

// operaGame is Morphy's Opera game: 33 plies, 34 positions, longer than the batches of the test below.
const operaGame = "1. e4 e5 2. Nf3 d6 3. d4 Bg4 4. dxe5 Bxf3 5. Qxf3 dxe5 6. Bc4 Nf6 7. Qb3 Qe7 8. Nc3 c6 9. Bg5 b5 " +
	"10. Nxb5 cxb5 11. Bxb5+ Nbd7 12. O-O-O Rd8 13. Rxd7 Rxd7 14. Rd1 Qe6 15. Bxd7+ Nxd7 16. Qb8+ Nxb8 17. Rd8# 1-0"

// TestBatchStopInsideAGame: a run that stops inside a game keeps the game's positions it committed (a slow
// lens, hundreds of rows a position, would otherwise lose up to a whole game of work) and a resume starts
// after them: files byte-identical to an uninterrupted run.
func TestBatchStopInsideAGame(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	pgn := filepath.Join(dir, "opera.pgn")
	if err := os.WriteFile(pgn, []byte("[Event \"a\"]\n\n"+operaGame+"\n\n[Event \"b\"]\n\n"+operaGame+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(out string, extra ...string) []string {
		return append([]string{"batch", pgn, "-o", out, "--lens", "activation", "--batch-size", "4", "--quiet"}, extra...)
	}
	clean := filepath.Join(dir, "clean")
	if code, _, stderr := runCLI(t, env, args(clean)...); code != 0 {
		t.Fatalf("clean run: exit %d: %s", code, stderr)
	}
	// The disk fills during the third batch: two batches of the first game (8 positions) are committed.
	full := filepath.Join(dir, "full")
	wrapOutput = func(path string, w io.Writer) io.Writer {
		if filepath.Base(path) != "positions.jsonl" {
			return w
		}
		return &fullDisk{w: w, path: path, rows: 10}
	}
	code, _, stderr := runCLI(t, env, args(full)...)
	wrapOutput = nil
	if code != ExitFailure || !strings.Contains(stderr, "no space left on device") {
		t.Fatalf("exit %d, stderr %q: want 1 and the full disk", code, stderr)
	}
	if m := readManifest(t, full); m.Count != 8 || m.Complete {
		t.Fatalf("after a stop in game 1 the manifest holds %d positions (complete %v), want 8", m.Count, m.Complete)
	}
	var p struct {
		Records   int `json:"records"`
		OpenItems int `json:"open_items"`
	}
	if raw, err := os.ReadFile(filepath.Join(full, "progress.json")); err != nil || json.Unmarshal(raw, &p) != nil || p.Records != 0 || p.OpenItems != 8 {
		t.Fatalf("progress.json says %d records and %d items of the next (%v), want 0 and 8", p.Records, p.OpenItems, err)
	}
	code, _, stderr = runCLI(t, env, args(full, "--resume")...)
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	sameFiles(t, clean, full)
}

// TestBatchStopWhileAveraging: SIGTERM while ablation's --mean-from file is still being averaged (a FIFO
// that stalls after three positions) ends the run at once with exit 143 and one line saying where it
// stopped, instead of waiting for the file or dying without a word.
func TestBatchStopWhileAveraging(t *testing.T) {
	dir := t.TempDir()
	in := writeJSONLInput(t, dir, 8)
	fifo := filepath.Join(dir, "ref.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	cmd := cliProcess(t, "batch", in, "--lens", "ablation", "--mean-from", fifo, "-o", filepath.Join(dir, "out"), "-q")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for the run to open it
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(jsonlText(3)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the three are read; the run waits for more
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the run still waits for its --mean-from file 20 s after SIGTERM")
	}
	last := strings.TrimSpace(stderr.String())
	last = last[strings.LastIndex(last, "\n")+1:]
	if code := cmd.ProcessState.ExitCode(); code != 143 || !strings.Contains(last, "interrupted") || !strings.Contains(last, "--mean-from") {
		t.Fatalf("exit %d, last line %q: want 143 and a line naming --mean-from", code, last)
	}
}
