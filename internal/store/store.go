// Package store writes the output directory of lczerolens's batch and
// analyse commands: per-key NPY files (or one JSON Lines file of results), a
// positions index, an errors log and a manifest, committed in chunks so that a
// killed run resumes where its last commit left off and finishes with files
// byte-identical to an uninterrupted run. Merge joins the directories of the
// shards of one run into the directory the whole run writes.
//
// Layout of a directory (see Writer for the commit protocol):
//
//	manifest.json    what the directory holds; "complete" is false until Close
//	progress.json    committed counts and byte lengths, the source of truth on resume
//	positions.jsonl  one {"source","record","game","ply","fen","move"} object per position, row i = position i
//	errors.jsonl     one {"source","record","game","line","reason"} object per bad input record
//	KEY.npy          format npy: one float32 file per result key, positions stacked on axis 0
//	results.jsonl    format json: one {"position":{...},"results":{KEY:{"dtype","shape","data"}}} per position
//
// In the json format NaN and infinities are written as the strings "NaN",
// "Infinity" and "-Infinity"; the manifest's "nonfinite" counts them (in both
// formats) so a reader knows whether to expect them.
package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/lczerolens/lczerolens/internal/npy"
)

// Format selects how results are stored.
type Format string

// The supported formats.
const (
	FormatNPY  Format = "npy"
	FormatJSON Format = "json"
)

// Names of the files in an output directory besides the per-key NPY files.
const (
	ManifestFile  = "manifest.json"
	ProgressFile  = "progress.json"
	PositionsFile = "positions.jsonl"
	ErrorsFile    = "errors.jsonl"
	ResultsFile   = "results.jsonl"
)

// ManifestFormat and FormatVersion identify the directory layout in
// manifest.json.
const (
	ManifestFormat = "lczerolens-batch"
	FormatVersion  = 1
)

// Sentinel errors callers branch on (both are usage errors, not failures).
var (
	// ErrNotEmpty: the output directory holds files and neither Resume nor
	// Force was given, or Force was refused because of foreign files.
	ErrNotEmpty = errors.New("output directory is not empty")
	// ErrMismatch: Resume was asked for an output made with another model,
	// lens, lens options or format.
	ErrMismatch = errors.New("output was made with different settings")
)

// Options says what Open creates or resumes.
type Options struct {
	Format      Format // "" means npy
	Resume      bool   // continue the committed progress of an existing directory
	Force       bool   // wipe an existing lczerolens output directory first
	ToolVersion string
	Model       ModelInfo
	Lens        LensInfo
	// Extra holds additional top-level manifest fields; they must not reuse
	// the manifest's own field names and must be the same on resume for the
	// output to be byte-identical.
	Extra map[string]any
	// WrapFile, when set, wraps the file under each JSON Lines stream
	// (positions, errors, results) given its path: a seam for injecting
	// write faults (a full disk) in tests.
	WrapFile func(path string, w io.Writer) io.Writer
}

// ModelInfo identifies the network; only SHA256 must match on resume.
type ModelInfo struct{ Path, SHA256 string }

// LensInfo identifies the lens and its options; both must match on resume.
type LensInfo struct {
	Name    string
	Options map[string]any
}

// PositionMeta says where an analysed position came from.
type PositionMeta struct {
	Source string
	Record int // 0-based input record (game or line); Merge orders rows by it
	Game   int // -1 when not from a game
	Ply    int
	FEN    string
	Move   *string // the move played from the position, nil if none
}

// Result is one named tensor of a position's analysis; Shape excludes the
// position axis. A JSON-only result (records rather than a tensor) has JSON
// set and no Shape or Data: the json format writes it among the results as
// {"dtype":"json","data":JSON}, the npy format leaves it out, and neither
// lists it among the keys.
type Result struct {
	Key   string
	Shape []int
	Data  []float32
	JSON  json.RawMessage
}

// tensors returns the results that are tensors, reusing buf.
func tensors(results []Result, buf []Result) []Result {
	out := buf[:0]
	for _, r := range results {
		if r.JSON == nil {
			out = append(out, r)
		}
	}
	return out
}

// ErrorRecord describes an input record that could not be analysed.
type ErrorRecord struct {
	Source string
	Record int
	Game   int
	Line   int
	Reason string
}

const (
	streamBuffer = 1 << 20
	// npyBufferBudget bounds the total buffer memory of the per-key files;
	// each still gets at least minNPYBuffer.
	npyBufferBudget = 32 << 20
	minNPYBuffer    = 64 << 10
	progressVersion = 1
)

// Writer writes one output directory. It is not safe for concurrent use.
//
// Commit protocol: data files are only appended to. Commit flushes and fsyncs
// them, then atomically replaces progress.json (temporary file, fsync,
// rename, fsync of the directory) with the counts and byte lengths as of the
// last SetRecords, then manifest.json the same way. Resume truncates every
// file to the lengths in progress.json, so whatever was written after the
// last commit, torn or not, disappears.
//
// Because progress is recorded at record boundaries (SetRecords), a Commit
// in the middle of a record's positions is harmless: on resume the caller
// skips Done's records and re-adds that record's positions exactly once.
type Writer struct {
	dir       string
	format    Format
	opts      Options
	lensOpts  json.RawMessage // canonical JSON of opts.Lens.Options
	positions *stream
	errs      *stream
	results   *stream // json format only
	keys      []keyInfo
	keysFixed bool

	count, nerrors, nonfinite int // everything added so far
	records                   int
	mark                      mark // state at the last SetRecords
	marked                    bool // mark was set by SetRecords or a resume
	done                      mark // state committed when opened

	line   []byte // reused encoding buffer
	err    error  // sticky: a failed write leaves the files unusable until resume
	closed bool
}

// mark is a consistent cut of the output: counts and the lengths of the
// JSON Lines files. The NPY lengths follow from positions.
type mark struct {
	positions, errors, records, nonfinite int
	positionsLen, errorsLen, resultsLen   int64
}

type keyInfo struct {
	Key   string `json:"key"`
	Shape []int  `json:"shape"`
	file  string
	size  int // values per position
	app   *npy.Appender
	hdr   int64
}

// KeyFileName returns the NPY file name of a result key: "/" becomes ".",
// any other character outside [A-Za-z0-9._-] becomes "_", and ".npy" is
// appended.
func KeyFileName(key string) string {
	var b strings.Builder
	b.Grow(len(key) + 4)
	for _, r := range key {
		switch {
		case r == '/':
			b.WriteByte('.')
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	b.WriteString(".npy")
	return b.String()
}

// Open creates or resumes the output directory dir (see Options). A missing
// or empty directory starts a fresh output; a non-empty one needs Resume or
// Force. With Resume, a directory holding only lczerolens files but no
// progress.json (a run killed before its first commit) starts fresh too.
func Open(dir string, opts Options) (*Writer, error) {
	if opts.Format == "" {
		opts.Format = FormatNPY
	}
	if opts.Format != FormatNPY && opts.Format != FormatJSON {
		return nil, fmt.Errorf("store: unknown format %q: want npy or json", opts.Format)
	}
	if opts.Resume && opts.Force {
		return nil, fmt.Errorf("store: --resume and --force exclude each other")
	}
	lensOpts, err := canonicalJSON(opts.Lens.Options)
	if err != nil {
		return nil, fmt.Errorf("store: lens options: %w", err)
	}
	for k, v := range opts.Extra {
		if slices.Contains(manifestFields, k) {
			return nil, fmt.Errorf("store: extra manifest field %q collides with a field of the manifest", k)
		}
		if _, err := json.Marshal(v); err != nil {
			return nil, fmt.Errorf("store: extra manifest field %q: %w", k, err)
		}
	}
	opts.Extra = maps.Clone(opts.Extra) // SetExtra must not write to the caller's map
	w := &Writer{dir: dir, format: opts.Format, opts: opts, lensOpts: lensOpts}

	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("store: create output directory: %w", err)
		}
		return w.fresh()
	case err != nil:
		return nil, fmt.Errorf("store: open output directory: %w", err)
	case len(entries) == 0:
		return w.fresh()
	}
	foreign := foreignEntry(entries)
	_, perr := os.Stat(filepath.Join(dir, ProgressFile))
	if perr != nil && !errors.Is(perr, os.ErrNotExist) {
		return nil, fmt.Errorf("store: open output directory: %w", perr)
	}
	switch {
	case opts.Resume && perr == nil:
		return w.resume(entries)
	case opts.Resume && foreign == "":
		// Killed before its first commit: nothing was committed.
		if err := wipe(dir, entries); err != nil {
			return nil, err
		}
		return w.fresh()
	case opts.Resume:
		return nil, &usageError{fmt.Sprintf("store: cannot resume %s: it has no %s and holds %q, which lczerolens does not write", dir, ProgressFile, foreign), ErrNotEmpty}
	case opts.Force && foreign == "":
		if err := wipe(dir, entries); err != nil {
			return nil, err
		}
		return w.fresh()
	case opts.Force:
		return nil, &usageError{fmt.Sprintf("store: --force will not wipe %s: it holds %q, which lczerolens does not write", dir, foreign), ErrNotEmpty}
	}
	return nil, &usageError{fmt.Sprintf("store: output directory %s is not empty: use --resume to continue or --force to overwrite", dir), ErrNotEmpty}
}

// usageError carries an exact message and a sentinel for errors.Is.
type usageError struct {
	msg  string
	kind error
}

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error { return e.kind }

// ours reports whether a file name is one a Writer creates, so Force and
// Resume never delete anything else.
func ours(name string) bool {
	switch name {
	case ManifestFile, ProgressFile, PositionsFile, ErrorsFile, ResultsFile,
		ManifestFile + ".tmp", ProgressFile + ".tmp":
		return true
	}
	return strings.HasSuffix(name, ".npy")
}

// foreignEntry returns the first entry a Writer would not have created, or "".
func foreignEntry(entries []os.DirEntry) string {
	for _, e := range entries {
		if !e.Type().IsRegular() || !ours(e.Name()) {
			return e.Name()
		}
	}
	return ""
}

func wipe(dir string, entries []os.DirEntry) error {
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("store: wipe output directory: %w", err)
		}
	}
	return nil
}

func (w *Writer) fresh() (*Writer, error) {
	var err error
	if w.positions, err = createStream(filepath.Join(w.dir, PositionsFile), 256<<10); err != nil {
		return nil, err
	}
	if w.errs, err = createStream(filepath.Join(w.dir, ErrorsFile), 64<<10); err != nil {
		return nil, errors.Join(err, w.closeFiles())
	}
	if w.format == FormatJSON {
		if w.results, err = createStream(filepath.Join(w.dir, ResultsFile), streamBuffer); err != nil {
			return nil, errors.Join(err, w.closeFiles())
		}
	}
	w.wrapStreams()
	if err := w.Commit(); err != nil {
		return nil, errors.Join(err, w.closeFiles())
	}
	return w, nil
}

// progress is the content of progress.json.
type progress struct {
	Version   int              `json:"progress_version"`
	Storage   Format           `json:"storage"`
	ModelSHA  string           `json:"model_sha256"`
	LensName  string           `json:"lens"`
	LensOpts  json.RawMessage  `json:"lens_options"`
	Positions int              `json:"positions"`
	Errors    int              `json:"errors"`
	Records   int              `json:"records"`
	Nonfinite int              `json:"nonfinite"`
	Keys      []keyInfo        `json:"keys"`
	Files     map[string]int64 `json:"files"`
}

func (w *Writer) resume(entries []os.DirEntry) (_ *Writer, err error) {
	raw, err := os.ReadFile(filepath.Join(w.dir, ProgressFile))
	if err != nil {
		return nil, fmt.Errorf("store: resume: %w", err)
	}
	var p progress
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("store: resume %s: parse %s: %w", w.dir, ProgressFile, err)
	}
	if p.Version != progressVersion {
		return nil, fmt.Errorf("store: resume %s: %s version %d, this build reads %d", w.dir, ProgressFile, p.Version, progressVersion)
	}
	if diff := w.differences(&p); diff != "" {
		return nil, &usageError{fmt.Sprintf("store: cannot resume %s: %s", w.dir, diff), ErrMismatch}
	}
	if p.Positions < 0 || p.Errors < 0 || p.Records < 0 || p.Nonfinite < 0 {
		return nil, fmt.Errorf("store: resume %s: negative count in %s", w.dir, ProgressFile)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, w.closeFiles())
		}
	}()
	// null keys: no position was added before the last commit.
	if p.Keys != nil {
		if err := w.fixKeys(p.Keys); err != nil {
			return nil, fmt.Errorf("store: resume %s: keys in %s: %w", w.dir, ProgressFile, err)
		}
	}
	// Files the last commit did not know of: key files created after it and
	// temporary files of an interrupted commit.
	known := map[string]bool{}
	for _, k := range w.keys {
		known[k.file] = true
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".tmp") && ours(n) || strings.HasSuffix(n, ".npy") && !known[n] {
			if err := os.Remove(filepath.Join(w.dir, n)); err != nil {
				return nil, fmt.Errorf("store: resume: %w", err)
			}
		}
	}
	length := func(name string) (int64, error) {
		n, ok := p.Files[name]
		if !ok || n < 0 {
			return 0, fmt.Errorf("store: resume %s: %s has no valid length for %s", w.dir, ProgressFile, name)
		}
		return n, nil
	}
	m := mark{positions: p.Positions, errors: p.Errors, records: p.Records, nonfinite: p.Nonfinite}
	if m.positionsLen, err = length(PositionsFile); err != nil {
		return nil, err
	}
	if w.positions, err = openStream(filepath.Join(w.dir, PositionsFile), m.positionsLen, 256<<10); err != nil {
		return nil, err
	}
	if m.errorsLen, err = length(ErrorsFile); err != nil {
		return nil, err
	}
	if w.errs, err = openStream(filepath.Join(w.dir, ErrorsFile), m.errorsLen, 64<<10); err != nil {
		return nil, err
	}
	if w.format == FormatJSON {
		if m.resultsLen, err = length(ResultsFile); err != nil {
			return nil, err
		}
		if w.results, err = openStream(filepath.Join(w.dir, ResultsFile), m.resultsLen, streamBuffer); err != nil {
			return nil, err
		}
	}
	if w.format == FormatNPY {
		for i := range w.keys {
			k := &w.keys[i]
			want := k.hdr + int64(p.Positions)*int64(k.size)*4
			if n, err := length(k.file); err != nil {
				return nil, err
			} else if n != want {
				return nil, fmt.Errorf("store: resume %s: %s records %d bytes for %s, %d positions need %d", w.dir, ProgressFile, n, k.file, p.Positions, want)
			}
			if k.app, err = npy.OpenAppender(filepath.Join(w.dir, k.file), k.Shape, p.Positions, w.npyBuffer()); err != nil {
				return nil, fmt.Errorf("store: resume %s: %w", w.dir, err)
			}
		}
	}
	w.count, w.nerrors, w.nonfinite, w.records = m.positions, m.errors, m.nonfinite, m.records
	w.mark, w.done, w.marked = m, m, true
	w.wrapStreams()
	// Rewrites a manifest that a crash may have left one commit behind.
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return w, nil
}

// differences describes how the committed settings differ from w's, or
// returns "" when the output can be resumed.
func (w *Writer) differences(p *progress) string {
	var d []string
	if p.Storage != w.format {
		d = append(d, fmt.Sprintf("format is %s in the existing output, %s now", p.Storage, w.format))
	}
	if p.ModelSHA != w.opts.Model.SHA256 {
		d = append(d, fmt.Sprintf("model sha256 is %s in the existing output, %s now", p.ModelSHA, w.opts.Model.SHA256))
	}
	if p.LensName != w.opts.Lens.Name {
		d = append(d, fmt.Sprintf("lens is %q in the existing output, %q now", p.LensName, w.opts.Lens.Name))
	}
	old, err := canonicalJSON(p.LensOpts)
	if err != nil {
		return fmt.Sprintf("lens options in %s are unreadable: %v", ProgressFile, err)
	}
	if !bytes.Equal(old, w.lensOpts) {
		d = append(d, optionDiff(old, w.lensOpts))
	}
	return strings.Join(d, "; ")
}

// optionDiff names the lens options that differ between two canonical JSON
// objects.
func optionDiff(oldRaw, newRaw []byte) string {
	var oldM, newM map[string]json.RawMessage
	if json.Unmarshal(oldRaw, &oldM) != nil || json.Unmarshal(newRaw, &newM) != nil {
		return fmt.Sprintf("lens options are %s in the existing output, %s now", oldRaw, newRaw)
	}
	names := map[string]bool{}
	for k := range oldM {
		names[k] = true
	}
	for k := range newM {
		names[k] = true
	}
	var d []string
	for _, k := range sortedKeys(names) {
		o, n := string(oldM[k]), string(newM[k])
		if o == n {
			continue
		}
		if o == "" {
			o = "unset"
		}
		if n == "" {
			n = "unset"
		}
		d = append(d, fmt.Sprintf("lens option %q is %s in the existing output, %s now", k, o, n))
	}
	return strings.Join(d, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// canonicalJSON encodes v (or re-encodes raw JSON) with sorted keys and
// numbers as JSON reads them back, so options compare equal across a
// save/load trip (int 3 and float64 3 both become 3). nil becomes {}.
func canonicalJSON(v any) (json.RawMessage, error) {
	raw, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, err
	}
	if generic == nil {
		generic = map[string]any{}
	}
	return json.Marshal(generic)
}

// npyBuffer sizes the per-key write buffers so that their total stays
// bounded however many keys a lens produces.
func (w *Writer) npyBuffer() npy.AppenderOption {
	n := npy.DefaultBufferSize
	if len(w.keys) > 0 {
		n = min(n, max(minNPYBuffer, npyBufferBudget/len(w.keys)))
	}
	return npy.WithBufferSize(n)
}

// fixKeys validates a position's keys and shapes and makes them the ones
// every position must have.
func (w *Writer) fixKeys(results []keyInfo) error {
	keys := make([]keyInfo, len(results))
	seen := map[string]string{} // lower-cased file name -> key
	for i, r := range results {
		if r.Key == "" {
			return fmt.Errorf("result %d has an empty key", i)
		}
		size := 1
		for _, d := range r.Shape {
			if d <= 0 || size > (1<<40)/d {
				return fmt.Errorf("result %q has shape %v: every dimension must be positive and the size moderate", r.Key, r.Shape)
			}
			size *= d
		}
		file := KeyFileName(r.Key)
		// Lower-cased so the names stay distinct on case-insensitive disks.
		if other, dup := seen[strings.ToLower(file)]; dup {
			if other == r.Key {
				return fmt.Errorf("result key %q appears twice", r.Key)
			}
			return fmt.Errorf("result keys %q and %q both map to file %s", other, r.Key, file)
		}
		seen[strings.ToLower(file)] = r.Key
		hdr, err := npy.HeaderLen(r.Shape)
		if err != nil {
			return fmt.Errorf("result %q: %w", r.Key, err)
		}
		keys[i] = keyInfo{Key: r.Key, Shape: append([]int{}, r.Shape...), file: file, size: size, hdr: hdr}
	}
	w.keys, w.keysFixed = keys, true
	return nil
}

// SetExtra sets or replaces the extra manifest field name (see Options.Extra) from the next commit on: for
// values known only at the end of a run, such as a checksum of the input.
func (w *Writer) SetExtra(name string, value any) error {
	if slices.Contains(manifestFields, name) {
		return fmt.Errorf("store: extra manifest field %q collides with a field of the manifest", name)
	}
	if _, err := json.Marshal(value); err != nil {
		return fmt.Errorf("store: extra manifest field %q: %w", name, err)
	}
	if w.opts.Extra == nil {
		w.opts.Extra = map[string]any{}
	}
	w.opts.Extra[name] = value
	return nil
}

// Done returns what was committed when the Writer was opened: positions and
// error records already written, and input records fully consumed. A
// resuming caller skips that many input records.
func (w *Writer) Done() (positions int, errors int, records int) {
	return w.done.positions, w.done.errors, w.done.records
}

func (w *Writer) usable() error {
	if w.closed {
		return fmt.Errorf("store: %s: writer closed", w.dir)
	}
	return w.err
}

// Add appends one position's results. The first Add (or the resumed
// output) fixes the keys, their order and shapes; a position that differs is
// refused without writing anything.
func (w *Writer) Add(meta PositionMeta, all []Result) error {
	if err := w.usable(); err != nil {
		return err
	}
	results := all
	if slices.ContainsFunc(all, func(r Result) bool { return r.JSON != nil }) {
		results = tensors(all, nil)
	}
	first := !w.keysFixed
	if first {
		ks := make([]keyInfo, len(results))
		for i, r := range results {
			ks[i] = keyInfo{Key: r.Key, Shape: r.Shape}
		}
		if err := w.fixKeys(ks); err != nil {
			w.keys, w.keysFixed = nil, false
			return fmt.Errorf("store: add position %d: %w", w.count, err)
		}
	}
	if err := w.check(results); err != nil {
		if first {
			w.keys, w.keysFixed = nil, false // a refused first position fixes nothing
		}
		return fmt.Errorf("store: add position %d: %w", w.count, err)
	}
	if w.format == FormatNPY && len(w.keys) > 0 && w.keys[0].app == nil {
		if err := w.createKeyFiles(); err != nil {
			return w.fail(err)
		}
	}
	w.line = append(appendMeta(w.line[:0], meta), '\n')
	if err := w.positions.write(w.line); err != nil {
		return w.fail(err)
	}
	for _, r := range results {
		for _, v := range r.Data {
			if v-v != 0 { // NaN or infinite
				w.nonfinite++
			}
		}
	}
	switch w.format {
	case FormatNPY:
		for i, r := range results {
			if err := w.keys[i].app.Append(r.Data); err != nil {
				return w.fail(err)
			}
		}
	case FormatJSON:
		b := append(w.line[:0], `{"position":`...)
		b = appendMeta(b, meta)
		b = append(b, `,"results":{`...)
		for i, r := range all {
			if i > 0 {
				b = append(b, ',')
			}
			if r.JSON != nil {
				b = AppendJSONResult(b, r.Key, r.JSON)
				continue
			}
			b = AppendResultJSON(b, r.Key, r.Shape, r.Data)
		}
		w.line = append(b, "}}\n"...)
		if err := w.results.write(w.line); err != nil {
			return w.fail(err)
		}
	}
	w.count++
	return nil
}

// check compares a position's results with the fixed keys.
func (w *Writer) check(results []Result) error {
	if len(results) != len(w.keys) {
		return fmt.Errorf("%d results, want %d (%s)", len(results), len(w.keys), w.keyList())
	}
	for i, r := range results {
		k := &w.keys[i]
		if r.Key != k.Key {
			return fmt.Errorf("result %d is %q, want %q (%s)", i, r.Key, k.Key, w.keyList())
		}
		if !slices.Equal(r.Shape, k.Shape) {
			return fmt.Errorf("result %q has shape %v, want %v", r.Key, r.Shape, k.Shape)
		}
		if len(r.Data) != k.size {
			return fmt.Errorf("result %q has %d values, shape %v needs %d", r.Key, len(r.Data), r.Shape, k.size)
		}
	}
	return nil
}

func (w *Writer) keyList() string {
	names := make([]string, len(w.keys))
	for i, k := range w.keys {
		names[i] = fmt.Sprintf("%q", k.Key)
	}
	return "keys " + strings.Join(names, ", ")
}

func (w *Writer) createKeyFiles() error {
	for i := range w.keys {
		k := &w.keys[i]
		app, err := npy.CreateAppender(filepath.Join(w.dir, k.file), k.Shape, w.npyBuffer())
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		k.app = app
	}
	return nil
}

// fail makes err sticky: after a failed write the files are only good up to
// the last commit, which a resume restores.
func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = fmt.Errorf("%w (output left at its last commit: rerun with --resume)", err)
	}
	return w.err
}

// AddError appends one bad input record to errors.jsonl.
func (w *Writer) AddError(e ErrorRecord) error {
	if err := w.usable(); err != nil {
		return err
	}
	w.line = append(appendError(w.line[:0], e), '\n')
	if err := w.errs.write(w.line); err != nil {
		return w.fail(err)
	}
	w.nerrors++
	return nil
}

// SetRecords declares that the first n input records are fully consumed:
// everything added so far belongs to them. The next Commit records this
// point; positions added after it are written but not counted as committed
// until the next SetRecords, so a resume never repeats or skips a position.
//
// Repeating the last n changes nothing: positions added since belong to record n, which is still open (a
// game longer than a batch spans several commits).
func (w *Writer) SetRecords(n int) {
	if w.marked && n == w.records {
		return
	}
	w.records = n
	w.mark = w.current()
	w.marked = true
}

func (w *Writer) current() mark {
	m := mark{positions: w.count, errors: w.nerrors, records: w.records, nonfinite: w.nonfinite}
	if w.positions != nil {
		m.positionsLen = w.positions.n
	}
	if w.errs != nil {
		m.errorsLen = w.errs.n
	}
	if w.results != nil {
		m.resultsLen = w.results.n
	}
	return m
}

// Commit makes everything added so far durable and records the state at the
// last SetRecords as committed: fsync of the data files, then atomic
// replacement of progress.json and manifest.json.
func (w *Writer) Commit() error {
	if err := w.usable(); err != nil {
		return err
	}
	return w.commit(w.mark, false)
}

func (w *Writer) commit(m mark, complete bool) error {
	for _, s := range []*stream{w.positions, w.errs, w.results} {
		if s != nil {
			if err := s.sync(); err != nil {
				return w.fail(err)
			}
		}
	}
	for _, k := range w.keys {
		if k.app != nil {
			if err := k.app.Sync(); err != nil {
				return w.fail(fmt.Errorf("store: %w", err))
			}
		}
	}
	p := progress{
		Version: progressVersion, Storage: w.format, ModelSHA: w.opts.Model.SHA256,
		LensName: w.opts.Lens.Name, LensOpts: w.lensOpts,
		Positions: m.positions, Errors: m.errors, Records: m.records, Nonfinite: m.nonfinite,
		Keys:  w.keys,
		Files: map[string]int64{PositionsFile: m.positionsLen, ErrorsFile: m.errorsLen},
	}
	if w.keysFixed && p.Keys == nil {
		p.Keys = []keyInfo{}
	}
	if w.format == FormatJSON {
		p.Files[ResultsFile] = m.resultsLen
	} else {
		for _, k := range w.keys {
			p.Files[k.file] = k.hdr + int64(m.positions)*int64(k.size)*4
		}
	}
	raw, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return w.fail(fmt.Errorf("store: encode %s: %w", ProgressFile, err))
	}
	if err := writeAtomic(w.dir, ProgressFile, append(raw, '\n')); err != nil {
		return w.fail(err)
	}
	raw, err = w.manifest(m, complete)
	if err != nil {
		return w.fail(err)
	}
	if err := writeAtomic(w.dir, ManifestFile, raw); err != nil {
		return w.fail(err)
	}
	return nil
}

// Close commits everything added, marks the manifest complete and closes
// the files. Call SetRecords with the final count first, so that a later
// resume of the finished output skips all input. Calling Close again returns
// nil.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	err := w.err
	if err == nil {
		w.mark = w.current()
		err = w.commit(w.mark, true)
	}
	w.closed = true
	return errors.Join(err, w.closeFiles())
}

// Abort ends a run that stops early (an error, an interrupt): it commits
// like Commit and closes the files, leaving the manifest incomplete so that a
// later run can resume. Calling it after Close or Abort returns nil.
func (w *Writer) Abort() error {
	if w.closed {
		return nil
	}
	err := w.err
	if err == nil {
		err = w.commit(w.mark, false)
	}
	w.closed = true
	return errors.Join(err, w.closeFiles())
}

func (w *Writer) closeFiles() error {
	var errs []error
	for _, s := range []*stream{w.positions, w.errs, w.results} {
		if s != nil {
			errs = append(errs, s.close())
		}
	}
	for _, k := range w.keys {
		if k.app != nil {
			errs = append(errs, k.app.Close())
		}
	}
	return errors.Join(errs...)
}

// manifestFields are the manifest's own top-level names, which Extra may
// not reuse.
var manifestFields = []string{"format", "format_version", "tool_version", "model", "lens", "count",
	"errors", "keys", "storage", "records", "nonfinite", "complete"}

// field is one member of a JSON object whose member order matters.
type field struct {
	name  string
	value any
}

type object []field

// MarshalJSON writes the members in order (encoding/json sorts map keys,
// and the manifest lists keys in the lens's order).
func (o object) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, f := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f.name)
		b = append(b, ':')
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, fmt.Errorf("manifest field %q: %w", f.name, err)
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

func (w *Writer) manifest(m mark, complete bool) ([]byte, error) {
	keys := object{}
	for _, k := range w.keys {
		file := k.file
		if w.format == FormatJSON {
			file = ResultsFile
		}
		keys = append(keys, field{k.Key, object{{"file", file}, {"dtype", "float32"}, {"shape", k.Shape}}})
	}
	o := object{
		{"format", ManifestFormat},
		{"format_version", FormatVersion},
		{"tool_version", w.opts.ToolVersion},
		{"model", object{{"path", w.opts.Model.Path}, {"sha256", w.opts.Model.SHA256}}},
		{"lens", object{{"name", w.opts.Lens.Name}, {"options", w.lensOpts}}},
		{"count", m.positions},
		{"errors", m.errors},
		{"keys", keys},
		{"storage", w.format},
		{"records", m.records},
		{"nonfinite", m.nonfinite},
		{"complete", complete},
	}
	for _, k := range sortedKeys(w.opts.Extra) {
		o = append(o, field{k, w.opts.Extra[k]})
	}
	raw, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("store: encode %s: %w", ManifestFile, err)
	}
	return append(raw, '\n'), nil
}

// writeAtomic replaces dir/name with data so that a crash leaves either the
// old or the new content: temporary file, fsync, rename, fsync of dir.
func writeAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("store: write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("store: write %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("store: write %s: %w", name, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: sync directory: %w", err)
	}
	err = d.Sync()
	if err = errors.Join(err, d.Close()); err != nil {
		return fmt.Errorf("store: sync directory %s: %w", dir, err)
	}
	return nil
}

// wrapStreams applies Options.WrapFile to the streams, before anything is buffered.
func (w *Writer) wrapStreams() {
	if w.opts.WrapFile == nil {
		return
	}
	for _, s := range []*stream{w.positions, w.errs, w.results} {
		if s != nil {
			s.w.Reset(w.opts.WrapFile(s.f.Name(), s.f))
		}
	}
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
