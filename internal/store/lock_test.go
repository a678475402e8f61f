package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const lockChildEnv = "LCZEROLENS_STORE_LOCK_DIR"

// TestLockChild is the process TestLockHeldByAnotherProcess starts: it opens the directory named by the
// environment, says so on stdout, and waits (holding the lock) until it is killed.
func TestLockChild(t *testing.T) {
	dir := os.Getenv(lockChildEnv)
	if dir == "" {
		t.Skip("helper process for TestLockHeldByAnotherProcess")
	}
	w, err := Open(dir, testOptions(FormatNPY))
	if err != nil {
		t.Fatal(err)
	}
	if err := feed(w, 0, 10, 4); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("locked")
	// Until killed. A blocking read, not select{}: with no timer pending the runtime would end a process
	// whose goroutines all block as a deadlock, releasing the lock early. Stdin closes if the parent dies.
	_, _ = io.Copy(io.Discard, os.Stdin)
	t.Fatal("stdin closed before the parent killed this process")
}

// TestLockRefusesSecondWriter: while a Writer has a directory open, a second Open of it (fresh, with
// Resume or with Force) fails at once with ErrLocked naming the holder, and touches nothing: the first
// writer's output ends identical to an undisturbed one. After Close the directory opens again and holds
// no lock file.
func TestLockRefusesSecondWriter(t *testing.T) {
	const records = 30
	ref := filepath.Join(t.TempDir(), "ref")
	w, err := Open(ref, testOptions(FormatNPY))
	if err != nil {
		t.Fatal(err)
	}
	if err := feed(w, 0, records, 7); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "out")
	w, err = Open(dir, testOptions(FormatNPY))
	if err != nil {
		t.Fatal(err)
	}
	if err := feed(w, 0, records/2, 7); err != nil {
		t.Fatal(err)
	}
	for _, edit := range []func(*Options){nil, func(o *Options) { o.Resume = true }, func(o *Options) { o.Force = true }} {
		opts := testOptions(FormatNPY)
		if edit != nil {
			edit(&opts)
		}
		w2, err := Open(dir, opts)
		if err == nil {
			w2.Close()
			t.Fatalf("a second Open (resume %v, force %v) succeeded while the first writer runs", opts.Resume, opts.Force)
		}
		want := fmt.Sprintf("output directory %s is in use by another lczerolens process (pid %d, started ", dir, os.Getpid())
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), want) {
			t.Fatalf("second Open: %v, want ErrLocked saying %q", err, want)
		}
	}
	if err := feed(w, records/2, records, 7); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, ref, dir) // the lock file is gone too, or the listings would differ
	opts := testOptions(FormatNPY)
	opts.Resume = true
	if w, err = Open(dir, opts); err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLockHeldByAnotherProcess: a lock held by another process refuses Open, naming that process's pid;
// once the process is SIGKILLed, its lock file stays behind but no longer blocks a resume.
func TestLockHeldByAnotherProcess(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no file locks on windows")
	}
	dir := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // held open: the child waits on it
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child said %q (%v)", line, err)
	}
	opts := testOptions(FormatNPY)
	opts.Resume = true
	_, err = Open(dir, opts)
	want := fmt.Sprintf("is in use by another lczerolens process (pid %d, started ", cmd.Process.Pid)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open while another process writes: %v, want ErrLocked saying %q", err, want)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := os.Stat(filepath.Join(dir, LockFile)); err != nil {
		t.Fatalf("the killed process left no lock file (%v): the test would prove nothing", err)
	}
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("resume after the holder was killed: %v", err)
	}
	if _, _, rec := w.Done(); rec != 10 {
		t.Errorf("resumed at record %d, want the 10 the killed process committed", rec)
	}
	if err := feed(w, 10, 20, 4); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, dir, FormatNPY, 20, true)
}

// TestLockDirAdopted: a lock taken with LockDir before Open refuses a second writer (LockDir or Open) as
// Open's own would; Open adopts it, so the Writer releases it at Close and the caller's Release after that
// does nothing; the output equals one opened without it. An Open that fails releases the adopted lock.
func TestLockDirAdopted(t *testing.T) {
	const records = 12
	ref := filepath.Join(t.TempDir(), "ref")
	w, err := Open(ref, testOptions(FormatNPY))
	if err != nil {
		t.Fatal(err)
	}
	if err := feed(w, 0, records, 5); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "out")
	l, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if _, err := LockDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second LockDir: %v, want ErrLocked", err)
	}
	if w2, err := Open(dir, testOptions(FormatNPY)); !errors.Is(err, ErrLocked) {
		if err == nil {
			w2.Close()
		}
		t.Fatalf("Open without the lock: %v, want ErrLocked", err)
	}
	other := testOptions(FormatNPY)
	other.Lock = l
	if _, err := Open(filepath.Join(t.TempDir(), "elsewhere"), other); err == nil || errors.Is(err, ErrLocked) {
		t.Fatalf("Open of another directory with this lock: %v, want a refusal", err)
	}
	opts := testOptions(FormatNPY)
	opts.Lock = l
	if w, err = Open(dir, opts); err != nil {
		t.Fatalf("Open adopting the lock: %v", err)
	}
	if _, err := Open(dir, opts); err == nil {
		t.Fatal("a Lock served a second Open")
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("Release after Open dropped the Writer's lock: LockDir says %v", err)
	}
	if err := feed(w, 0, records, 5); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, ref, dir) // no lock file left behind

	// An Open that fails (the directory is not empty and neither Resume nor Force is set) releases the lock
	// it adopted; the directory LockDir did not create stays.
	if l, err = LockDir(dir); err != nil {
		t.Fatal(err)
	}
	opts.Lock = l
	if _, err := Open(dir, opts); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Open of a full directory: %v, want ErrNotEmpty", err)
	}
	l2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("the failed Open kept the lock: %v", err)
	}
	if err := l2.Release(); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, ref, dir)
}

// TestLockDirRelease: a lock released before any Open removes the directory LockDir created (nothing was
// written), keeps one that existed, and lets the next writer in.
func TestLockDirRelease(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "fresh")
	l, err := LockDir(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("a second Release: %v", err)
	}
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory LockDir created is still there (%v)", err)
	}
	existing := t.TempDir()
	if l, err = LockDir(existing); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(existing)
	if err != nil || len(entries) != 0 {
		t.Errorf("the existing directory after Release: %v %v, want it there and empty", entries, err)
	}
	w, err := Open(existing, testOptions(FormatNPY))
	if err != nil {
		t.Fatalf("Open after Release: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var none *Lock
	if err := none.Release(); err != nil {
		t.Fatal(err)
	}
}
