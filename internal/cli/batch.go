package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/source"
	"github.com/lczerolens/lczerolens/internal/store"
)

// BatchOptions are the inputs of `lczerolens batch`.
type BatchOptions struct {
	Factory   *Factory
	Input     string
	InputType string
	// InputFormat is --input-format (lc0's input encoding; default from the network).
	InputFormat string
	Output      string
	Plies       string
	Shard       string // i/n, or "" for the whole input
	Lenses      lensFlags
	Resume      bool
	Force       bool
	Strict      bool
	Quiet       bool
	// Interrupt, when set, replaces SIGINT/SIGTERM handling (tests).
	Interrupt context.Context
}

// NewCmdBatch builds `lczerolens batch`.
func NewCmdBatch(f *Factory, runF ...func(*BatchOptions) error) *cobra.Command {
	opts := &BatchOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "batch INPUT -o OUTDIR",
		Short: "Run lenses on every position of a PGN, FEN/EPD list or JSONL file",
		Long: `Run lenses on every position of INPUT as a stream with bounded memory, in batches of --batch-size, and
write the results to OUTDIR: with --format npy (default) one file per result key holding all positions stacked
on axis 0, plus positions.jsonl (row i = position i), errors.jsonl (bad records) and manifest.json; with
--format json, results.jsonl instead of the NPY files.

INPUT is a PGN (every position of every game: the start position and the position after each move), a FEN
or EPD list (one position per line), a JSONL file of {"fen","moves"} objects (moves as a string or an
array), or - for stdin (with --input-type). Bad records are logged to errors.jsonl and skipped. A JSONL
record may also give a corrupted position, corrupt_fen and/or corrupt_moves (from corrupt_fen, else from
the record's own start), which lens patching compares the position with.

Results are committed after every batch: a run that is killed can be finished with --resume.

With --shard i/n the run analyses only the records (games or lines) r with r % n == i, so n runs on n
machines split the input without coordination; each reads the whole input (to number its records and to
record its sha256 in the manifest) and writes a complete output directory. "lczerolens merge" joins them
into the files one unsharded run writes. Sharding stdin works only when every shard is fed the same bytes
(merge checks their sha256).`,
		Example: `  lczerolens batch games.pgn --model maia-1100.onnx --lens activation --pattern '^block5/conv2/relu$' -o out/
  lczerolens batch puzzles.epd --lens saliency --target policy:best -o sal/ --format json
  zcat big.pgn.gz | lczerolens batch - --input-type pgn --plies every:10 -o out/
  lczerolens batch games.pgn --lens activation -o out/ --resume   # finish an interrupted run
  lczerolens batch games.pgn --lens activation --shard 2/8 -o out/shard-2   # one of 8 parts, then merge`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Input = args[0]
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runBatch(opts)
		},
	}
	opts.Lenses.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&opts.Output, "output", "o", "", "output directory (required)")
	fl.String("format", "npy", "output format: npy or json")
	fl.Int("batch-size", 256, "positions per model run")
	fl.StringVar(&opts.InputType, "input-type", "", "input type: pgn, fen or jsonl (default: from the extension; required for stdin)")
	fl.StringVar(&opts.Plies, "plies", "all", "positions of each game: all, first:N, last, every:N")
	fl.StringVar(&opts.Shard, "shard", "", "analyse only shard i of n (0-based i/n): the records r with r % n == i (see merge)")
	fl.String("history-fill", "fen-only", "history planes for games starting from a FEN: fen-only, always, no, current")
	fl.StringVar(&opts.InputFormat, "input-format", "", inputFormatHelp)
	fl.String("policy-transpose", "planes", policyTransposeHelp)
	fl.BoolVar(&opts.Resume, "resume", false, "continue an interrupted run in OUTDIR")
	fl.BoolVar(&opts.Force, "force", false, "overwrite a non-empty OUTDIR")
	fl.BoolVar(&opts.Strict, "strict", false, "stop at the first bad record (exit 1) instead of logging it")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress output")
	_ = cmd.MarkFlagRequired("output")
	cmd.MarkFlagsMutuallyExclusive("resume", "force")
	return cmd
}

// pending is one batch read and encoded, with the bad records met while reading it.
type pending struct {
	batch   lens.Batch
	metas   []store.PositionMeta
	bads    []store.ErrorRecord
	bytes   int64 // input bytes consumed when the batch was cut
	records int   // input records complete once this batch is written
}

// countingReader tracks input bytes for progress, and hashes them for the manifest.
type countingReader struct {
	r io.Reader
	n int64
	h hash.Hash
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.h.Write(p[:n])
	return n, err
}

// inputInfo is the manifest's "input". Size and SHA256 cover every byte read, known once the run is
// complete; merge compares them to tell whether shards read the same input.
type inputInfo struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Plies       string `json:"plies"`
	InputFormat string `json:"input_format"`
	HistoryFill string `json:"history_fill"`
	Size        *int64 `json:"size,omitempty"`
	SHA256      string `json:"sha256,omitempty"`

	// PolicyTranspose is the --policy-transpose of the run; manifests written before it existed lack it and
	// used planes (see policyTranspose).
	PolicyTranspose string `json:"policy_transpose,omitempty"`
}

// policyTranspose is the run's --policy-transpose, planes for a manifest written before the option existed.
func (in inputInfo) policyTranspose() string {
	if in.PolicyTranspose == "" {
		return board.TransposePlanes.String()
	}
	return in.PolicyTranspose
}

// shardInfo is the manifest's "shard" (absent without --shard). Records, set once the run is complete,
// lists the record numbers the shard holds: Count numbers from First in steps of Stride.
type shardInfo struct {
	Index   int           `json:"index"`
	Count   int           `json:"count"`
	Records *shardRecords `json:"records,omitempty"`
}

type shardRecords struct {
	First  int `json:"first"`
	Stride int `json:"stride"`
	Count  int `json:"count"`
}

func runBatch(opts *BatchOptions) (err error) {
	f := opts.Factory
	cfg := f.Config()
	typ, err := source.DetectType(opts.Input, opts.InputType)
	if err != nil {
		return inputError(err)
	}
	plies, err := source.ParsePlies(opts.Plies)
	if err != nil {
		return inputError(err)
	}
	var shard source.Shard
	if opts.Shard != "" {
		if shard, err = source.ParseShard(opts.Shard); err != nil {
			return inputError(err)
		}
	}
	specs, err := opts.Lenses.specs(cfg.Lens)
	if err != nil {
		return err
	}
	var in io.Reader = f.IO.In
	var size int64 = -1
	if opts.Input != "-" {
		file, err := os.Open(opts.Input)
		if err != nil {
			return inputError(fmt.Errorf("batch: %w", err))
		}
		defer file.Close()
		if st, err := file.Stat(); err == nil {
			size = st.Size()
		}
		in = file
	}
	sess, err := f.Session(opts.InputFormat)
	if err != nil {
		return err
	}
	eng, err := sess.engine(specs, opts.Lenses.savePlanes)
	if err != nil {
		return err
	}
	net, enc := sess.net, sess.enc
	if eng.NeedsCorrupt() && typ != source.JSONL {
		return usageErrorf("batch: --lens %s compares each position with a corrupted one: give a JSONL input whose records have corrupt_fen and/or corrupt_moves", strings.Join(cfg.Lens, ","))
	}
	name, lensOpts := lensInfo(specs)
	input := inputInfo{Name: opts.Input, Type: string(typ), Plies: plies.String(), InputFormat: enc.Format.String(), HistoryFill: enc.Fill.String(), PolicyTranspose: enc.Policy.String()}
	extra := map[string]any{"input": input}
	if shard.Count > 0 {
		extra["shard"] = shardInfo{Index: shard.Index, Count: shard.Count}
	}
	if meta := eng.Meta(); meta != nil {
		extra["lens_meta"] = meta
	}
	if opts.Resume {
		if err := checkResume(opts.Output, shard, input); err != nil {
			return err
		}
	}
	w, err := store.Open(opts.Output, store.Options{
		Format: store.Format(cfg.Format), Resume: opts.Resume, Force: opts.Force, ToolVersion: f.Version,
		Model: store.ModelInfo{Path: net.Path, SHA256: net.SHA256},
		Lens:  store.LensInfo{Name: name, Options: lensOpts},
		Extra: extra,
	})
	if err != nil {
		return storeError(err)
	}
	// Whatever happens below, what was committed stays valid; a clean finish writes the final manifest.
	finished := false
	defer func() {
		if !finished {
			err = errors.Join(err, w.Abort())
		}
	}()
	skipPos, skipBad, skipRecords := w.Done()

	ctx := opts.Interrupt
	if ctx == nil {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	cr := &countingReader{r: in, h: sha256.New()}
	batches := make(chan *pending, 2)
	readErr := make(chan error, 1)
	total := 0 // input records, read after readErr
	go func() {
		var err error
		total, err = readBatches(ctx, cr, opts.Input, typ, source.Options{Plies: plies, Shard: shard}, enc, eng.NeedsCorrupt(), cfg.BatchSize, skipRecords, opts.Strict, batches)
		readErr <- err
		close(batches)
	}()

	prog := newProgress(f.IO, opts.Quiet, size, f.Logger())
	start := time.Now()
	positions, bad := skipPos, skipBad
	// Three stages overlap: reading+encoding, the model run, and writing+committing the previous batch.
	toWrite := make(chan analysed, 1)
	writeErr := make(chan error, 1)
	go func() {
		var err error
		for a := range toWrite {
			if err != nil {
				continue // keep draining so the analyser never blocks
			}
			if err = commitBatch(w, a.p, a.results); err == nil {
				positions += a.p.batch.Len()
				bad += len(a.p.bads)
				prog.update(a.p.bytes, positions, bad)
			}
		}
		writeErr <- err
	}()
	var runErr error
	for p := range batches {
		if runErr != nil {
			continue // drain so the reader can finish
		}
		var results []lens.Result
		if p.batch.Len() > 0 {
			_, results, runErr = eng.Run(&p.batch)
		}
		if runErr == nil {
			toWrite <- analysed{p: p, results: results}
		}
	}
	close(toWrite)
	if err := errors.Join(runErr, <-writeErr, <-readErr); err != nil {
		prog.finish()
		return err
	}
	prog.finish()
	read := cr.n
	input.Size, input.SHA256 = &read, hex.EncodeToString(cr.h.Sum(nil))
	if err := w.SetExtra("input", input); err != nil {
		return err
	}
	if shard.Count > 0 {
		recs := &shardRecords{First: shard.Index, Stride: shard.Count, Count: shard.Records(total)}
		if err := w.SetExtra("shard", shardInfo{Index: shard.Index, Count: shard.Count, Records: recs}); err != nil {
			return err
		}
	}
	finished = true
	if err := w.Close(); err != nil {
		return err
	}
	elapsed := time.Since(start).Seconds()
	if !opts.Quiet {
		what := "batch"
		if shard.Count > 0 {
			what += " shard " + shard.String()
		}
		fmt.Fprintf(f.IO.ErrOut, "%s: %d positions, %d bad records, %.1f s (%.0f positions/s) -> %s\n",
			what, positions, bad, elapsed, float64(positions-skipPos)/max(elapsed, 1e-9), opts.Output)
	}
	return nil
}

// analysed is a batch with its lens results, waiting to be written.
type analysed struct {
	p       *pending
	results []lens.Result
}

// commitBatch writes one analysed batch and commits it. The commit mark is set after the positions of
// complete records only, so a resume never repeats or loses part of a game.
func commitBatch(w *store.Writer, p *pending, results []lens.Result) error {
	for _, b := range p.bads {
		if err := w.AddError(b); err != nil {
			return err
		}
	}
	marked := false
	for i := range p.metas {
		if !marked && p.metas[i].Record >= p.records {
			w.SetRecords(p.records)
			marked = true
		}
		if err := w.Add(p.metas[i], storeResults(results, i)); err != nil {
			return err
		}
	}
	if !marked {
		w.SetRecords(p.records)
	}
	return w.Commit()
}

// strictError stops reading at the first bad record under --strict.
type strictError struct{ bad store.ErrorRecord }

func (e *strictError) Error() string {
	return fmt.Sprintf("batch: bad record %d (line %d): %s (--strict)", e.bad.Record, e.bad.Line, e.bad.Reason)
}

// checkResume refuses to resume an output made for another shard or from another input, ply selection or
// encoding: its committed records would be counted for the wrong ones, or mixed with different positions.
// (Model, lens, options and format are the store's to check.)
func checkResume(dir string, shard source.Shard, input inputInfo) error {
	m, err := store.ReadManifest(dir)
	if err != nil {
		return nil // nothing to resume, or store.Open explains what is wrong
	}
	if raw, ok := m.Extra["input"]; ok {
		var had inputInfo
		if err := json.Unmarshal(raw, &had); err != nil {
			return inputError(fmt.Errorf("batch: cannot resume %s: its manifest's input is unreadable: %w", dir, err))
		}
		for _, d := range []struct{ what, was, now string }{
			{"input", had.Name, input.Name}, {"input type", had.Type, input.Type}, {"--plies", had.Plies, input.Plies},
			{"--input-format", had.InputFormat, input.InputFormat}, {"--history-fill", had.HistoryFill, input.HistoryFill},
			{"--policy-transpose", had.policyTranspose(), input.policyTranspose()},
		} {
			if d.was != d.now {
				return usageErrorf("batch: cannot resume %s: it was made with %s %q, not %q", dir, d.what, d.was, d.now)
			}
		}
	}
	var had shardInfo
	if raw, ok := m.Extra["shard"]; ok {
		if err := json.Unmarshal(raw, &had); err != nil {
			return inputError(fmt.Errorf("batch: cannot resume %s: its manifest's shard is unreadable: %w", dir, err))
		}
	}
	if had.Index != shard.Index || had.Count != shard.Count {
		return usageErrorf("batch: cannot resume %s: it holds %s, not %s", dir, describeShard(source.Shard{Index: had.Index, Count: had.Count}), describeShard(shard))
	}
	return nil
}

func describeShard(s source.Shard) string {
	if s.Count == 0 {
		return "the whole input"
	}
	return "shard " + s.String()
}

// readBatches reads and encodes positions into batches of size n, skipping the records a resumed run
// already has, and returns the number of records in the input. Each batch says how many input records are
// complete once it is written, so a commit never splits a game. The input is read to its end so that its
// sha256 covers every byte. With corrupt, each position's corrupted counterpart is encoded too, and a
// record without one is a bad record.
func readBatches(ctx context.Context, cr *countingReader, name string, typ source.Type, sel source.Options, enc encoding, corrupt bool, n, skipRecords int, strict bool, out chan<- *pending) (int, error) {
	newPending := func() *pending {
		return &pending{batch: lens.Batch{Planes: make([]float32, 0, n*board.NumPlanes*64), Format: enc.Format, Fill: enc.Fill, Policy: enc.Policy}}
	}
	cur := newPending()
	flush := func(complete int) error {
		cur.bytes, cur.records = cr.n, complete
		select {
		case out <- cur:
		case <-ctx.Done():
			return fmt.Errorf("batch: interrupted: rerun with --resume to finish")
		}
		cur = newPending()
		return nil
	}
	planes := make([]float32, board.NumPlanes*64)
	bad := func(rec store.ErrorRecord) error {
		cur.bads = append(cur.bads, rec)
		if strict {
			if err := flush(rec.Record + 1); err != nil {
				return err
			}
			return &strictError{bad: rec}
		}
		return nil
	}
	records, err := source.Walk(cr, name, typ, sel, func(it *source.Item) error {
		if it.Record < skipRecords {
			return nil
		}
		if corrupt {
			if it.Corrupt == nil {
				return bad(store.ErrorRecord{Source: name, Record: it.Record, Game: it.Game, Reason: "no corrupt_fen or corrupt_moves: the patching lens needs a corrupted position"})
			}
			// The corrupted position is encoded like the clean one; patching works in the clean one's frame.
			enc.encode(it.Corrupt, planes)
			cur.batch.CorruptPlanes = append(cur.batch.CorruptPlanes, planes...)
			cur.batch.CorruptPositions = append(cur.batch.CorruptPositions, it.Corrupt.Current())
		}
		transform := enc.encode(it.History, planes)
		cur.batch.Planes = append(cur.batch.Planes, planes...)
		cur.batch.Transforms = append(cur.batch.Transforms, transform)
		cur.batch.Positions = append(cur.batch.Positions, it.Pos)
		meta := positionMeta(it.Source, it.Game, it.Ply, it.Pos, it.Next)
		meta.Record = it.Record
		cur.metas = append(cur.metas, meta)
		if cur.batch.Len() == n {
			return flush(it.Record) // records before this one are complete
		}
		return nil
	}, func(b *source.Bad) error {
		if b.Record < skipRecords {
			return nil
		}
		return bad(store.ErrorRecord{Source: name, Record: b.Record, Game: b.Game, Line: b.Line, Reason: b.Reason})
	})
	if err != nil {
		return records, err
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return records, fmt.Errorf("batch: read %s: %w", name, err)
	}
	return records, flush(max(records, skipRecords))
}

// progress reports a batch run: a bar on a terminal, periodic log lines otherwise, nothing with --quiet.
type progress struct {
	bar     *progressbar.ProgressBar
	log     func(positions, bad int, frac float64)
	last    time.Time
	started time.Time
	size    int64
}

func newProgress(io *IOStreams, quiet bool, size int64, logger interface{ Info(string, ...any) }) *progress {
	p := &progress{started: time.Now(), last: time.Now(), size: size}
	switch {
	case quiet:
	case io.StderrTTY:
		p.bar = progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(io.ErrOut),
			progressbar.OptionSetDescription("analysing"),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	default:
		p.log = func(positions, bad int, frac float64) {
			el := time.Since(p.started).Seconds()
			args := []any{"positions", positions, "bad", bad, "positions_per_s", fmt.Sprintf("%.0f", float64(positions)/max(el, 1e-9))}
			if frac >= 0 {
				args = append(args, "done", fmt.Sprintf("%.1f%%", 100*frac))
			}
			logger.Info("batch progress", args...)
		}
	}
	return p
}

func (p *progress) update(bytes int64, positions, bad int) {
	if p.bar != nil {
		el := time.Since(p.started).Seconds()
		p.bar.Describe(fmt.Sprintf("%d positions (%.0f/s), %d bad", positions, float64(positions)/max(el, 1e-9), bad))
		_ = p.bar.Set64(bytes)
		return
	}
	if p.log != nil && time.Since(p.last) >= 10*time.Second {
		p.last = time.Now()
		frac := -1.0
		if p.size > 0 {
			frac = float64(bytes) / float64(p.size)
		}
		p.log(positions, bad, frac)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
