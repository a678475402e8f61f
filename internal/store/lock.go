package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// LockFile is the lock file of an output directory. A Writer holds an exclusive OS lock on it (flock)
// from Open to Close or Abort, so that two processes never write one directory; the kernel drops the
// lock when its process dies, so the file a killed run leaves behind never blocks a resume. It names
// the holder (pid and start time) for the message of the process that is refused.
const LockFile = ".lczerolens.lock"

// Lock is an output directory's lock taken before Open, so that a command refuses a directory another
// process holds at once, before slow work such as loading a network. Open adopts it (Options.Lock); until
// then the caller holds it and releases it with Release when it fails before Open.
type Lock struct {
	dir     string
	held    *dirLock // nil once adopted or released
	created bool     // LockDir made dir
}

// LockDir creates dir if it is missing and takes its lock without waiting, as Open would: when another
// process (or a Writer of this one) holds it, the error wraps ErrLocked and names the holder.
func LockDir(dir string) (*Lock, error) {
	_, err := os.Stat(dir)
	created := errors.Is(err, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: create output directory: %w", err)
	}
	held, err := lockDir(dir)
	if err != nil {
		if created {
			_ = os.Remove(dir) // still empty: nothing was written
		}
		return nil, err
	}
	return &Lock{dir: dir, held: held, created: created}, nil
}

// Release drops a lock no Writer adopted, and removes the directory when LockDir created it and it is
// still empty, so that a command failing before it wrote anything leaves no trace. After Open adopted the
// lock it does nothing (the Writer releases it); it is safe on a nil Lock and when called twice.
func (l *Lock) Release() error {
	if l == nil || l.held == nil {
		return nil
	}
	err := l.held.release()
	l.held = nil
	if l.created {
		_ = os.Remove(l.dir) // fails, as it should, once the directory holds anything
	}
	return err
}

// adopt hands the held lock of dir over to a Writer (nil for a nil Lock: the Writer takes its own).
func (l *Lock) adopt(dir string) (*dirLock, error) {
	switch {
	case l == nil:
		return nil, nil
	case l.held == nil:
		return nil, fmt.Errorf("store: the lock of output directory %s was already released or adopted", l.dir)
	case filepath.Clean(l.dir) != filepath.Clean(dir):
		return nil, fmt.Errorf("store: open %s with the lock of %s", dir, l.dir)
	}
	held := l.held
	l.held = nil
	return held, nil
}

// dirLock is a held output-directory lock.
type dirLock struct {
	f    *os.File
	path string
}

// lockDir takes the lock of dir without waiting: when another process (or another Writer of this one)
// holds it, the error wraps ErrLocked and names the holder.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, LockFile)
	for range 100 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("store: lock output directory %s: %w", dir, err)
		}
		held, err := tryLock(f)
		if err != nil || !held {
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("store: lock output directory %s: %w", dir, err)
			}
			return nil, &sentinelError{fmt.Sprintf("store: output directory %s is in use by another lczerolens process (%s)", dir, lockHolder(path)), ErrLocked}
		}
		// The previous holder removes the file when it releases the lock: if that happened between our
		// open and our lock, we hold the lock of a file no longer in the directory, and try again.
		fi, err1 := f.Stat()
		pi, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(fi, pi) {
			l := &dirLock{f: f, path: path}
			if err := l.describe(); err != nil {
				return nil, errors.Join(err, l.release())
			}
			return l, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("store: lock output directory %s: the lock file keeps changing", dir)
}

// describe writes the holder's pid and start time into the lock file.
func (l *dirLock) describe() error {
	info := fmt.Sprintf("pid %d\nstarted %s\n", os.Getpid(), time.Now().Format(time.RFC3339))
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("store: write %s: %w", l.path, err)
	}
	if _, err := l.f.WriteAt([]byte(info), 0); err != nil {
		return fmt.Errorf("store: write %s: %w", l.path, err)
	}
	return nil
}

// lockHolder describes the process named in a lock file: "pid 1234, started 12:01:02".
func lockHolder(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "pid unknown"
	}
	pid, started := "", ""
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "pid "); ok {
			if _, err := strconv.Atoi(v); err == nil {
				pid = v
			}
		}
		if v, ok := strings.CutPrefix(line, "started "); ok {
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				started = t.Local().Format("15:04:05")
				if y, m, d := t.Local().Date(); y != time.Now().Year() || m != time.Now().Month() || d != time.Now().Day() {
					started = t.Local().Format("2006-01-02 15:04:05")
				}
			}
		}
	}
	switch {
	case pid == "": // the holder has not written its name yet
		return "pid unknown"
	case started == "":
		return "pid " + pid
	}
	return "pid " + pid + ", started " + started
}

// release removes the lock file and drops the lock (removing first, so that no other process can lock
// the file between the two). It is safe on a nil or released lock.
func (l *dirLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(l.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	err = errors.Join(err, l.f.Close())
	l.f = nil
	if err != nil {
		return fmt.Errorf("store: release lock of output directory: %w", err)
	}
	return nil
}
