package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
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
	Output    string
	Plies     string
	Lenses    lensFlags
	Resume    bool
	Force     bool
	Strict    bool
	Quiet     bool
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
array), or - for stdin (with --input-type). Bad records are logged to errors.jsonl and skipped.

Results are committed after every batch: a run that is killed can be finished with --resume.`,
		Example: `  lczerolens batch games.pgn --model maia-1100.onnx --lens activation --pattern '^block5/conv2/relu$' -o out/
  lczerolens batch puzzles.epd --lens saliency --target policy:best -o sal/ --format json
  zcat big.pgn.gz | lczerolens batch - --input-type pgn --plies every:10 -o out/
  lczerolens batch games.pgn --lens activation -o out/ --resume   # finish an interrupted run`,
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
	fl.String("history-fill", "fen-only", "history planes for games starting from a FEN: fen-only, always, no, current")
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
	recs    []int // input record of each position
	bads    []store.ErrorRecord
	bytes   int64 // input bytes consumed when the batch was cut
	records int   // input records complete once this batch is written
}

// countingReader tracks input bytes for progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
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
	hf, err := fill(cfg)
	if err != nil {
		return err
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
	net, err := f.Network()
	if err != nil {
		return err
	}
	rt, err := f.Runtime()
	if err != nil {
		return err
	}
	eng, err := lens.NewEngine(rt, net, specs, lens.EngineOptions{SavePlanes: opts.Lenses.savePlanes})
	if err != nil {
		return inputError(err)
	}
	name, lensOpts := lensInfo(specs)
	w, err := store.Open(opts.Output, store.Options{
		Format: store.Format(cfg.Format), Resume: opts.Resume, Force: opts.Force, ToolVersion: f.Version,
		Model: store.ModelInfo{Path: net.Path, SHA256: net.SHA256},
		Lens:  store.LensInfo{Name: name, Options: lensOpts},
		Extra: map[string]any{"input": map[string]any{"name": opts.Input, "type": string(typ), "plies": plies.String(), "history_fill": hf.String()}},
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
	cr := &countingReader{r: in}
	batches := make(chan *pending, 2)
	readErr := make(chan error, 1)
	go func() {
		readErr <- readBatches(ctx, cr, opts.Input, typ, plies, hf, cfg.BatchSize, skipRecords, opts.Strict, batches)
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
	finished = true
	if err := w.Close(); err != nil {
		return err
	}
	elapsed := time.Since(start).Seconds()
	if !opts.Quiet {
		fmt.Fprintf(f.IO.ErrOut, "batch: %d positions, %d bad records, %.1f s (%.0f positions/s) -> %s\n",
			positions, bad, elapsed, float64(positions-skipPos)/max(elapsed, 1e-9), opts.Output)
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
		if !marked && p.recs[i] >= p.records {
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

// readBatches reads and encodes positions into batches of size n, skipping the records a resumed run
// already has. Each batch says how many input records are complete once it is written, so a commit never
// splits a game.
func readBatches(ctx context.Context, cr *countingReader, name string, typ source.Type, plies source.Plies, hf board.HistoryFill, n, skipRecords int, strict bool, out chan<- *pending) error {
	newPending := func() *pending {
		return &pending{batch: lens.Batch{Planes: make([]float32, 0, n*board.NumPlanes*64)}}
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
	records := 0 // records seen so far (the last one may be incomplete)
	planes := make([]float32, board.NumPlanes*64)
	err := source.Walk(cr, name, typ, plies, func(it *source.Item) error {
		records = it.Record + 1
		if it.Record < skipRecords {
			return nil
		}
		it.History.Encode(hf, planes)
		cur.batch.Planes = append(cur.batch.Planes, planes...)
		cur.batch.Positions = append(cur.batch.Positions, it.Pos)
		cur.metas = append(cur.metas, positionMeta(it.Source, it.Game, it.Ply, it.Pos, it.Next))
		cur.recs = append(cur.recs, it.Record)
		if cur.batch.Len() == n {
			return flush(it.Record) // records before this one are complete
		}
		return nil
	}, func(b *source.Bad) error {
		records = b.Record + 1
		if b.Record < skipRecords {
			return nil
		}
		rec := store.ErrorRecord{Source: name, Record: b.Record, Game: b.Game, Line: b.Line, Reason: b.Reason}
		cur.bads = append(cur.bads, rec)
		if strict {
			if err := flush(records); err != nil {
				return err
			}
			return &strictError{bad: rec}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush(max(records, skipRecords))
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
