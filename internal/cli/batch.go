package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/pipeline"
	"github.com/lczerolens/lczerolens/internal/source"
	"github.com/lczerolens/lczerolens/internal/store"
)

// BatchOptions are the inputs of `lczerolens batch`.
type BatchOptions struct {
	Factory *Factory
	Input   string // the first input
	// Inputs are all the inputs, read one after the other; empty means Input alone.
	Inputs    []string
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
		Use:   "batch INPUT... -o OUTDIR",
		Short: "Run lenses on every position of a PGN, FEN/EPD list or JSONL file",
		Long: `Run lenses on every position of INPUT as a stream with bounded memory, in batches of --batch-size, and
write the results to OUTDIR: with --format npy (default) one file per result key holding all positions stacked
on axis 0, plus positions.jsonl (row i = position i), errors.jsonl (bad records) and manifest.json; with
--format json, results.jsonl instead of the NPY files.

INPUT is a PGN (every position of every game: the start position and the position after each move),
a FEN or EPD list (one position per line), a JSONL file of {"fen","moves"} objects (moves as a
string or an array), a lichess puzzle CSV (the puzzle position, after the opponent's first move,
with puzzle_id, rating, themes and solution in positions.jsonl), or - for stdin (with --input-type).
Inputs may be compressed (.gz, .bz2, .zst) and several are read one after the other as one input,
records numbered across them. Bad records are logged to errors.jsonl and skipped. A JSONL record may
also give a corrupted position, corrupt_fen and/or corrupt_moves (from corrupt_fen, else from the
record's own start), which lens patching compares the position with.

Results are committed after every batch, also inside a game: a run that is killed can be finished
with --resume. SIGINT/SIGTERM stops within one network run.

With --shard i/n the run analyses only the records (games or lines) r with r % n == i, so n runs on n
machines split the input without coordination; each reads the whole input (to number its records and to
record its sha256 in the manifest) and writes a complete output directory. "lczerolens merge" joins them
into the files one unsharded run writes. Sharding stdin works only when every shard is fed the same bytes
(merge checks their sha256).`,
		Example: `  lczerolens batch games.pgn --model maia-1100.onnx --lens activation --pattern '^block5/conv2/relu$' -o out/
  lczerolens batch puzzles.epd --lens saliency --target policy:best -o sal/ --format json
  lczerolens batch lichess_db_puzzle.csv.zst --lens activation -o out/
  lczerolens batch part1.pgn.gz part2.pgn.gz --lens activation -o out/
  zcat big.pgn.gz | lczerolens batch - --input-type pgn --plies every:10 -o out/
  lczerolens batch games.pgn --lens activation -o out/ --resume   # finish an interrupted run
  lczerolens batch games.pgn --lens activation --shard 2/8 -o out/shard-2   # one of 8 parts, then merge
  lczerolens batch games.pgn --lens saliency --keep saliency -o sal/   # [8,8] maps only, no input_grad.npy`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Input, opts.Inputs = args[0], args
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
	streamEncodingFlags(fl)
	fl.StringVar(&opts.InputType, "input-type", "", inputTypeHelp)
	fl.StringVar(&opts.Plies, "plies", "all", "positions of each game: all, first:N, last, every:N")
	fl.StringVar(&opts.Shard, "shard", "", "analyse only shard i of n (0-based i/n): the records r with r % n == i (see merge)")
	fl.StringVar(&opts.InputFormat, "input-format", "", inputFormatHelp)
	fl.BoolVar(&opts.Resume, "resume", false, "continue an interrupted run in OUTDIR")
	fl.BoolVar(&opts.Force, "force", false, "overwrite a non-empty OUTDIR")
	fl.BoolVar(&opts.Strict, "strict", false, "stop at the first bad record (exit 2, keeping the batches before it) instead of logging it")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress output")
	_ = cmd.MarkFlagRequired("output")
	mutuallyExclusive(cmd, "resume", "force")
	return cmd
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

	// PolicyTranspose is the --policy-transpose of the run when it is not the default (planes): absent, as in
	// manifests written before the option existed, means planes, so both compare equal on --resume and merge.
	PolicyTranspose string `json:"policy_transpose,omitempty"`
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
	names := opts.Inputs
	if len(names) == 0 {
		names = []string{opts.Input}
	}
	inputs, err := openInputs("batch", names, opts.InputType, f.IO.In)
	if err != nil {
		return err
	}
	defer inputs.Close()
	typ, size := inputs.typ, inputs.size
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
	specs, err := opts.Lenses.specs(cfg)
	if err != nil {
		return err
	}
	// The output directory is locked before the network loads (seconds for a large one), so that a second
	// run on it fails at once; store.Open adopts the lock.
	lock, err := store.LockDir(opts.Output)
	if err != nil {
		return storeError(err)
	}
	defer lock.Release() // a no-op once store.Open has adopted it
	sess, err := f.Session(opts.InputFormat)
	if err != nil {
		return err
	}
	// Signals are caught from here on: building the engine may already stream a file (--mean-from).
	ctx := opts.Interrupt
	if ctx == nil {
		var stop func()
		ctx, stop = signalContext()
		defer stop()
	}
	sess.ctx = ctx
	eng, err := sess.engine(specs, opts.Lenses.savePlanes, opts.Lenses.keep...)
	if err != nil {
		if interrupted(ctx, err) {
			return &interruptedError{cmd: "batch", hint: "while averaging --mean-from, before any position: rerun", cause: err}
		}
		return err
	}
	net, enc := sess.net, sess.enc
	if eng.NeedsCorrupt() && typ != source.JSONL {
		return usageErrorf("batch: --lens %s compares each position with a corrupted one: give a JSONL input whose records have corrupt_fen and/or corrupt_moves", strings.Join(cfg.Lens, ","))
	}
	name, lensOpts := opts.Lenses.info(specs)
	input := inputInfo{Name: inputs.name(), Type: string(typ), Plies: plies.String(), InputFormat: enc.Format.String(), HistoryFill: enc.Fill.String()}
	if enc.Policy != board.TransposePlanes {
		input.PolicyTranspose = enc.Policy.String()
	}
	extra := map[string]any{"input": input}
	if shard.Count > 0 {
		extra["shard"] = shardInfo{Index: shard.Index, Count: shard.Count}
	}
	if meta := eng.Meta(); meta != nil {
		extra["lens_meta"] = meta
	}
	storeOpts := store.Options{
		Format: store.Format(cfg.Format), Resume: opts.Resume, Force: opts.Force, ToolVersion: f.Version,
		Model: store.ModelInfo{Path: net.Path, SHA256: net.SHA256},
		Lens:  store.LensInfo{Name: name, Options: lensOpts},
		Extra: extra, WrapFile: wrapOutput, Lock: lock,
	}
	w, err := store.Open(opts.Output, storeOpts)
	if err != nil {
		return storeError(resumeError(err))
	}
	skipPos, skipBad, skipRecords := w.Done()
	skipItems := w.DoneItems()
	if opts.Resume && !opts.Quiet {
		at := fmt.Sprintf("input record %d", skipRecords)
		if skipItems > 0 {
			at += fmt.Sprintf(", after its first %d positions", skipItems)
		}
		fmt.Fprintf(f.IO.ErrOut, "batch: resuming at position %d (%s)\n", skipPos, at)
	}

	hash := sha256.New()
	inputs.tee(hash)
	var prog *pipeline.Progress
	if !opts.Quiet {
		prog = pipeline.NewProgress(f.IO.ErrOut, f.IO.StderrTTY, "batch", size, skipPos)
		prog.Start()
	}
	sink := &batchSink{w: w, dir: opts.Output, opts: storeOpts, input: input, shard: shard, hash: hash}
	start := time.Now()
	sum, err := pipeline.Run(ctx,
		pipeline.Input{Parts: inputs.parts, Name: inputs.name(), Type: typ, Select: source.Options{Plies: plies, Shard: shard}, SkipRecords: skipRecords, SkipItems: skipItems},
		eng, sink,
		pipeline.Options{BatchSize: cfg.BatchSize, Format: enc.Format, Fill: enc.Fill, Policy: enc.Policy, Corrupt: eng.NeedsCorrupt(), Strict: opts.Strict,
			Progress: func(s pipeline.Summary) {
				if prog != nil {
					prog.Update(s)
				}
			}})
	if prog != nil {
		prog.Stop()
	}
	positions, bad := skipPos+sum.Positions, skipBad+sum.Bad
	if err != nil {
		var se *pipeline.StrictError
		switch {
		case ctx.Err() != nil && errors.Is(err, context.Cause(ctx)):
			return &interruptedError{cmd: "batch", positions: sink.committed, hint: "rerun with --resume", cause: err}
		case errors.As(err, &se):
			// --strict asked for the input to be clean: a bad record is the input's fault, like a bad flag.
			return inputError(fmt.Errorf("batch: %w", err))
		case errors.Is(err, syscall.ENOSPC):
			return &diskFullError{dir: opts.Output, err: err}
		}
		return err
	}
	if positions == 0 {
		return noneUsable(inputs.name(), shard.Records(sum.Records), sink.firstBad)
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

// wrapOutput, when set (tests), wraps the output directory's data files to inject write faults.
var wrapOutput func(path string, w io.Writer) io.Writer

// diskFullError is a write that failed for want of space: one line naming the file and what to do.
type diskFullError struct {
	dir string
	err error
}

func (e *diskFullError) Error() string {
	path := e.dir
	var pe *os.PathError
	if errors.As(e.err, &pe) {
		path = pe.Path
	}
	return fmt.Sprintf("batch: no space left on device while writing %s: output left at its last commit; free space and rerun with --resume", path)
}

func (e *diskFullError) Unwrap() error { return e.err }

// batchSink writes analysed batches into the output directory, committing after each, and finishes the
// manifest with what only the end of the input tells (its size and sha256, the shard's record count).
type batchSink struct {
	w     *store.Writer
	dir   string
	opts  store.Options // as opened, to settle the directory after a stop
	input inputInfo
	shard source.Shard
	hash  hash.Hash // of every input byte read
	// committed is the number of positions the directory holds once the run has stopped.
	committed int
	firstBad  *pipeline.BadRecord
}

func (s *batchSink) Consume(_ context.Context, b *pipeline.Batch) error {
	if s.firstBad == nil && len(b.Bad) > 0 {
		s.firstBad = &b.Bad[0]
	}
	return commitBatch(s.w, b)
}

// noneUsable is the input error of a run that analysed nothing: the input is not what it was taken for (a
// gzip file, random bytes, a CSV read as FEN) or empty, and an empty output would only hide that.
func noneUsable(input string, records int, first *pipeline.BadRecord) error {
	if first == nil {
		return usageErrorf("batch: 0 of %d records usable: %s holds no position to analyse", records, input)
	}
	where := fmt.Sprintf("record %d", first.Record)
	if first.Line > 0 {
		where = fmt.Sprintf("line %d", first.Line)
	}
	reason := first.Reason
	if len(reason) > 200 {
		reason = reason[:200] + "..."
	}
	return usageErrorf("batch: 0 of %d records usable (first error: %s: %s)", records, where, reason)
}

// Close finishes the output when the run completed. Otherwise it leaves the directory at its last commit,
// for --resume: positions written after it (the open record of the last batch) are truncated away now,
// as a resume would, so that no reader of the stopped output sees rows beyond the manifest's count. After a
// failed write the files are left as they are; the resume truncates them.
func (s *batchSink) Close(sum pipeline.Summary, err error) error {
	if err != nil {
		if aerr := s.w.Abort(); aerr != nil {
			return aerr
		}
		o := s.opts
		o.Resume, o.Force, o.Lock = true, false, nil // Abort released the adopted lock
		settled, serr := store.Open(s.dir, o)
		if serr != nil {
			return fmt.Errorf("batch: leave %s at its last commit: %w", s.dir, serr)
		}
		s.committed, _, _ = settled.Done()
		return settled.Abort()
	}
	size := sum.Bytes
	s.input.Size, s.input.SHA256 = &size, hex.EncodeToString(s.hash.Sum(nil))
	if err := s.w.SetExtra("input", s.input); err != nil {
		return errors.Join(err, s.w.Abort())
	}
	if sh := s.shard; sh.Count > 0 {
		recs := &shardRecords{First: sh.Index, Stride: sh.Count, Count: sh.Records(sum.Records)}
		if err := s.w.SetExtra("shard", shardInfo{Index: sh.Index, Count: sh.Count, Records: recs}); err != nil {
			return errors.Join(err, s.w.Abort())
		}
	}
	return s.w.Close()
}

// commitBatch writes one analysed batch and commits all of it: the cut is the batch's complete records plus
// the items of the game still open (inside a game longer than a batch), so a resume skips exactly what is
// written and a slow lens loses no analysed position.
func commitBatch(w *store.Writer, b *pipeline.Batch) error {
	for _, r := range b.Bad {
		if err := w.AddError(store.ErrorRecord{Source: r.Source, Record: r.Record, Game: r.Game, Line: r.Line, Reason: r.Reason}); err != nil {
			return err
		}
	}
	for i, it := range b.Items {
		meta := positionMeta(it.Source, it.Game, it.Ply, it.Pos, it.Next)
		meta.Record = it.Record
		if p := it.Puzzle; p != nil {
			meta.Puzzle = &store.PuzzleMeta{ID: p.ID, Rating: p.Rating, Themes: p.Themes, Solution: p.Solution()}
		}
		if err := w.Add(meta, storeResults(b.Results, i)); err != nil {
			return err
		}
	}
	w.SetCut(b.Records, b.OpenItems)
	return w.Commit()
}
