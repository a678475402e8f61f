package npy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// DefaultBufferSize is the write buffer an Appender uses unless told otherwise.
const DefaultBufferSize = 1 << 20

// Appender grows an NPY file row by row along axis 0. The header is written
// with room for a 21-digit row count, so Sync can rewrite it in place; after
// each Sync the file is a valid NPY holding exactly Rows rows.
//
// An Appender is not safe for concurrent use. After a failed write every
// method returns the same error: the file is only trustworthy up to the last
// successful Sync.
type Appender struct {
	path     string
	f        *os.File
	w        *bufio.Writer
	rowShape []int
	rowSize  int // float32 values per row
	rows     int
	hdrLen   int64
	err      error
}

// AppenderOption configures CreateAppender and OpenAppender.
type AppenderOption func(*appenderConfig)

type appenderConfig struct{ bufSize int }

// WithBufferSize sets the size of the write buffer; callers with many
// appenders open at once use it to bound their memory.
func WithBufferSize(n int) AppenderOption {
	return func(c *appenderConfig) { c.bufSize = max(n, 4096) }
}

func newConfig(opts []AppenderOption) appenderConfig {
	c := appenderConfig{bufSize: DefaultBufferSize}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// checkRowShape returns the number of values in one row; rows of zero
// values are refused because Append could not tell how many were added.
func checkRowShape(rowShape []int) (int, error) {
	n, err := numElems(rowShape)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("row shape %v has no values", rowShape)
	}
	return n, nil
}

// HeaderLen returns the length in bytes of the header of an Appender file
// with rows of rowShape; it does not depend on the row count.
func HeaderLen(rowShape []int) (int64, error) {
	h, err := header(append([]int{0}, rowShape...))
	if err != nil {
		return 0, err
	}
	return int64(len(h)), nil
}

// CreateAppender creates (or truncates) path as an NPY file with zero rows
// of rowShape and returns an Appender positioned to add rows.
func CreateAppender(path string, rowShape []int, opts ...AppenderOption) (*Appender, error) {
	rowSize, err := checkRowShape(rowShape)
	if err != nil {
		return nil, fmt.Errorf("npy: create %s: %w", path, err)
	}
	h, err := header(append([]int{0}, rowShape...))
	if err != nil {
		return nil, fmt.Errorf("npy: create %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("npy: create: %w", err)
	}
	if _, err := f.Write(h); err != nil {
		return nil, errors.Join(fmt.Errorf("npy: create %s: write header: %w", path, err), f.Close())
	}
	return newAppender(path, f, rowShape, rowSize, 0, int64(len(h)), newConfig(opts)), nil
}

// OpenAppender reopens an Appender file to resume: it checks that the header
// describes rows of rowShape, truncates the file to exactly rows rows
// (discarding anything written after the caller's last commit), rewrites the
// header with that count and syncs. The file must hold at least rows rows.
func OpenAppender(path string, rowShape []int, rows int, opts ...AppenderOption) (a *Appender, err error) {
	rowSize, err := checkRowShape(rowShape)
	if err != nil {
		return nil, fmt.Errorf("npy: open %s: %w", path, err)
	}
	if rows < 0 {
		return nil, fmt.Errorf("npy: open %s: negative row count %d", path, rows)
	}
	want, err := HeaderLen(rowShape)
	if err != nil {
		return nil, fmt.Errorf("npy: open %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("npy: open: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, f.Close())
		}
	}()
	shape, off, err := readHeader(bufio.NewReader(io.LimitReader(f, maxHeaderLen+16)))
	if err != nil {
		return nil, fmt.Errorf("npy: open %s: %w", path, err)
	}
	if len(shape) == 0 || !slices.Equal(shape[1:], rowShape) {
		return nil, fmt.Errorf("npy: open %s: file has shape %v, want rows of shape %v", path, shape, rowShape)
	}
	if off != want {
		return nil, fmt.Errorf("npy: open %s: header is %d bytes, want %d: not written by an Appender", path, off, want)
	}
	size := want + int64(rows)*int64(rowSize)*4
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("npy: open: %w", err)
	}
	if st.Size() < size {
		return nil, fmt.Errorf("npy: open %s: file is %d bytes, %d rows need %d", path, st.Size(), rows, size)
	}
	if err := f.Truncate(size); err != nil {
		return nil, fmt.Errorf("npy: open: %w", err)
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		return nil, fmt.Errorf("npy: open: %w", err)
	}
	a = newAppender(path, f, rowShape, rowSize, rows, want, newConfig(opts))
	if err := a.Sync(); err != nil {
		return nil, err
	}
	return a, nil
}

func newAppender(path string, f *os.File, rowShape []int, rowSize, rows int, hdrLen int64, c appenderConfig) *Appender {
	return &Appender{
		path:     path,
		f:        f,
		w:        bufio.NewWriterSize(f, c.bufSize),
		rowShape: slices.Clone(rowShape),
		rowSize:  rowSize,
		rows:     rows,
		hdrLen:   hdrLen,
	}
}

// Append adds len(data)/prod(rowShape) rows; len(data) must be a multiple of
// the row size.
func (a *Appender) Append(data []float32) error {
	if a.err != nil {
		return a.err
	}
	if len(data)%a.rowSize != 0 {
		return fmt.Errorf("npy: append to %s: %d values is not a whole number of rows of shape %v", a.path, len(data), a.rowShape)
	}
	rows := len(data) / a.rowSize
	for len(data) > 0 {
		// Encode straight into the bufio buffer: no copy, no allocation.
		if a.w.Available() < 4 {
			if err := a.w.Flush(); err != nil {
				a.err = fmt.Errorf("npy: append to %s: %w", a.path, err)
				return a.err
			}
		}
		buf := a.w.AvailableBuffer()
		k := min(len(data), cap(buf)/4)
		buf = buf[:4*k]
		encode(buf, data[:k])
		if _, err := a.w.Write(buf); err != nil {
			a.err = fmt.Errorf("npy: append to %s: %w", a.path, err)
			return a.err
		}
		data = data[k:]
	}
	a.rows += rows
	return nil
}

// Rows returns the number of rows appended so far, synced or not.
func (a *Appender) Rows() int { return a.rows }

// Size returns the length in bytes the file has once everything appended so
// far is written out.
func (a *Appender) Size() int64 { return a.hdrLen + int64(a.rows)*int64(a.rowSize)*4 }

// Sync writes out buffered rows, rewrites the header with the current row
// count and fsyncs, after which the file is a valid NPY of Rows rows.
func (a *Appender) Sync() error {
	if a.err != nil {
		return a.err
	}
	if err := a.sync(); err != nil {
		a.err = fmt.Errorf("npy: sync %s: %w", a.path, err)
		return a.err
	}
	return nil
}

func (a *Appender) sync() error {
	if err := a.w.Flush(); err != nil {
		return err
	}
	h, err := header(append([]int{a.rows}, a.rowShape...))
	if err != nil {
		return err
	}
	if int64(len(h)) != a.hdrLen {
		return fmt.Errorf("header length changed from %d to %d at %d rows", a.hdrLen, len(h), a.rows)
	}
	// WriteAt leaves the file offset at the end, where the next rows go.
	if _, err := a.f.WriteAt(h, 0); err != nil {
		return err
	}
	return a.f.Sync()
}

// Close syncs and closes the file. Calling Close again returns nil.
func (a *Appender) Close() error {
	if a.f == nil {
		return nil
	}
	err := a.Sync()
	err = errors.Join(err, a.f.Close())
	a.f = nil
	if a.err == nil {
		a.err = fmt.Errorf("npy: %s: appender closed", a.path)
	}
	return err
}
