package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/concepts"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/pipeline"
	"github.com/lczerolens/lczerolens/internal/probe"
	"github.com/lczerolens/lczerolens/internal/source"
)

// ProbeTrainOptions are the inputs of `lczerolens probe train`.
type ProbeTrainOptions struct {
	Factory      *Factory
	Input        string
	Inputs       []string // all the inputs; empty means Input alone
	InputType    string
	InputFormat  string
	Plies        string
	Output       string
	Pattern      string
	Concept      string
	Task         string // auto, regression or binary
	Holdout      float64
	Seed         uint64
	L2           string // "auto" or a penalty
	MaxGap       float64
	MaxRows      int
	Epochs       int
	MaxPositions int
	MinClass     int
	Force        bool
	Quiet        bool
	PerSquare    bool
	Bilinear     bool
	Rank         int
}

// NewCmdProbe builds `lczerolens probe` with its train subcommand.
func NewCmdProbe(f *Factory, runF ...func(*ProbeTrainOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Train linear probes of chess concepts on module activations",
		Long: `Linear probes read a concept (material balance, check, ...) from a module's activations: a probe that
scores well on held-out positions shows the module represents the concept linearly. Train them with
"probe train"; apply them with "analyse --lens probing --probe probe.json" (or batch).`,
	}
	def := probe.DefaultFitOptions()
	opts := &ProbeTrainOptions{Factory: f}
	train := &cobra.Command{
		Use:   "train INPUT... --concept NAME -o probe.json",
		Short: "Train one probe per module matched by --pattern on the positions of INPUT",
		Long: `Train a linear probe of --concept on the activations of every module matched by --pattern, over every
position of INPUT (a PGN, FEN/EPD list or JSONL file, as for "batch"), and report the held-out score per
module: R^2 for a regression concept, accuracy for a binary one. Whole records (games, lines) are held out
(--holdout, chosen deterministically from --seed).

Concepts (seen from the side to move):
` + conceptHelp() + `  column:NAME            the field NAME of each JSONL record (a number: regression; true/false: binary)

Per-square concepts (with --per-square: one linear map shared by the 64 squares of a [C,8,8] module
or of a [64,E] attention body's tokens, from a square's activations to its label, fitted by ridge
regression on the label's one-hot code):
` + squareConceptHelp() + `A record's solution is its JSONL "solution" field: UCI moves from the position, separated by spaces.
--bilinear (top-1 concepts) trains leela-interp's bilinear probe instead: square i scores
x_i' A' B [z; 1], A and B of --rank rows (W = A'B, a low-rank bilinear map), x_i the square's
standardised activations, z the first solution move's target square's activations for move-target:N
with N >= 2 (leela-interp predicts the third move's target from the first's), else the mean of the 64
squares' (the appended 1 lets W contain a linear probe); softmax over the 64 squares, mean cross-entropy
+ --l2 * (|A|^2 + |B|^2), minimised by full-batch L-BFGS from a start seeded by --seed (deterministic), on
up to --max-rows/4 training positions (256*C bytes each). --l2 auto picks the penalty from 1e-4, ..., 1
by 5-fold cross-validation over whole records on up to 1,000 of them.

Activations are standardised (each of the d values scaled to unit variance over the training positions).
--l2 auto (the default) chooses each module's penalty from 1e-3, 1e-2, ..., 1e3 by 5-fold
cross-validation over whole records (a game's positions share a fold) on a sample of up to 1,500
training positions, and reports it; on larger training sets this errs towards the stronger penalty.
Regression concepts use ridge regression, minimising the mean squared error + --l2 * |w|^2, solved
exactly by a Cholesky factorisation of the normal equations: up to --max-rows training positions are kept
in memory (4*d bytes each), and the smaller of the d x d and n x n systems is solved (8*min(n,d)^2 bytes
while solving); past that, the d x d normal equations are accumulated instead (8*d*d bytes per module,
and d*d/2 multiply-adds per position: slow for large modules). Binary concepts use logistic regression (mean
log-loss + --l2 * |w|^2), trained by --epochs epochs of mini-batch Adam on a uniform sample of --max-rows
training positions. Held-out scores use a uniform sample of up to --max-rows/2 held-out positions.
Positions where the concept is undefined are skipped. The probe file stores weights and bias over the raw
activations.

The report gives each held-out score next to its baseline, the best constant: for binary concepts
the rate of the training majority label (MAJORITY), balanced accuracy and ROC AUC; for regression
the R^2 of predicting the training mean. VS BASELINE says "above" (better by more than 2 standard
errors; for binary concepts, ROC AUC above 0.5), "chance" or "below"; a training score above the
held-out one by more than --max-gap is a warning. A concept whose label never varies, or a binary
one with fewer than --min-class training positions of a label, is refused (exit 2).`,
		Example: `  lczerolens probe train games.pgn --model maia-1100.onnx --concept material-balance -o material.json
  lczerolens probe train puzzles.jsonl --model maia-1100.onnx --concept column:rating --pattern '^block3/' -o rating.json
  lczerolens probe train games.pgn --model maia-1100.onnx --concept square-piece --per-square -o pieces.json
  lczerolens probe train puzzles.jsonl --model maia-1100.onnx --concept move-target:1 --per-square -o target.json
  lczerolens probe train puzzles.csv --model maia-1100.onnx --concept move-target:3 --per-square --bilinear -o t3.json
  lczerolens analyse --model maia-1100.onnx --lens probing --probe material.json --fen "..."`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Input, opts.Inputs = args[0], args
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runProbeTrain(opts)
		},
	}
	fl := train.Flags()
	fl.StringVarP(&opts.Output, "output", "o", "", "probe file to write (required)")
	fl.BoolVar(&opts.Force, "force", false, "replace an existing probe file")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress output")
	fl.BoolVar(&opts.PerSquare, "per-square", false, "train per-square probes of a per-square concept (see above)")
	fl.BoolVar(&opts.Bilinear, "bilinear", false, "with --per-square and a top-1 concept: bilinear probes (see above)")
	fl.IntVar(&opts.Rank, "rank", probe.DefaultRank, "rank of --bilinear probes (capped at the module's channels)")
	fl.StringVar(&opts.Concept, "concept", "", "concept to probe (see above; required)")
	fl.StringVar(&opts.Pattern, "pattern", "", "Go regexp over module names; default "+lens.DefaultActivationPattern)
	fl.StringVar(&opts.Task, "task", "auto", "auto (the concept's kind), regression or binary")
	fl.Float64Var(&opts.Holdout, "holdout", 0.2, "fraction of input records held out for scoring")
	fl.Uint64Var(&opts.Seed, "seed", def.Seed, "seed of the held-out split and samples")
	fl.StringVar(&opts.L2, "l2", "auto", "L2 penalty on standardised activations (mean loss + l2*|w|^2), or auto (see above)")
	fl.Float64Var(&opts.MaxGap, "max-gap", 0.1, "warn when a probe's training score exceeds its held-out score by more")
	fl.IntVar(&opts.MaxRows, "max-rows", def.MaxRows, "positions kept in memory per module and split (see above)")
	fl.IntVar(&opts.Epochs, "epochs", def.Epochs, "epochs of logistic regression")
	fl.IntVar(&opts.MaxPositions, "max-positions", 0, "stop after this many labelled positions (0 = the whole input)")
	fl.IntVar(&opts.MinClass, "min-class", 10, "refuse a binary concept with fewer training positions of either label")
	fl.StringVar(&opts.InputType, "input-type", "", inputTypeHelp)
	fl.StringVar(&opts.InputFormat, "input-format", "", inputFormatHelp)
	streamEncodingFlags(fl)
	fl.StringVar(&opts.Plies, "plies", "all", "positions of each game: all, first:N, last, every:N")
	_ = train.MarkFlagRequired("output")
	_ = train.MarkFlagRequired("concept")
	cmd.AddCommand(train)
	return cmd
}

func squareConceptHelp() string {
	var b strings.Builder
	for _, c := range concepts.SquareList() {
		fmt.Fprintf(&b, "  %-27s %s (%s)\n", c.Syntax, c.Doc, c.Kind) // one line each, as conceptHelp
	}
	return b.String()
}

func conceptHelp() string {
	var b strings.Builder
	for _, c := range concepts.List() {
		fmt.Fprintf(&b, "  %-22s %s (%s)\n", c.Syntax, c.Doc, c.Kind)
	}
	return b.String()
}

// labeler gives an item's label; ok is false when the concept is undefined there.
type labeler struct {
	concept *concepts.Concept // nil for a column
	column  string
	binary  bool
	decided bool // the kind is known (always, except for a column under --task auto before its first value)
}

func newLabeler(name, task string) (*labeler, error) {
	if task != "auto" && task != "regression" && task != "binary" {
		return nil, usageErrorf("probe train: --task %q: want auto, regression or binary", task)
	}
	l := &labeler{binary: task == "binary", decided: task != "auto"}
	if col, ok := strings.CutPrefix(name, "column:"); ok {
		if col == "" {
			return nil, usageErrorf("probe train: --concept column: needs a field name")
		}
		l.column = col
		return l, nil
	}
	c, err := concepts.Parse(name)
	if err != nil {
		return nil, inputError(err)
	}
	l.concept = c
	if l.binary && c.Kind != concepts.Binary {
		return nil, usageErrorf("probe train: --task binary: %s is a %s concept, not 0/1", name, c.Kind)
	}
	if !l.decided {
		l.binary, l.decided = c.Kind == concepts.Binary, true
	}
	return l, nil
}

func (l *labeler) label(it *source.Item) (float64, bool, error) {
	if l.concept != nil {
		s := concepts.Sample{Pos: it.Pos, Move: it.Next}
		if raw, ok := it.Fields["best_move"]; ok {
			var mv string
			if err := json.Unmarshal(raw, &mv); err != nil {
				return 0, false, fmt.Errorf("best_move: want a string: %w", err)
			}
			m, err := it.Pos.ParseMove(mv)
			if err != nil {
				return 0, false, fmt.Errorf("best_move: %w", err)
			}
			s.Move = &m
		}
		v, ok := l.concept.Label(s)
		return v, ok, nil
	}
	raw, ok := it.Fields[l.column]
	if it.Puzzle != nil {
		raw, ok = puzzleColumn(it.Puzzle, l.column)
	}
	if !ok || string(raw) == "null" {
		return 0, false, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, false, fmt.Errorf("field %q: %w", l.column, err)
	}
	switch x := v.(type) {
	case bool:
		if !l.decided {
			l.binary, l.decided = true, true
		}
		if x {
			return 1, true, nil
		}
		return 0, true, nil
	case float64:
		if !l.decided {
			l.binary, l.decided = false, true
		}
		if l.binary && x != 0 && x != 1 {
			return 0, false, fmt.Errorf("field %q: %v is not 0 or 1 (--task binary)", l.column, x)
		}
		return x, true, nil
	}
	return 0, false, fmt.Errorf("field %q: %s is neither a number nor true/false", l.column, raw)
}

func (l *labeler) name() string {
	if l.concept != nil {
		return l.concept.Name
	}
	return "column:" + l.column
}

func runProbeTrain(opts *ProbeTrainOptions) (err error) {
	f := opts.Factory
	cfg := f.Config()
	switch {
	case opts.Holdout < 0 || opts.Holdout >= 1:
		return usageErrorf("probe train: --holdout %g: want 0 <= fraction < 1", opts.Holdout)
	case opts.MaxGap <= 0:
		return usageErrorf("probe train: --max-gap %g: want a positive difference of scores", opts.MaxGap)
	case opts.MaxRows < 1 || opts.Epochs < 1 || opts.MaxPositions < 0 || opts.MinClass < 1:
		return usageErrorf("probe train: --max-rows, --epochs and --min-class must be positive, --max-positions not negative")
	}
	switch {
	case opts.Bilinear && !opts.PerSquare:
		return usageErrorf("probe train: --bilinear probes score the squares of a per-square concept: add --per-square")
	case opts.Rank < 1:
		return usageErrorf("probe train: --rank %d: want a positive rank such as %d", opts.Rank, probe.DefaultRank)
	}
	fit := probe.FitOptions{MaxRows: opts.MaxRows, Seed: opts.Seed, Epochs: opts.Epochs, Bilinear: opts.Bilinear, Rank: opts.Rank}
	if opts.L2 == "auto" {
		fit.Grid = probe.DefaultGrid()
		if opts.Bilinear {
			fit.Grid = probe.BilinearGrid()
		}
	} else if fit.L2, err = strconv.ParseFloat(opts.L2, 64); err != nil || !(fit.L2 > 0) || math.IsInf(fit.L2, 0) {
		return usageErrorf("probe train: --l2 %q: want auto or a positive penalty such as 0.1", opts.L2)
	}
	if err := checkOutputFile("probe train", opts.Output, opts.Force); err != nil {
		return err
	}
	var lab *labeler
	var sq *concepts.SquareConcept
	if opts.PerSquare {
		if sq, err = concepts.ParseSquare(opts.Concept); err != nil {
			return inputError(fmt.Errorf("probe train: --per-square: %w", err))
		}
		if opts.Bilinear && !sq.Top1 {
			return usageErrorf("probe train: --bilinear scores the 64 squares against each other, and %s is not a top-1 concept: use move-target:N or drop --bilinear", sq.Name)
		}
	} else if lab, err = newLabeler(opts.Concept, opts.Task); err != nil {
		if _, serr := concepts.ParseSquare(opts.Concept); serr == nil {
			return usageErrorf("probe train: --concept %s has a label per square: add --per-square", opts.Concept)
		}
		return err
	}
	names := opts.Inputs
	if len(names) == 0 {
		names = []string{opts.Input}
	}
	inputs, err := openInputs("probe train", names, opts.InputType, f.IO.In)
	if err != nil {
		return err
	}
	defer inputs.Close()
	typ, size := inputs.typ, inputs.size
	if lab != nil && lab.concept == nil && typ != source.JSONL && typ != source.Puzzles {
		return usageErrorf("probe train: --concept %s reads a JSONL field or puzzle column, but the input is %s", lab.name(), typ)
	}
	plies, err := source.ParsePlies(opts.Plies)
	if err != nil {
		return inputError(err)
	}
	pattern := opts.Pattern
	if pattern == "" {
		pattern = lens.DefaultActivationPattern
	}
	actValues, err := lens.Activation.Resolve(map[string]string{"pattern": pattern})
	if err != nil {
		return inputError(err)
	}
	sess, err := f.Session(opts.InputFormat)
	if err != nil {
		return err
	}
	net, enc := sess.net, sess.enc
	mods, err := net.Select(pattern)
	if err != nil {
		return inputError(err)
	}
	if sq != nil {
		if err := squareModules(mods); err != nil {
			return err
		}
	}
	eng, err := sess.engine([]lens.Spec{{Lens: lens.Activation, Values: actValues}}, false)
	if err != nil {
		return err
	}

	ctx, stop := signalContext()
	defer stop()
	var sink pipeline.Sink
	var accept func(it *source.Item) (any, bool, error)
	var squares *squareSink
	if sq != nil {
		squares = &squareSink{mods: mods, concept: sq, fit: fit}
		sink, accept = squares, squares.accept(opts)
	} else {
		ps := &probeSink{mods: mods, lab: lab, fit: fit}
		sink, accept = ps, lab.accept(opts)
	}
	popts := pipeline.Options{BatchSize: cfg.BatchSize, Format: enc.Format, Fill: enc.Fill, Policy: enc.Policy, Limit: opts.MaxPositions, Accept: accept}
	progress := io.Discard
	if !opts.Quiet {
		progress = f.IO.ErrOut
		prog := pipeline.NewProgress(f.IO.ErrOut, f.IO.StderrTTY, "probe train", size, 0)
		prog.Start()
		defer prog.Stop()
		popts.Progress = prog.Update
	}
	sum, err := pipeline.Run(ctx, pipeline.Input{Parts: inputs.parts, Name: inputs.name(), Type: typ, Select: source.Options{Plies: plies}}, eng, sink, popts)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Cause(ctx)) {
			return &interruptedError{cmd: "probe train", positions: sum.Positions, hint: "no probe written; rerun (with --max-positions to train on fewer)", cause: err}
		}
		return err
	}
	if sum.Positions == 0 {
		return inputError(fmt.Errorf("probe train: no labelled position in %s (%d skipped, %d bad records)", opts.Input, sum.Skipped, sum.Bad))
	}
	if squares != nil {
		return finishSquares(ctx, opts, net, squares, sum, progress)
	}
	return finishProbes(ctx, opts, net, lab, sink.(*probeSink), sum, progress)
}

// accept labels a stream item and assigns its record to a split.
func (lab *labeler) accept(opts *ProbeTrainOptions) func(it *source.Item) (any, bool, error) {
	return func(it *source.Item) (any, bool, error) {
		y, ok, err := lab.label(it)
		if err != nil {
			return nil, false, inputError(fmt.Errorf("probe train: record %d: %w", it.Record, err))
		}
		return probeLabel{y: y, holdout: probe.InHoldout(opts.Seed, opts.Holdout, it.Record)}, ok, nil
	}
}

// finishProbes fits the whole-position probes, writes the probe file and prints the report.
func finishProbes(ctx context.Context, opts *ProbeTrainOptions, net *model.Network, lab *labeler, sink *probeSink, sum pipeline.Summary, progress io.Writer) error {
	f, fit := opts.Factory, sink.fit
	positions, skips, bad, fitters := sum.Positions, sum.Skipped, sum.Bad, sink.fitters

	labels := fitters[0].Labels() // every fitter saw the same labels
	if err := labels.Check(lab.binary, opts.MinClass); err != nil {
		return inputError(fmt.Errorf("probe train: %s on %s: %w", lab.name(), opts.Input, err))
	}
	how := fmt.Sprintf("--l2 %g", fit.L2)
	if len(fit.Grid) > 0 {
		how = fmt.Sprintf("--l2 auto: %d penalties x %d folds", len(fit.Grid), probe.DefaultFolds)
	}
	fmt.Fprintf(progress, "probe train: fitting %d probes on %d positions (%s)\n", len(fitters), positions, how)
	probes, err := fitAll(ctx, fitters, progress)
	if err != nil {
		if ctx.Err() != nil {
			return &interruptedError{cmd: "probe train", positions: positions, hint: "while fitting; no probe written", cause: context.Cause(ctx)}
		}
		return err
	}
	kind := "regression"
	if lab.binary {
		kind = "binary"
	}
	pf := &probe.File{
		Format: probe.Format, FormatVersion: 1, ToolVersion: f.Version,
		Model:   probe.ModelID{Path: net.Path, SHA256: net.SHA256, Graph: net.GraphSHA256},
		Concept: lab.name(), Kind: kind, Input: opts.Input, Holdout: opts.Holdout, Seed: opts.Seed,
		L2: fit.L2, L2Grid: fit.Grid, MaxRows: opts.MaxRows, Skipped: skips, Labels: &labels, Probes: probes,
	}
	pf.Warnings = probe.GapWarnings(probes, opts.MaxGap)
	if err := writeOutput("probe train", f.IO.Out, opts.Output, opts.Force, func(w io.Writer) error { return probe.Write(w, pf) }); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "probe train: %s (%s) on %d positions (%d skipped, %d bad records) -> %s\n", pf.Concept, kind, positions, skips, bad, opts.Output)
	return printProbes(f.IO.Out, pf)
}

// probeLabel is a position's concept value and split.
type probeLabel struct {
	y       float64
	holdout bool
}

// probeSink feeds each batch's activations to one probe fitter per module.
type probeSink struct {
	mods    []model.Module
	lab     *labeler
	fit     probe.FitOptions
	fitters []*probe.Fitter // made at the first batch, once the kind and shapes are known
}

func (s *probeSink) Consume(_ context.Context, b *pipeline.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	if s.fitters == nil {
		s.fit.Binary = s.lab.binary
		for k, m := range s.mods {
			s.fitters = append(s.fitters, probe.NewFitter(m.Name, b.Results[k].Shape, s.fit))
		}
	}
	for k, fr := range s.fitters {
		for i, it := range b.Items {
			l := it.Label.(probeLabel)
			if err := fr.AddGroup(b.Results[k].Row(i), l.y, it.Record, l.holdout); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close has nothing to finish: the probes are fitted once the run is over.
func (s *probeSink) Close(pipeline.Summary, error) error { return nil }

// fitAll fits the modules' probes concurrently, one per core, and logs each as it is done. Once ctx is done
// it starts no more and returns what stopped the others.
func fitAll(ctx context.Context, fitters []*probe.Fitter, log io.Writer) ([]probe.Probe, error) {
	probes := make([]probe.Probe, len(fitters))
	errs := make([]error, len(fitters))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	var mu sync.Mutex
	done, began := 0, time.Now()
	for k, fr := range fitters {
		sem <- struct{}{}
		if ctx.Err() != nil {
			<-sem
			errs[k] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			p, err := fr.FitContext(ctx)
			if err != nil {
				errs[k] = err
				return
			}
			probes[k] = *p
			mu.Lock()
			done++
			fmt.Fprintf(log, "probe train: fitted %s (%d of %d, l2 %.3g), %.0f s\n", p.Module, done, len(fitters), p.L2, time.Since(began).Seconds())
			mu.Unlock()
		}()
	}
	wg.Wait()
	return probes, errors.Join(errs...)
}

// scoreCell is a score in the probe tables: 4 decimals, "-" where it is undefined (NaN).
func scoreCell(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%.4f", x)
}

// printProbes writes the label counts and the per-module table: each held-out score next to its baseline,
// and notes on the probes that do no better than the baseline.
func printProbes(w io.Writer, pf *probe.File) error {
	l := pf.Labels
	split := func(s probe.SplitLabels) string {
		if pf.Binary() {
			return fmt.Sprintf("%d (%d true %.1f%%, %d false)", s.N, s.Positives, 100*float64(s.Positives)/float64(max(s.N, 1)), s.Negatives())
		}
		return fmt.Sprintf("%d (mean %.4g, std %.4g, range %.4g..%.4g)", s.N, s.Mean, s.Std, s.Min, s.Max)
	}
	fmt.Fprintf(w, "labels: train %s; held out %s\n", split(l.Train), split(l.Test))
	if pf.Binary() && l.Test.N > 0 && min(l.Test.Positives, l.Test.Negatives()) == 0 {
		fmt.Fprintf(w, "warning: the held-out positions all have one label: balanced accuracy and AUC are undefined (raise --holdout or use more positions)\n")
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if pf.Binary() {
		fmt.Fprintln(tw, "MODULE\tL2\tTRAIN\tHELD OUT\tACCURACY\tMAJORITY\tBAL ACC\tAUC\tTRAIN ACC\tVS BASELINE")
	} else {
		fmt.Fprintln(tw, "MODULE\tL2\tTRAIN\tHELD OUT\tR2\tMEAN R2\tTRAIN R2\tVS BASELINE")
	}
	counts := map[string]int{}
	for _, p := range pf.Probes {
		counts[p.Verdict]++
		verdict := p.Verdict
		if verdict == "" {
			verdict = "-"
		}
		if pf.Binary() {
			fmt.Fprintf(tw, "%s\t%.3g\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Module, p.L2, p.Train, p.Test, scoreCell(p.Score), scoreCell(p.Baseline),
				scoreCell(p.BalancedAccuracy), scoreCell(p.AUC), scoreCell(p.TrainScore), verdict)
		} else {
			fmt.Fprintf(tw, "%s\t%.3g\t%d\t%d\t%s\t%s\t%s\t%s\n", p.Module, p.L2, p.Train, p.Test, scoreCell(p.Score), scoreCell(p.Baseline), scoreCell(p.TrainScore), verdict)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("probe train: write: %w", err)
	}
	base := "the held-out mean R^2 of predicting the training mean"
	if pf.Binary() {
		base = "always answering the training majority label (MAJORITY); ABOVE needs ROC AUC above 0.5"
	}
	if n := counts[probe.Chance]; n > 0 {
		fmt.Fprintf(w, "note: %d of %d probes score within noise (2 standard errors) of the baseline, %s: the concept is not read linearly there\n", n, len(pf.Probes), base)
	}
	for _, g := range pf.Warnings {
		fmt.Fprintf(w, "warning: %s\n", g)
	}
	if n := counts[probe.Below]; n > 0 {
		fmt.Fprintf(w, "warning: %d of %d probes score below the baseline by more than 2 standard errors: a constant does better (compare the training score to tell overfitting from a poor fit)\n", n, len(pf.Probes))
	}
	return nil
}

// puzzleColumn is a puzzle CSV column (named as in its header, any case) as a JSON value: a number when it
// reads as one, else a string.
func puzzleColumn(p *source.Puzzle, name string) (json.RawMessage, bool) {
	for i, c := range source.PuzzleColumns {
		if !strings.EqualFold(c, name) || i >= len(p.Columns) {
			continue
		}
		v := p.Columns[i]
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			return json.RawMessage(v), true
		}
		b, _ := json.Marshal(v)
		return b, true
	}
	return nil, false
}
