package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lczerolens/lczerolens/internal/atomicfile"
	"github.com/lczerolens/lczerolens/internal/npy"
)

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
// SetCut records a cut inside a record instead (DoneItems of the open record
// are kept), so that a slow lens loses no analysed position of a long game.
type Writer struct {
	dir       string
	format    Format
	m         Manifest        // the settings; counts and keys are filled in at each commit
	lensOpts  json.RawMessage // canonical JSON of m.Lens.Options, for progress.json
	lock      *dirLock
	wrapFile  func(path string, w io.Writer) io.Writer // Options.WrapFile
	positions *stream
	errs      *stream
	results   *stream // json format only
	keys      []keyInfo
	keysFixed bool

	count, nerrors, nonfinite int // everything added so far
	records, openItems        int
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
	openItems                             int // input items of record records (still open) consumed
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

// Open creates or resumes the output directory dir (see Options). A missing
// or empty directory starts a fresh output; a non-empty one needs Resume or
// Force. With Resume, a directory holding only lczerolens files but no
// progress.json (a run killed before its first commit) starts fresh too.
//
// Open takes the directory's lock (see LockFile) before it looks inside, or
// adopts Options.Lock, and the Writer holds it until Close or Abort: a second
// Open of the same directory, from this or another process, fails with
// ErrLocked.
func Open(dir string, opts Options) (_ *Writer, err error) {
	w := &Writer{dir: dir, format: opts.Format, wrapFile: opts.WrapFile}
	if w.lock, err = opts.Lock.adopt(dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, w.lock.release())
		}
	}()
	if w.lensOpts, err = opts.validate(); err != nil {
		return nil, err
	}
	if w.m, err = opts.manifest(); err != nil {
		return nil, err
	}
	if w.lock == nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("store: create output directory: %w", err)
		}
		if w.lock, err = lockDir(dir); err != nil {
			return nil, err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: open output directory: %w", err)
	}
	entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool { return e.Name() == LockFile })
	if len(entries) == 0 {
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
		return nil, &sentinelError{fmt.Sprintf("store: cannot resume %s: it has no %s and holds %q, which lczerolens does not write", dir, ProgressFile, foreign), ErrNotEmpty}
	case opts.Force && foreign == "":
		if err := wipe(dir, entries); err != nil {
			return nil, err
		}
		return w.fresh()
	case opts.Force:
		return nil, &sentinelError{fmt.Sprintf("store: --force will not wipe %s: it holds %q, which lczerolens does not write", dir, foreign), ErrNotEmpty}
	}
	return nil, &sentinelError{fmt.Sprintf("store: output directory %s is not empty: use --resume to continue or --force to overwrite", dir), ErrNotEmpty}
}

// ours reports whether a file name is one a Writer creates, so Force and
// Resume never delete anything else.
func ours(name string) bool {
	switch name {
	case ManifestFile, ProgressFile, PositionsFile, ErrorsFile, ResultsFile, LockFile:
		return true
	}
	return isTemp(name) || strings.HasSuffix(name, ".npy")
}

// isTemp reports whether name is a temporary file of an interrupted commit.
func isTemp(name string) bool {
	return atomicfile.IsTemp(name, ManifestFile) || atomicfile.IsTemp(name, ProgressFile)
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

// wipe removes entries (which never include the lock file, held by the caller).
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
	OpenItems int              `json:"open_items,omitempty"`
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
	if err := w.compatible(&p); err != nil {
		return nil, err
	}
	if p.Positions < 0 || p.Errors < 0 || p.Records < 0 || p.Nonfinite < 0 || p.OpenItems < 0 {
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
		if isTemp(n) || strings.HasSuffix(n, ".npy") && !known[n] {
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
	m := mark{positions: p.Positions, errors: p.Errors, records: p.Records, nonfinite: p.Nonfinite, openItems: p.OpenItems}
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
	w.count, w.nerrors, w.nonfinite, w.records, w.openItems = m.positions, m.errors, m.nonfinite, m.records, m.openItems
	w.mark, w.done, w.marked = m, m, true
	w.wrapStreams()
	// Rewrites a manifest that a crash may have left one commit behind.
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return w, nil
}

// compatible refuses to resume an output made with other settings (a *MismatchError). progress.json,
// written first at every commit, has the format, model and lens; the manifest, when there is one (a run
// killed between its first two writes has none), has the rest.
func (w *Writer) compatible(p *progress) error {
	var opts map[string]any
	if err := json.Unmarshal(p.LensOpts, &opts); err != nil {
		return fmt.Errorf("store: resume %s: lens options in %s are unreadable: %w", w.dir, ProgressFile, err)
	}
	had := &Manifest{Storage: p.Storage, Model: ModelInfo{SHA256: p.ModelSHA}, Lens: LensInfo{Name: p.LensName, Options: opts}}
	if m, err := ReadManifest(w.dir); err == nil {
		had.ToolVersion, had.Extra = m.ToolVersion, m.Extra
	} else {
		had.ToolVersion, had.Extra = w.m.ToolVersion, w.m.Extra
	}
	if d := had.Differences(&w.m, ResumeExempt...); len(d) > 0 {
		want := w.m
		return &MismatchError{Dir: w.dir, Had: had, Want: &want, Diffs: d}
	}
	return nil
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
	if err := checkExtra(name, value); err != nil {
		return err
	}
	raw, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("store: extra manifest field %q: %w", name, err)
	}
	w.m.Extra[name] = raw
	return nil
}

// Done returns what was committed when the Writer was opened: positions and
// error records already written, and input records fully consumed. A
// resuming caller skips that many input records.
func (w *Writer) Done() (positions int, errors int, records int) {
	return w.done.positions, w.done.errors, w.done.records
}

// DoneItems is how many input items of record Done's records (the one still open at the last commit,
// after a SetCut) were consumed: a resuming caller skips them too.
func (w *Writer) DoneItems() int {
	return w.done.openItems
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
	w.records, w.openItems = n, 0
	w.mark = w.current()
	w.marked = true
}

// SetCut declares that the first n input records are fully consumed and, of record n, the first items
// input items (the positions its source yielded, analysed, set aside or declined): everything added so far
// belongs to them. The next Commit records this point; a resume skips n records, then items items.
func (w *Writer) SetCut(n, items int) {
	w.records, w.openItems = n, items
	w.mark = w.current()
	w.marked = true
}

func (w *Writer) current() mark {
	m := mark{positions: w.count, errors: w.nerrors, records: w.records, nonfinite: w.nonfinite, openItems: w.openItems}
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
		Version: progressVersion, Storage: w.format, ModelSHA: w.m.Model.SHA256,
		LensName: w.m.Lens.Name, LensOpts: w.lensOpts,
		Positions: m.positions, Errors: m.errors, Records: m.records, OpenItems: m.openItems, Nonfinite: m.nonfinite,
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
	return errors.Join(err, w.closeFiles(), w.lock.release())
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
	return errors.Join(err, w.closeFiles(), w.lock.release())
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

// manifest encodes the manifest as of mark m.
func (w *Writer) manifest(m mark, complete bool) ([]byte, error) {
	out := w.m
	out.Count, out.Errors, out.Records, out.Nonfinite, out.Complete = m.positions, m.errors, m.records, m.nonfinite, complete
	out.Keys = make([]ManifestKey, len(w.keys))
	for i, k := range w.keys {
		file := k.file
		if w.format == FormatJSON {
			file = ResultsFile
		}
		out.Keys[i] = ManifestKey{Key: k.Key, File: file, Shape: k.Shape}
	}
	return out.encode()
}
