package cli

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lczerolens/lczerolens/internal/npy"
)

// committedCount reads the count of the last commit from progress.json (-1 while there is none).
func committedCount(dir string) int {
	raw, err := os.ReadFile(filepath.Join(dir, "progress.json"))
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(`"positions": (\d+)`).FindSubmatch(raw)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// interruptChild starts the CLI with args reading stdin, feeds it the first part of input, waits until
// ready(dir) holds, sends sig, and returns the exit code and stderr. The rest of the input is never sent:
// the child is stopped while its input stalls.
func interruptChild(t *testing.T, input []byte, part int, sig syscall.Signal, ready func() bool, args ...string) (int, string) {
	t.Helper()
	cmd := cliProcess(t, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	// More than a pipe holds: once this returns the child is reading, its signal handler installed.
	if _, err := stdin.Write(input[:part]); err != nil {
		t.Fatalf("feeding the child: %v (%s)", err, stderr.String())
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !ready() {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the child made no progress: %s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// TestBatchSignals stops a batch run with SIGTERM and SIGINT while it reads a stalled stdin: exit 143 or
// 130, one line with the committed count, no row beyond it in any file, and --resume ends byte-identical to
// an uninterrupted run.
func TestBatchSignals(t *testing.T) {
	dir := t.TempDir()
	input, err := os.ReadFile(writeJSONLInput(t, dir, 4000))
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Index(input[150<<10:], []byte("\n")) + 150<<10 + 1 // about 2,800 positions
	for _, tc := range []struct {
		sig    syscall.Signal
		code   int
		format string
	}{{syscall.SIGTERM, 143, "json"}, {syscall.SIGINT, 130, "npy"}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			args := func(out string, extra ...string) []string {
				return append([]string{"batch", "-", "--input-type", "jsonl", "-o", out, "--lens", "activation", "--batch-size", "16", "--format", tc.format}, extra...)
			}
			clean := filepath.Join(dir, tc.format+"-clean")
			cmd := cliProcess(t, args(clean, "--quiet")...)
			cmd.Stdin = bytes.NewReader(input)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("clean run: %v\n%s", err, out)
			}

			out := filepath.Join(dir, tc.format+"-interrupted")
			code, stderr := interruptChild(t, input, part, tc.sig, func() bool { return committedCount(out) >= 1000 }, args(out)...)
			m := regexp.MustCompile(`lczerolens: batch: interrupted after (\d+) positions: rerun with --resume\n$`).FindStringSubmatch(stderr)
			if code != tc.code || m == nil {
				t.Fatalf("exit %d, stderr %q: want %d and the interrupted line last", code, stderr, tc.code)
			}
			if strings.Count(stderr, "interrupted") != 1 {
				t.Errorf("interruption reported more than once: %q", stderr)
			}
			n, _ := strconv.Atoi(m[1])
			man := readManifest(t, out)
			t.Logf("%s after %d committed positions (manifest %d, complete %v)", tc.sig, n, man.Count, man.Complete)
			if man.Count != n || man.Complete || n < 1000 {
				t.Errorf("message says %d positions, manifest %d (complete %v)", n, man.Count, man.Complete)
			}
			files := []string{"positions.jsonl"}
			if tc.format == "json" {
				files = append(files, "results.jsonl")
			}
			for _, f := range files {
				if rows := len(readLines(t, filepath.Join(out, f))); rows != n {
					t.Errorf("%s holds %d rows, the manifest %d", f, rows, n)
				}
			}
			for _, k := range man.Keys {
				if tc.format != "npy" {
					break
				}
				fh, err := os.Open(filepath.Join(out, k.File))
				if err != nil {
					t.Fatal(err)
				}
				shape, _, err := npy.ReadHeader(fh)
				fh.Close()
				if err != nil || shape[0] != n {
					t.Errorf("%s: header shape %v (%v), the manifest %d rows", k.File, shape, err, n)
				}
			}

			cmd = cliProcess(t, args(out, "--resume")...)
			cmd.Stdin = bytes.NewReader(input)
			res, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("resume: %v\n%s", err, res)
			}
			if want := "resuming at position " + m[1]; !strings.Contains(string(res), want) {
				t.Errorf("resume does not say %q: %s", want, res)
			}
			sameFiles(t, clean, out)
		})
	}
}

// TestProbeTrainSignals: probe train stopped by a signal says so, exits 143/130 and writes no probe file.
func TestProbeTrainSignals(t *testing.T) {
	dir := t.TempDir()
	input, err := os.ReadFile(writeJSONLInput(t, dir, 4000))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			out := filepath.Join(dir, tc.sig.String()+".json")
			code, stderr := interruptChild(t, input, 100<<10, tc.sig, func() bool { return true },
				"probe", "train", "-", "--input-type", "jsonl", "--concept", "material-balance", "--batch-size", "16", "-o", out)
			if code != tc.code || !regexp.MustCompile(`lczerolens: probe train: interrupted after \d+ positions: no probe written`).MatchString(stderr) {
				t.Fatalf("exit %d, stderr %q: want %d and the interrupted line", code, stderr, tc.code)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a probe file was written: %v", err)
			}
		})
	}
}

// TestProbeTrainSignalsWhileFitting stops probe train with SIGTERM once the positions are read and the probes
// are being fitted: it stops fitting, says so, exits 143 and writes no probe file.
func TestProbeTrainSignalsWhileFitting(t *testing.T) {
	dir := t.TempDir()
	input := writeJSONLInput(t, dir, 600)
	out := filepath.Join(dir, "p.json")
	// Thousands of epochs of logistic regression for each of 35 cross-validation fits: minutes, unless stopped.
	cmd := cliProcess(t, "probe", "train", input, "--concept", "piece-under-attack", "--epochs", "5000", "--min-class", "1", "-o", out)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var log []string
	for sc.Scan() {
		log = append(log, sc.Text())
		if strings.HasPrefix(sc.Text(), "probe train: fitting ") {
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = cmd.Wait()
	code, text := cmd.ProcessState.ExitCode(), strings.Join(log, "\n")
	if code != 143 || !regexp.MustCompile(`lczerolens: probe train: interrupted after \d+ positions: while fitting; no probe written`).MatchString(text) {
		t.Fatalf("exit %d, stderr %q: want 143 and the interrupted line", code, text)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a probe file was written: %v", err)
	}
}
