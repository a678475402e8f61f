// Package atomicfile writes files in one piece: the content goes to a temporary file in the target's
// directory, which is synced and then renamed over the target, so that a reader, a full disk or a crash
// sees either the old file or the complete new one, never a truncated one. Every single-file output of
// lczerolens (and the manifest and progress files of an output directory) is written through it.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrExists is wrapped by the errors of Check and Write when the target exists and replacing it was not
// asked for.
var ErrExists = errors.New("file exists")

// TempSuffix ends the name of every temporary file this package creates: name.PID-RANDOM.tmp next to the
// target name, unique per process and call, so that two processes never write the same temporary file.
const TempSuffix = ".tmp"

// IsTemp reports whether name (a base name) is a temporary file that Write would create for target (a
// base name): such a file left behind by a killed process holds nothing of value.
func IsTemp(name, target string) bool {
	return strings.HasPrefix(name, target+".") && strings.HasSuffix(name, TempSuffix)
}

// Check returns an error wrapping ErrExists when path exists and replace is false. Commands call it before
// long work, so that a run is not refused only once its result is ready; Write checks again.
func Check(path string, replace bool) error {
	if replace {
		return nil
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("atomicfile: %s: %w", path, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("atomicfile: %w", err)
	}
	return nil
}

// WriteFile writes data to path as Write does.
func WriteFile(path string, data []byte, replace bool) error {
	return Write(path, replace, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write creates path with what write writes (through a buffer). With replace an existing path is
// replaced atomically; without it an existing path is left alone and the error wraps ErrExists, even when
// the file appeared while write ran. On any failure path is untouched and the temporary file is removed.
func Write(path string, replace bool, write func(io.Writer) error) (err error) {
	if err := Check(path, replace); err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := createTemp(dir, base)
	if err != nil {
		return err
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				_ = f.Close()
			}
			_ = os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	if err := write(bw); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync %s: %w", path, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := place(tmp, path, replace); err != nil {
		return err
	}
	return SyncDir(dir)
}

// createTemp creates a new temporary file for target base in dir with the permissions os.Create gives
// (0666 less the umask; os.CreateTemp would give 0600).
func createTemp(dir, base string) (*os.File, error) {
	for range 100 {
		name := filepath.Join(dir, fmt.Sprintf("%s.%d-%08x%s", base, os.Getpid(), rand.Uint32(), TempSuffix))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("atomicfile: create temporary file for %s: %w", filepath.Join(dir, base), err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("atomicfile: create temporary file for %s: no free name", filepath.Join(dir, base))
}

// place moves tmp to path. Without replace it links instead of renaming, because a link fails when path
// exists and a rename would silently replace a file that appeared meanwhile.
func place(tmp, path string, replace bool) error {
	if replace {
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("atomicfile: %w", err)
		}
		return nil
	}
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		if err := os.Remove(tmp); err != nil {
			return fmt.Errorf("atomicfile: %w", err)
		}
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("atomicfile: %s: %w", path, ErrExists)
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EXDEV):
		// A file system without hard links: check, then rename (a file appearing in between is replaced).
		if err := Check(path, false); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("atomicfile: %w", err)
		}
		return nil
	}
	return fmt.Errorf("atomicfile: %w", err)
}

// SyncDir makes the entries of dir (a rename into it) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: sync directory: %w", err)
	}
	err = d.Sync()
	if err = errors.Join(err, d.Close()); err != nil {
		return fmt.Errorf("atomicfile: sync directory %s: %w", dir, err)
	}
	return nil
}
