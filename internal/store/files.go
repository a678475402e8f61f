package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lczerolens/lczerolens/internal/atomicfile"
)

// writeAtomic replaces dir/name with data so that a crash leaves either the
// old or the new content: a temporary file unique to this process, fsync,
// rename, fsync of dir.
func writeAtomic(dir, name string, data []byte) error {
	if err := atomicfile.WriteFile(filepath.Join(dir, name), data, true); err != nil {
		return fmt.Errorf("store: write %s: %w", name, err)
	}
	return nil
}

// stream is an append-only buffered file that counts its bytes.
type stream struct {
	name string
	f    *os.File
	w    *bufio.Writer
	n    int64 // bytes written, buffered included
}

func createStream(path string, bufSize int) (*stream, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: create: %w", err)
	}
	return &stream{name: filepath.Base(path), f: f, w: bufio.NewWriterSize(f, bufSize)}, nil
}

// openStream opens an existing file, truncated to its committed length.
func openStream(path string, size int64, bufSize int) (s *stream, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("store: resume: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, f.Close())
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("store: resume: %w", err)
	}
	name := filepath.Base(path)
	if st.Size() < size {
		return nil, fmt.Errorf("store: resume: %s is %d bytes, shorter than the %d committed", name, st.Size(), size)
	}
	if size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil {
			return nil, fmt.Errorf("store: resume: %w", err)
		}
		if last[0] != '\n' {
			return nil, fmt.Errorf("store: resume: %s does not end a line at its committed length %d", name, size)
		}
	}
	if err := f.Truncate(size); err != nil {
		return nil, fmt.Errorf("store: resume: %w", err)
	}
	if _, err := f.Seek(size, 0); err != nil {
		return nil, fmt.Errorf("store: resume: %w", err)
	}
	return &stream{name: name, f: f, w: bufio.NewWriterSize(f, bufSize), n: size}, nil
}

func (s *stream) write(b []byte) error {
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("store: write %s: %w", s.name, err)
	}
	s.n += int64(len(b))
	return nil
}

func (s *stream) sync() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("store: write %s: %w", s.name, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("store: sync %s: %w", s.name, err)
	}
	return nil
}

func (s *stream) close() error {
	if s.f == nil {
		return nil
	}
	err := s.w.Flush()
	err = errors.Join(err, s.f.Close())
	s.f = nil
	if err != nil {
		return fmt.Errorf("store: close %s: %w", s.name, err)
	}
	return nil
}

// wrapStreams applies Options.WrapFile to the streams, before anything is buffered.
func (w *Writer) wrapStreams() {
	if w.wrapFile == nil {
		return
	}
	for _, s := range []*stream{w.positions, w.errs, w.results} {
		if s != nil {
			s.w.Reset(w.wrapFile(s.f.Name(), s.f))
		}
	}
}
