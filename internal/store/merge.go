package store

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lczerolens/lczerolens/internal/npy"
)

const (
	// mergeBufSize is the read buffer of each file a merge reads.
	mergeBufSize = 32 << 10
	// mergeMaxFiles bounds the NPY files read at once (and with mergeBufSize
	// the memory for them): with many parts, keys are merged a few at a time.
	mergeMaxFiles = 256
)

// Merge writes into dst the union of the complete output directories parts
// (shards of one run): positions with their results, and error records,
// interleaved by input record number, exactly as one run over the whole
// input writes them. The parts must hold disjoint records. opts describes
// the output as for Open (Resume is refused): every part must have its
// settings (Manifest.Differences, the "shard" field aside), and all must
// report the same number of input records. Memory does not grow with the size of the parts:
// rows are streamed through a k-way merge on their "record" numbers.
func Merge(dst string, parts []string, opts Options) (err error) {
	if opts.Resume {
		return errors.New("store: merge: a merge cannot be resumed: rerun it with Force")
	}
	if len(parts) == 0 {
		return errors.New("store: merge: no directories to merge")
	}
	if _, err := opts.validate(); err != nil {
		return fmt.Errorf("store: merge: %w", err)
	}
	want, err := opts.manifest()
	if err != nil {
		return fmt.Errorf("store: merge: %w", err)
	}
	ms := make([]*Manifest, len(parts))
	var keys []ManifestKey
	keysFrom := -1
	nonfinite := 0
	for i, dir := range parts {
		m, err := ReadManifest(dir)
		if err != nil {
			return fmt.Errorf("store: merge: %w", err)
		}
		ms[i] = m
		mismatch := func(format string, args ...any) error {
			return &sentinelError{fmt.Sprintf("store: merge: %s: ", dir) + fmt.Sprintf(format, args...), ErrMismatch}
		}
		if !m.Complete {
			return mismatch("the run that wrote it did not finish (manifest complete is false)")
		}
		// The shard field is what sets the parts apart; the merged output describes the whole run.
		if d := m.Differences(&want, "shard"); len(d) > 0 {
			if strings.HasPrefix(d[0].Setting, "lens.options.") {
				a, _ := canonicalJSON(m.Lens.Options)
				b, _ := canonicalJSON(want.Lens.Options)
				return mismatch("lens options %s, want %s", a, b)
			}
			return mismatch("%s %s, want %s", d[0].Name, d[0].A, d[0].B)
		}
		if m.Records != ms[0].Records {
			return mismatch("%d input records, %s has %d", m.Records, parts[0], ms[0].Records)
		}
		if m.Count > 0 {
			if keysFrom < 0 {
				keys, keysFrom = m.Keys, i
			} else if !sameKeys(m.Keys, keys) {
				return mismatch("result keys %s, %s has %s", keyNames(m.Keys), parts[keysFrom], keyNames(keys))
			}
		}
		nonfinite += m.Nonfinite
		if sameDir(dst, dir) {
			return &sentinelError{fmt.Sprintf("store: merge: the output directory %s is also an input", dst), ErrNotEmpty}
		}
	}

	w, err := Open(dst, opts)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, w.Abort())
		}
	}()
	if keysFrom >= 0 {
		ks := make([]keyInfo, len(keys))
		for i, k := range keys {
			ks[i] = keyInfo{Key: k.Key, Shape: k.Shape}
		}
		if err := w.fixKeys(ks); err != nil {
			return fmt.Errorf("store: merge: keys of %s: %w", parts[keysFrom], err)
		}
		if w.format == FormatNPY {
			for i, k := range keys {
				if k.File != w.keys[i].file {
					return fmt.Errorf("store: merge: %s stores key %q in %s, want %s", parts[keysFrom], k.Key, k.File, w.keys[i].file)
				}
			}
			if err := w.createKeyFiles(); err != nil {
				return w.fail(err)
			}
		}
	}
	if err := w.mergePositions(parts, ms); err != nil {
		return err
	}
	if err := w.mergeErrors(parts, ms); err != nil {
		return err
	}
	if w.format == FormatNPY {
		per := max(1, mergeMaxFiles/len(parts))
		for lo := 0; lo < len(w.keys); lo += per {
			if err := w.mergeKeys(parts, ms, lo, min(lo+per, len(w.keys))); err != nil {
				return err
			}
		}
	}
	w.records, w.nonfinite = ms[0].Records, nonfinite
	return w.Close()
}

func sameKeys(a, b []ManifestKey) bool {
	return slices.EqualFunc(a, b, func(x, y ManifestKey) bool {
		return x.Key == y.Key && x.File == y.File && slices.Equal(x.Shape, y.Shape)
	})
}

func keyNames(keys []ManifestKey) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = fmt.Sprintf("%q%v", k.Key, k.Shape)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// sameDir reports whether a and b name the same existing directory.
func sameDir(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// mergePositions writes positions.jsonl (and results.jsonl, whose rows go
// with them) in record order.
func (w *Writer) mergePositions(parts []string, ms []*Manifest) (err error) {
	srcs := make([]*rowReader, len(parts))
	var results []*bufio.Reader
	var files []*os.File
	defer func() {
		for _, s := range srcs {
			if s != nil {
				s.f.Close()
			}
		}
		for _, f := range files {
			f.Close()
		}
	}()
	for i, dir := range parts {
		if srcs[i], err = openRows(filepath.Join(dir, PositionsFile), i); err != nil {
			return err
		}
		if w.format == FormatJSON {
			f, err := os.Open(filepath.Join(dir, ResultsFile))
			if err != nil {
				return fmt.Errorf("store: merge: %w", err)
			}
			files = append(files, f)
			results = append(results, bufio.NewReaderSize(f, mergeBufSize))
		}
	}
	var prefix []byte
	err = mergeRows(srcs, func(s *rowReader) error {
		if err := w.positions.write(s.line); err != nil {
			return w.fail(err)
		}
		if w.format == FormatJSON {
			// A results row starts with its position's row: a cheap check that the two files line up.
			prefix = append(append(append(prefix[:0], `{"position":`...), s.line[:len(s.line)-1]...), `,"results":`...)
			if err := w.copyResultRow(results[s.part], prefix); err != nil {
				return fmt.Errorf("store: merge: %s row %d: %w", filepath.Join(parts[s.part], ResultsFile), s.rows, err)
			}
		}
		w.count++
		return nil
	})
	if err != nil {
		return err
	}
	for i, s := range srcs {
		if s.rows != ms[i].Count {
			return fmt.Errorf("store: merge: %s has %d rows, its manifest counts %d positions", s.path, s.rows, ms[i].Count)
		}
		if w.format == FormatJSON {
			if _, err := results[i].ReadByte(); err != io.EOF {
				return fmt.Errorf("store: merge: %s has more rows than its %d positions", filepath.Join(parts[i], ResultsFile), ms[i].Count)
			}
		}
	}
	return nil
}

// copyResultRow copies one row of results.jsonl, which may be longer than
// any buffer, checking that it starts with prefix.
func (w *Writer) copyResultRow(r *bufio.Reader, prefix []byte) error {
	for first := true; ; first = false {
		frag, err := r.ReadSlice('\n')
		if first && len(frag) >= len(prefix) && !bytes.HasPrefix(frag, prefix) {
			return errors.New("does not hold the position of the same row of positions.jsonl")
		}
		if len(frag) > 0 {
			if err := w.results.write(frag); err != nil {
				return w.fail(err)
			}
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return errors.New("missing or unterminated row")
		default:
			return err
		}
	}
}

// mergeErrors writes errors.jsonl in record order.
func (w *Writer) mergeErrors(parts []string, ms []*Manifest) (err error) {
	srcs := make([]*rowReader, len(parts))
	defer func() {
		for _, s := range srcs {
			if s != nil {
				s.f.Close()
			}
		}
	}()
	for i, dir := range parts {
		if srcs[i], err = openRows(filepath.Join(dir, ErrorsFile), i); err != nil {
			return err
		}
	}
	err = mergeRows(srcs, func(s *rowReader) error {
		if err := w.errs.write(s.line); err != nil {
			return w.fail(err)
		}
		w.nerrors++
		return nil
	})
	if err != nil {
		return err
	}
	for i, s := range srcs {
		if s.rows != ms[i].Errors {
			return fmt.Errorf("store: merge: %s has %d rows, its manifest counts %d errors", s.path, s.rows, ms[i].Errors)
		}
	}
	return nil
}

// mergeKeys appends the rows of keys [lo, hi) in the order of positions.jsonl, read once more per group
// so that the number of open files stays bounded however many keys and parts there are.
func (w *Writer) mergeKeys(parts []string, ms []*Manifest, lo, hi int) (err error) {
	var srcs []*rowReader
	var files []*os.File
	readers := make([][]*bufio.Reader, len(parts))
	defer func() {
		for _, s := range srcs {
			s.f.Close()
		}
		for _, f := range files {
			f.Close()
		}
	}()
	maxSize := 0
	for i, dir := range parts {
		if ms[i].Count == 0 {
			continue
		}
		s, err := openRows(filepath.Join(dir, PositionsFile), i)
		if err != nil {
			return err
		}
		srcs = append(srcs, s)
		for k := lo; k < hi; k++ {
			key := &w.keys[k]
			maxSize = max(maxSize, key.size)
			path := filepath.Join(dir, key.file)
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("store: merge: %w", err)
			}
			files = append(files, f)
			br := bufio.NewReaderSize(f, mergeBufSize)
			shape, off, err := npy.ReadHeader(br)
			if err != nil {
				return fmt.Errorf("store: merge: %s: %w", path, err)
			}
			if want := append([]int{ms[i].Count}, key.Shape...); !slices.Equal(shape, want) {
				return fmt.Errorf("store: merge: %s has shape %v, its manifest says %v", path, shape, want)
			}
			st, err := f.Stat()
			if err != nil {
				return fmt.Errorf("store: merge: %w", err)
			}
			if want := off + int64(ms[i].Count)*int64(key.size)*4; st.Size() != want {
				return fmt.Errorf("store: merge: %s is %d bytes, its shape needs %d", path, st.Size(), want)
			}
			readers[i] = append(readers[i], br)
		}
	}
	buf := make([]byte, 4*maxSize)
	vals := make([]float32, maxSize)
	return mergeRows(srcs, func(s *rowReader) error {
		for j, br := range readers[s.part] {
			key := &w.keys[lo+j]
			b, v := buf[:4*key.size], vals[:key.size]
			if _, err := io.ReadFull(br, b); err != nil {
				return fmt.Errorf("store: merge: read %s: %w", filepath.Join(parts[s.part], key.file), err)
			}
			npy.Decode(v, b)
			if err := key.app.Append(v); err != nil {
				return w.fail(fmt.Errorf("store: %w", err))
			}
		}
		return nil
	})
}

// rowReader reads the rows of one part's positions.jsonl or errors.jsonl
// with their input record numbers.
type rowReader struct {
	part int
	path string
	f    *os.File
	r    *bufio.Reader
	line []byte // the current row, newline included
	rec  int    // its record
	rows int    // rows read, the current one included
	eof  bool
}

func openRows(path string, part int) (*rowReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store: merge: %w", err)
	}
	return &rowReader{part: part, path: path, f: f, r: bufio.NewReaderSize(f, mergeBufSize)}, nil
}

// next reads the following row; at the end eof is set.
func (s *rowReader) next() error {
	s.line = s.line[:0]
	for {
		frag, err := s.r.ReadSlice('\n')
		s.line = append(s.line, frag...)
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(s.line) == 0:
			s.eof = true
			return nil
		case errors.Is(err, io.EOF):
			return fmt.Errorf("store: merge: %s: row %d is not terminated", s.path, s.rows+1)
		default:
			return fmt.Errorf("store: merge: read %s: %w", s.path, err)
		}
		break
	}
	rec, err := rowRecord(s.line)
	if err != nil {
		return fmt.Errorf("store: merge: %s row %d: %w", s.path, s.rows+1, err)
	}
	if s.rows > 0 && rec < s.rec {
		return fmt.Errorf("store: merge: %s row %d: record %d follows record %d: rows are not in input order", s.path, s.rows+1, rec, s.rec)
	}
	s.rec = rec
	s.rows++
	return nil
}

// rowRecord returns the "record" member of a row. The Writer puts it right
// after "source", and no JSON string can contain the text `"record":` (its
// quotes would be escaped), so the first occurrence is the member; anything
// else falls back to a full parse.
func rowRecord(line []byte) (int, error) {
	const key = `"record":`
	if i := bytes.Index(line, []byte(key)); i >= 0 {
		j := i + len(key)
		k := j
		for k < len(line) && line[k] >= '0' && line[k] <= '9' {
			k++
		}
		if k > j && k-j < 16 && k < len(line) && (line[k] == ',' || line[k] == '}') {
			if n, err := strconv.Atoi(string(line[j:k])); err == nil {
				return n, nil
			}
		}
	}
	var row struct {
		Record *int `json:"record"`
	}
	if err := json.Unmarshal(line, &row); err != nil {
		return 0, fmt.Errorf("not a JSON object: %w", err)
	}
	if row.Record == nil || *row.Record < 0 {
		return 0, errors.New(`no "record" number (written by an older lczerolens?)`)
	}
	return *row.Record, nil
}

// mergeRows calls emit for every row of srcs in (record, part) order. A
// record found in two parts is an error: the parts would overlap.
func mergeRows(srcs []*rowReader, emit func(*rowReader) error) error {
	h := make(rowHeap, 0, len(srcs))
	for _, s := range srcs {
		if err := s.next(); err != nil {
			return err
		}
		if !s.eof {
			h = append(h, s)
		}
	}
	heap.Init(&h)
	var last *rowReader
	lastRec := -1
	for len(h) > 0 {
		s := h[0]
		if last != nil && s.rec == lastRec && s != last {
			return &sentinelError{fmt.Sprintf("store: merge: record %d is in both %s and %s: the directories overlap", s.rec, last.path, s.path), ErrMismatch}
		}
		if err := emit(s); err != nil {
			return err
		}
		last, lastRec = s, s.rec
		if err := s.next(); err != nil {
			return err
		}
		if s.eof {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
	}
	return nil
}

// rowHeap orders readers by their current row's record, then by part.
type rowHeap []*rowReader

func (h rowHeap) Len() int { return len(h) }
func (h rowHeap) Less(i, j int) bool {
	if h[i].rec != h[j].rec {
		return h[i].rec < h[j].rec
	}
	return h[i].part < h[j].part
}
func (h rowHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *rowHeap) Push(x any)   { *h = append(*h, x.(*rowReader)) }
func (h *rowHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
