package store

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

const (
	crashDirEnv    = "LCZEROLENS_STORE_CRASH_DIR"
	crashFormatEnv = "LCZEROLENS_STORE_CRASH_FORMAT"
	crashRecords   = 600
	crashCommit    = 9 // positions per commit: most commits fall mid-record
	crashKills     = 10
)

// TestCrashChild is the process TestCrashResume kills: it resumes (or
// starts) the output named by the environment and feeds it to the end.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashResume")
	}
	opts := testOptions(Format(os.Getenv(crashFormatEnv)))
	opts.Resume = true
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	pos, nerr, rec := w.Done()
	if pos != positionsBefore(rec) || nerr != errorsBefore(rec) {
		t.Fatalf("resumed with %d positions and %d errors at record %d, want %d and %d", pos, nerr, rec, positionsBefore(rec), errorsBefore(rec))
	}
	if err := feed(w, rec, crashRecords, crashCommit); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCrashResume SIGKILLs a writing process at random moments, checks after
// each kill that a resume restores exactly the committed records, and that
// the finished directory is byte-identical to an uninterrupted run.
func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-runs the test binary many times")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, format := range []Format{FormatNPY, FormatJSON} {
		t.Run(string(format), func(t *testing.T) {
			ref := filepath.Join(t.TempDir(), "ref")
			start := time.Now()
			w, err := Open(ref, testOptions(format))
			if err != nil {
				t.Fatal(err)
			}
			if err := feed(w, 0, crashRecords, crashCommit); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			span := time.Since(start)

			refLines, err := os.Stat(filepath.Join(ref, PositionsFile))
			if err != nil {
				t.Fatal(err)
			}
			lineLen := refLines.Size() / int64(positionsBefore(crashRecords))

			dir := filepath.Join(t.TempDir(), "out")
			finished, midRun, recs := false, 0, []int{}
			for i := 0; !finished; i++ {
				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
				cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashFormatEnv+"="+string(format))
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				if i < crashKills {
					// Kill once positions.jsonl passes a random size, so kills
					// spread over the whole run whatever the machine's speed.
					var from int64 // beyond what the last child left on disk
					if st, err := os.Stat(filepath.Join(dir, PositionsFile)); err == nil {
						from = st.Size()
					}
					// Spread the remaining kills evenly over the remaining run.
					left := max(refLines.Size()-from, 0) + lineLen
					target := from + rng.Int64N(2*left/int64(crashKills-i+1)+1)
					waitForSize(filepath.Join(dir, PositionsFile), target, exited)
					time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Millisecond))))
					_ = cmd.Process.Kill() // fails only if it has already exited
				}
				err := <-exited
				var exit *exec.ExitError
				switch {
				case err == nil:
					finished = true
					continue
				case errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled():
				default:
					t.Fatalf("child failed: %v\n%s", err, out.String())
				}
				if i%2 == 1 {
					continue // let the next child resume the raw crashed state
				}
				opts := testOptions(format)
				opts.Resume = true
				w, err := Open(dir, opts)
				if err != nil {
					t.Fatalf("resume after kill %d: %v", i, err)
				}
				_, _, rec := w.Done()
				recs = append(recs, rec)
				if rec > 0 && rec < crashRecords {
					midRun++
				}
				checkOutput(t, dir, format, rec, false)
				if err := w.Abort(); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("reference run %v; resumed at records %v: %d of them mid-run", span, recs, midRun)
			checkOutput(t, dir, format, crashRecords, true)
			compareDirs(t, ref, dir)
		})
	}
}

// waitForSize returns once path is at least size bytes long or the process
// behind exited has ended (its result is put back for the caller).
func waitForSize(path string, size int64, exited chan error) {
	for {
		select {
		case err := <-exited:
			exited <- err
			return
		case <-time.After(time.Millisecond):
		}
		if st, err := os.Stat(path); err == nil && st.Size() >= size {
			return
		}
	}
}
