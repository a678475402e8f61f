package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/store"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestSingleFileOutputs: no command that writes one file overwrites an existing one without --force (exit
// 2, naming --force, the file unchanged), each replaces it with --force, and a write that fails midway
// (a real fault: the file size limit of the process, RLIMIT_FSIZE, set in a child) exits 1 leaving the old
// file in place and no temporary file behind.
func TestSingleFileOutputs(t *testing.T) {
	lib := testutil.ORTLib(t)
	env := map[string]string{"LCZEROLENS_ORT_LIB": lib}
	inputs := t.TempDir()
	heat := filepath.Join(inputs, "heat.npy")
	hf, err := os.Create(heat)
	if err != nil {
		t.Fatal(err)
	}
	if err := npy.Write(hf, []int{8, 8}, make([]float32, 64)); err != nil {
		t.Fatal(err)
	}
	hf.Close()

	// probe train refuses a constant label: these games change the material balance.
	capturesPGN := filepath.Join(inputs, "captures.pgn")
	captures := "[Event \"c1\"]\n\n1. e4 d5 2. exd5 Qxd5 3. Nc3 Qa5 4. d4 Nf6 5. Nf3 Bg4 6. h3 Bxf3 7. Qxf3 *\n\n" +
		"[Event \"c2\"]\n\n1. d4 d5 2. c4 dxc4 3. e3 b5 4. a4 c6 5. axb5 cxb5 6. Qf3 Nc6 7. Qxc6+ Bd7 *\n\n" +
		"[Event \"c3\"]\n\n1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 4. Bxc6 dxc6 5. Nxe5 Qd4 6. Nf3 Qxe4+ *\n"
	if err := os.WriteFile(capturesPGN, []byte(captures), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args func(target string) []string
	}{
		{"analyse -o", func(p string) []string { return []string{"analyse", "--lens", "saliency", "--startpos", "-o", p} }},
		{"analyse --svg", func(p string) []string { return []string{"analyse", "--lens", "saliency", "--startpos", "--svg", p} }},
		{"render -o", func(p string) []string {
			return []string{"render", "--npy", heat, "--fen", "8/8/8/4k3/8/8/4P3/4K3 w - - 0 1", "-o", p}
		}},
		{"encode -o", func(p string) []string { return []string{"encode", "--startpos", "-o", p} }},
		{"encode --format npy -o", func(p string) []string { return []string{"encode", "--startpos", "--format", "npy", "-o", p} }},
		{"probe train -o", func(p string) []string {
			return []string{"probe", "train", capturesPGN, "--concept", "material-balance", "--pattern", "^block0/conv2/relu$", "-o", p}
		}},
	}
	if weights := filepath.Join(testutil.Root(t), "..", "shared", "models", "tinygyal-8.pb"); fileExists(weights) {
		tests = append(tests, struct {
			name string
			args func(target string) []string
		}{"convert -o", func(p string) []string { return []string{"convert", weights, "-o", p} }})
	} else {
		t.Logf("not testing convert: %s absent", weights)
	}
	const old = "an earlier result\n"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "out")
			if err := os.WriteFile(target, []byte(old), 0o644); err != nil {
				t.Fatal(err)
			}
			// The target alone, holding want: nothing else written, no temporary file left.
			only := func(when string, want func(string) bool) {
				t.Helper()
				entries, err := os.ReadDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				if len(entries) != 1 || entries[0].Name() != "out" {
					var names []string
					for _, e := range entries {
						names = append(names, e.Name())
					}
					t.Errorf("%s: the directory holds %v, want only the target", when, names)
				}
				raw, err := os.ReadFile(target)
				if err != nil || !want(string(raw)) {
					t.Errorf("%s: the target holds %d bytes %.40q (%v)", when, len(raw), raw, err)
				}
			}
			isOld := func(s string) bool { return s == old }

			code, _, stderr := runCLI(t, env, tt.args(target)...)
			if code != ExitUsage || !strings.Contains(stderr, "already exists") || !strings.Contains(stderr, "--force") {
				t.Errorf("without --force: exit %d %q, want %d naming --force", code, stderr, ExitUsage)
			}
			only("refused", isOld)

			// A file size limit (in 512- or 1024-byte blocks, by shell) far below every output.
			cmd := exec.Command("/bin/sh", append([]string{"-c", `ulimit -f 1 && exec "$0" "$@"`, os.Args[0]}, append(tt.args(target), "--force")...)...)
			cmd.Env = append(os.Environ(), "LCZEROLENS_TEST_CLI=1", "LCZEROLENS_ORT_LIB="+lib, "HOME="+t.TempDir())
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			exit, _ := err.(*exec.ExitError)
			if exit == nil || exit.ExitCode() != ExitFailure || !strings.Contains(out.String(), "file too large") {
				t.Errorf("a write past the file size limit: %v, output %q; want exit %d saying file too large", err, out.String(), ExitFailure)
			}
			only("after a failed write", isOld)

			code, _, stderr = runCLI(t, env, append(tt.args(target), "--force")...)
			if code != 0 {
				t.Fatalf("--force: exit %d %q", code, stderr)
			}
			only("replaced", func(s string) bool { return s != old && len(s) > 100 })
		})
	}
}

// TestOutputDirLocked: while a batch run writes a directory (a child process, held mid-run by its stdin),
// a second batch on it, with --resume or --force, and merge -o or analyse -o on it exit 1 at once naming
// the holder's pid; the first run then finishes with files identical to an undisturbed run's. A batch
// SIGKILLed mid-run leaves its lock file, which does not block --resume.
func TestOutputDirLocked(t *testing.T) {
	lib := testutil.ORTLib(t)
	env := map[string]string{"LCZEROLENS_ORT_LIB": lib}
	dir := t.TempDir()
	raw, err := os.ReadFile(smallPGN(t, dir, "games.pgn"))
	if err != nil {
		t.Fatal(err)
	}
	half := bytes.Index(raw, []byte("[Event \"g4\"]"))
	notNet := filepath.Join(dir, "notnet.onnx")
	if err := os.WriteFile(notNet, []byte("this is not a network"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"batch", "-", "--input-type", "pgn", "--lens", "activation", "--batch-size", "4", "--quiet"}

	undisturbed := filepath.Join(dir, "undisturbed")
	cmd := cliProcess(t, append(args, "-o", undisturbed)...)
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("undisturbed run: %v\n%s", err, out)
	}

	// Shards for merge to reach its output directory.
	pgn := filepath.Join(dir, "games.pgn")
	var shards []string
	for i := range 2 {
		s := filepath.Join(dir, fmt.Sprintf("shard%d", i))
		if code, _, stderr := runCLI(t, env, "batch", pgn, "-o", s, "--lens", "activation", "--shard", fmt.Sprintf("%d/2", i), "--quiet"); code != 0 {
			t.Fatalf("shard %d: exit %d %s", i, code, stderr)
		}
		shards = append(shards, s)
	}

	out := filepath.Join(dir, "out")
	first := cliProcess(t, append(args, "-o", out)...)
	stdin, err := first.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var firstOut bytes.Buffer
	first.Stdout, first.Stderr = &firstOut, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	if _, err := stdin.Write(raw[:half]); err != nil {
		t.Fatal(err)
	}
	// The first run holds the lock once its lock file names it.
	holder := fmt.Sprintf("pid %d\n", first.Process.Pid)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(out, store.LockFile)); err == nil && strings.HasPrefix(string(b), holder) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first run never took the lock: %s", firstOut.String())
		}
	}
	want := fmt.Sprintf("output directory %s is in use by another lczerolens process (pid %d, started ", out, first.Process.Pid)
	for _, second := range [][]string{
		append(args, "-o", out, "--resume"),
		append(args, "-o", out, "--force"),
		append([]string{"merge", "-o", out, "--force"}, shards...),
		{"analyse", "--lens", "activation", "--startpos", "--format", "npy", "-o", out, "--force"},
		// The lock is taken before the network loads: one that cannot load (exit 2 once loaded) is never read.
		append(args, "-o", out, "--resume", "--model", notNet),
	} {
		code, _, stderr := runCLI(t, env, second...)
		if code != ExitFailure || !strings.Contains(stderr, want) || strings.Count(stderr, "lczerolens: ") != 1 {
			t.Errorf("%v while the first run writes: exit %d %q, want %d and one line saying %q", second, code, stderr, ExitFailure, want)
		}
	}
	if _, err := stdin.Write(raw[half:]); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v\n%s", err, firstOut.String())
	}
	compareDirs(t, undisturbed, out)

	// A run killed while it holds the lock leaves the lock file; --resume takes the lock over.
	killed := filepath.Join(dir, "killed")
	k := cliProcess(t, append(args, "-o", killed)...)
	kin, err := k.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := kin.Write(raw[:half]); err != nil {
		t.Fatal(err)
	}
	holder = fmt.Sprintf("pid %d\n", k.Process.Pid)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(killed, store.LockFile)); err == nil && strings.HasPrefix(string(b), holder) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run to kill never took the lock")
		}
	}
	if err := k.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = k.Wait()
	if _, err := os.Stat(filepath.Join(killed, store.LockFile)); err != nil {
		t.Fatalf("the killed run left no lock file (%v): the resume below would prove nothing", err)
	}
	resume := cliProcess(t, append(args, "-o", killed, "--resume")...)
	resume.Stdin = bytes.NewReader(raw)
	if b, err := resume.CombinedOutput(); err != nil {
		t.Fatalf("--resume after a SIGKILL: %v\n%s", err, b)
	}
	compareDirs(t, undisturbed, killed)
}
