package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// syncBuffer is a bytes.Buffer written by one goroutine and read by another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBatchInterruptOnTerminal runs batch on a real pseudo-terminal (util-linux script), so that its stderr
// is a terminal and it draws its progress bar, and interrupts it with SIGINT once the bar is drawn, as
// Ctrl-C would: the run exits 130 and the terminal shows no stray characters, that is after the last
// erasure of the bar comes exactly the line saying how far the run got, with no partial bar. Two inputs: a
// long file (a bar over its bytes) and a stalled FIFO (unknown size: a spinner).
func TestBatchInterruptOnTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in -short mode")
	}
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		testutil.Missing(t, "util-linux script (a pseudo-terminal for the child) is not installed")
	}
	dir := t.TempDir()
	long := filepath.Join(dir, "long.jsonl")
	// 100,000 positions in batches of 16, each committed: far longer than the wait for the first bar.
	if err := os.WriteFile(long, jsonlText(100000), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "stalled.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, input string
		bar         string // in every draw of the bar
	}{{"file", long, "% |"}, {"stalled fifo", fifo, "positions, "}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.input == fifo {
				// Opened read-write, so this does not wait for the reader; 500 positions, then nothing.
				w, err := os.OpenFile(fifo, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				if _, err := w.Write(jsonlText(500)); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			pidFile := filepath.Join(dir, "pid")
			os.Remove(pidFile)
			args := []string{os.Args[0], "batch", tc.input, "--input-type", "jsonl", "-o", out, "--lens", "activation", "--batch-size", "16"}
			for i, a := range args {
				args[i] = shellQuote(a)
			}
			line := fmt.Sprintf("echo $$ > %s; exec %s", shellQuote(pidFile), strings.Join(args, " "))
			cmd := exec.Command(scriptBin, "-qec", line, "/dev/null")
			cmd.Env = cliProcess(t).Env
			stdin, err := cmd.StdinPipe() // held open: script ends the session at the end of its input
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			var term syncBuffer
			cmd.Stdout, cmd.Stderr = &term, &term
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			// The bar is drawn once the first batch is committed; then the child is interrupted.
			deadline := time.After(2 * time.Minute)
			for !strings.Contains(term.String(), tc.bar) {
				select {
				case err := <-exited:
					t.Fatalf("the run ended (%v) before it drew a bar: %q", err, term.String())
				case <-deadline:
					_ = cmd.Process.Kill()
					<-exited
					t.Fatalf("no bar drawn: %q", term.String())
				case <-time.After(10 * time.Millisecond):
				}
			}
			raw, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
			if err != nil {
				t.Fatal(err)
			}
			if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
			case <-deadline:
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("the interrupted run did not end: %q", term.String())
			}
			got := term.String()
			if code := cmd.ProcessState.ExitCode(); code != 130 {
				t.Errorf("exit %d, want 130: %q", code, got)
			}
			const clear = "\x1b[2K\r"
			i := strings.LastIndex(got, clear)
			if i < 0 {
				t.Fatalf("the bar was never erased: %q", got)
			}
			before, after := got[:i], got[i+len(clear):]
			if !regexp.MustCompile(`\r(\S )?batch: \d+ positions, `).MatchString(before) || !strings.Contains(before, tc.bar) {
				t.Errorf("no bar drawn before the erasure: %q", before)
			}
			// The terminal turns each new line into a carriage return and a new line.
			want := regexp.MustCompile(`^lczerolens: batch: interrupted after \d+ positions: rerun with --resume\r\n$`)
			if !want.MatchString(after) {
				t.Errorf("after the bar's last erasure the terminal shows %q, want only the interrupted line", after)
			}
			t.Logf("last 200 bytes on the terminal: %q", got[max(0, len(got)-200):])
		})
	}
}
