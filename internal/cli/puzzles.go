package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/atomicfile"
	"github.com/lczerolens/lczerolens/internal/pipeline"
	"github.com/lczerolens/lczerolens/internal/puzzle"
	"github.com/lczerolens/lczerolens/internal/source"
	"github.com/lczerolens/lczerolens/internal/store"
)

// PuzzlesOptions are the inputs of `lczerolens puzzles`.
type PuzzlesOptions struct {
	Factory     *Factory
	Inputs      []string
	InputType   string
	InputFormat string
	Models      []string // --model, repeated; empty: the configured model
	Sparring    string
	SparringSet bool // --sparring given ("" names the demo network)
	Filter      bool
	Select      puzzle.FilterOptions
	Output      string
	Resume      bool
	Force       bool
	Quiet       bool
	// Interrupt, when set, replaces SIGINT/SIGTERM handling (tests).
	Interrupt context.Context
}

// NewCmdPuzzles builds `lczerolens puzzles`.
func NewCmdPuzzles(f *Factory, runF ...func(*PuzzlesOptions) error) *cobra.Command {
	opts := &PuzzlesOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "puzzles INPUT... --model M [--model M2 ...] -o OUTDIR",
		Short: "Grade networks on lichess puzzles: solve rate by rating and theme, or select puzzles",
		Long: `Play every lichess puzzle of INPUT (the puzzle CSV: PuzzleId,FEN,Moves,Rating,...; plain or
.gz/.bz2/.zst, one file or several) through each --model, position by position along the solution
with the game's history, and write OUTDIR/puzzles.jsonl, one line per puzzle and model:
  id, model, rating, themes,
  score                  fraction of the solver's moves where the net's top legal move is the
                         solution's,
  perplexity             product over the solver's n moves of p(solution move)^(-1/n),
  normalized_perplexity  product of (legal-move count * p)^(-1/n): 1 is a uniform guess,
  solved                 every solver move is the net's top move,
  pv_probs               p of every solution move, both sides, in order,
  wdl                    the net's W/D/L at the puzzle position (null without a WDL head).
Then OUTDIR/summary.json and a table on stdout: per model the solve rate and mean score overall,
by rating bucket (<1000, 1000-1499, ..., >=2500) and by theme, with counts.

With --filter, leela-interp's selection with a big net (--model) and a weak one (--sparring):
puzzles that are no mate in 1 and longer than 2 plies, that the sparring net finds hard (p of the
first solution move below --hard-p), that the big net gets right (p of each of the solver's moves
above --correct-p) and that are forcing (sparring p of the opponent's first reply above
--forcing-p); the kept rows go unchanged to OUTDIR/filtered.csv, a puzzle CSV usable as input
everywhere.

Grading and --filter commit after every batch: --resume finishes an interrupted run.`,
		Example: `  lczerolens puzzles lichess_db_puzzle.csv.zst --model maia-1100.onnx --model maia-1900.onnx -o lb/
  lczerolens puzzles puzzles.csv --model big.pb.gz --sparring small.onnx --filter -o sel/
  lczerolens batch sel/filtered.csv --lens activation -o acts/   # the selection is an input
  lczerolens puzzles puzzles.csv --model maia-1100.onnx -o lb/ --resume   # finish a stopped run`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs, opts.SparringSet = args, cmd.Flags().Changed("sparring")
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runPuzzles(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.Models, "model", nil, "lc0 network to grade, repeatable (default: the configured model)")
	_ = fl.SetAnnotation("model", annNotConfig, []string{"true"})
	fl.StringVar(&opts.Sparring, "sparring", "", "with --filter: the weak network that must find the puzzles hard")
	fl.BoolVar(&opts.Filter, "filter", false, "select puzzles with --model (big) and --sparring (small)")
	fl.Float64Var(&opts.Select.HardP, "hard-p", 0.05, "--filter: max sparring p of the first solution move")
	fl.Float64Var(&opts.Select.CorrectP, "correct-p", 0.5, "--filter: min big-net p of the solver's moves")
	fl.Float64Var(&opts.Select.ForcingP, "forcing-p", 0.7, "--filter: min sparring p of the opponent's reply")
	fl.StringVarP(&opts.Output, "output", "o", "", "output directory (required)")
	streamEncodingFlags(fl)
	fl.StringVar(&opts.InputType, "input-type", "", inputTypeHelp)
	fl.StringVar(&opts.InputFormat, "input-format", "", inputFormatHelp)
	fl.BoolVar(&opts.Resume, "resume", false, "continue an interrupted run in OUTDIR")
	fl.BoolVar(&opts.Force, "force", false, "overwrite the outputs of an earlier run in OUTDIR")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress output")
	_ = cmd.MarkFlagRequired("output")
	mutuallyExclusive(cmd, "resume", "force")
	return cmd
}

// puzzleState is OUTDIR/puzzles.state.json, rewritten after every commit: what a resume may keep.
type puzzleState struct {
	Inputs  []string `json:"inputs"`
	Models  []string `json:"models"`
	Model   int      `json:"model"`   // models before this one are complete
	Records int      `json:"records"` // input records of Model complete in puzzles.jsonl
	Bytes   int64    `json:"bytes"`   // length of puzzles.jsonl at that point
	Errors  int64    `json:"errors"`  // length of errors.jsonl at that point
	Done    bool     `json:"done"`
}

const (
	puzzlesFile = "puzzles.jsonl"
	stateFile   = "puzzles.state.json"
	summaryFile = "summary.json"
	errorsFile  = "errors.jsonl"
	filterFile  = "filtered.csv"
)

func runPuzzles(opts *PuzzlesOptions) (err error) {
	f := opts.Factory
	cfg := f.Config()
	models := opts.Models
	if len(models) == 0 {
		models = []string{cfg.Model}
	}
	if opts.Filter {
		if !opts.SparringSet || len(models) != 1 {
			return usageErrorf("puzzles: --filter needs one --model (the big net) and --sparring (the small one)")
		}
	} else if opts.SparringSet {
		return usageErrorf("puzzles: --sparring is for --filter: add --filter, or grade it with another --model")
	}
	inputs, err := openInputs("puzzles", opts.Inputs, opts.InputType, f.IO.In)
	if err != nil {
		return err
	}
	defer inputs.Close()
	if inputs.typ != source.Puzzles {
		return usageErrorf("puzzles: %s is %s, not a lichess puzzle CSV: give a .csv (or --input-type puzzles)", inputs.name(), inputs.typ)
	}
	if inputs.size < 0 && (len(models) > 1 || opts.Filter) {
		return usageErrorf("puzzles: stdin can be read only once, and several networks read the input once each: give a file")
	}
	lock, err := store.LockDir(opts.Output)
	if err != nil {
		return storeError(err)
	}
	defer lock.Release()
	ctx, stop := commandContext(opts.Interrupt)
	defer stop()
	if opts.Filter {
		return runPuzzleFilter(ctx, opts, inputs, models[0])
	}
	return runPuzzleGrades(ctx, opts, inputs, models)
}

// runPuzzleGrades grades every model in turn, committing after each batch, then writes the summary.
func runPuzzleGrades(ctx context.Context, opts *PuzzlesOptions, inputs *inputFiles, models []string) error {
	f := opts.Factory
	dir := opts.Output
	state := puzzleState{Inputs: inputs.names, Models: models}
	if opts.Resume {
		var old puzzleState
		if err := readRunState("puzzles", filepath.Join(dir, stateFile), &old); err != nil {
			return err
		}
		if !slices.Equal(old.Inputs, state.Inputs) || !slices.Equal(old.Models, state.Models) {
			return usageErrorf("puzzles: --resume: %s was made from %v with %v: give the same inputs and models", dir, old.Inputs, old.Models)
		}
		state = old
	} else if err := checkPuzzleDir(dir, opts.Force, puzzlesFile, stateFile, summaryFile, errorsFile); err != nil {
		return err
	}
	out, err := openAt("puzzles", filepath.Join(dir, puzzlesFile), state.Bytes)
	if err != nil {
		return err
	}
	defer out.Close()
	errs, err := openAt("puzzles", filepath.Join(dir, errorsFile), state.Errors)
	if err != nil {
		return err
	}
	defer errs.Close()
	saveState := func() error {
		return writeRunState(filepath.Join(dir, stateFile), state)
	}
	for mi := state.Model; mi < len(models) && !state.Done; mi++ {
		if mi > 0 || state.Records > 0 {
			if err := inputs.rewind(); err != nil {
				return err
			}
		}
		sess, err := f.SessionFor(models[mi], opts.InputFormat)
		if err != nil {
			return err
		}
		if sess.net.Heads.Policy == "" {
			return usageErrorf("puzzles: %s has no policy head: puzzles grade moves", sess.net.Path)
		}
		name := sess.net.Path
		w := bufio.NewWriter(out)
		ew := bufio.NewWriter(errs)
		sink := &gradeSink{model: name, write: func(r puzzle.Result) error {
			raw, err := json.Marshal(r)
			if err != nil {
				return err
			}
			_, err = w.Write(append(raw, '\n'))
			return err
		}, bad: func(b pipeline.BadRecord) error {
			if mi > 0 { // every network meets the same bad records: log them once
				return nil
			}
			raw, _ := json.Marshal(map[string]any{"source": b.Source, "record": b.Record, "line": b.Line, "reason": b.Reason})
			_, err := ew.Write(append(raw, '\n'))
			return err
		}, commit: func(records int) error {
			for _, bw := range []*bufio.Writer{w, ew} {
				if err := bw.Flush(); err != nil {
					return err
				}
			}
			for _, fl := range []*os.File{out, errs} {
				if err := fl.Sync(); err != nil {
					return err
				}
			}
			pos, err := out.Seek(0, io.SeekCurrent)
			if err != nil {
				return err
			}
			epos, err := errs.Seek(0, io.SeekCurrent)
			if err != nil {
				return err
			}
			state.Model, state.Records, state.Bytes, state.Errors = mi, records, pos, epos
			return saveState()
		}}
		start := time.Now()
		sum, err := runForward(ctx, f, opts.Quiet, "puzzles "+filepath.Base(name), inputs.size,
			pipeline.Input{Parts: inputs.parts, Name: inputs.name(), Type: source.Puzzles, Select: source.Options{Solution: true}, SkipRecords: state.Records},
			pipeline.Forward{Net: sess.net, RT: sess.rt}, sink, sess.enc, nil)
		if err != nil {
			if interrupted(ctx, err) {
				return &interruptedError{cmd: "puzzles", positions: sum.Positions, hint: "rerun with --resume", cause: err}
			}
			return err
		}
		if !opts.Quiet {
			el := time.Since(start).Seconds()
			fmt.Fprintf(f.IO.ErrOut, "puzzles: %s: %d puzzles, %d positions, %d bad records, %.1f s (%.0f positions/s)\n",
				name, sink.graded, sum.Positions, sum.Bad, el, float64(sum.Positions)/max(el, 1e-9))
		}
		state.Records = 0
		if mi == len(models)-1 {
			state.Done = true
		} else {
			state.Model = mi + 1
		}
		if err := saveState(); err != nil {
			return err
		}
	}
	results, err := readResults(filepath.Join(dir, puzzlesFile))
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return usageErrorf("puzzles: no usable puzzle in %s (see %s)", inputs.name(), filepath.Join(dir, errorsFile))
	}
	sums := puzzle.Summarize(results)
	raw, err := json.MarshalIndent(map[string]any{"inputs": inputs.names, "buckets": bucketNames(), "models": sums}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, summaryFile), append(raw, '\n'), true); err != nil {
		return err
	}
	if _, err := io.WriteString(f.IO.Out, puzzleTable(sums, 10)); err != nil {
		return fmt.Errorf("puzzles: write: %w", err)
	}
	return nil
}

func bucketNames() []string {
	var out []string
	for _, b := range puzzle.Buckets {
		out = append(out, b.Name)
	}
	return out
}

// checkPuzzleDir refuses to overwrite an earlier run's files without force; with force it removes them.
func checkPuzzleDir(dir string, force bool, names ...string) error {
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if !force {
			return usageErrorf("puzzles: %s exists: pass --force to overwrite, or --resume to finish that run", p)
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("puzzles: %w", err)
		}
	}
	return nil
}

// readRunState reads the state file of a resumable command (what its last commit kept) into v; a missing
// file means there is no run to resume in that directory.
func readRunState(cmd, path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return pathError(fmt.Errorf("%s: --resume: %w (no run to resume in %s)", cmd, err, filepath.Dir(path)))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: --resume: read %s: %w", cmd, path, err)
	}
	return nil
}

// writeRunState replaces a resumable command's state file atomically: the commit point of its outputs.
func writeRunState(path string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(raw, '\n'), true)
}

// openAt opens path for appending after its first n bytes (a resume drops what was written after the last
// commit); n 0 starts it empty. cmd prefixes errors.
func openAt(cmd, path string, n int64) (*os.File, error) {
	fl, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if err := fl.Truncate(n); err != nil {
		fl.Close()
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if _, err := fl.Seek(n, io.SeekStart); err != nil {
		fl.Close()
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return fl, nil
}

func readResults(path string) ([]puzzle.Result, error) {
	fl, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("puzzles: %w", err)
	}
	defer fl.Close()
	var out []puzzle.Result
	sc := bufio.NewScanner(fl)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		var r puzzle.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("puzzles: read %s: %w", path, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// puzzleTable is the leaderboard: solve rate (count) per model by rating bucket, overall with the mean
// score, then the themes most puzzles have.
func puzzleTable(sums []*puzzle.ModelSummary, themes int) string {
	var b strings.Builder
	cell := func(t *puzzle.Tally) string {
		if t == nil || t.Count == 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f (%d)", t.SolveRate, t.Count)
	}
	width := 5
	for _, m := range sums {
		width = max(width, len(filepath.Base(m.Model)))
	}
	fmt.Fprintf(&b, "%-*s", width+2, "solve rate (n)")
	for _, bk := range puzzle.Buckets {
		fmt.Fprintf(&b, " %14s", bk.Name)
	}
	fmt.Fprintf(&b, " %14s %10s\n", "all", "mean score")
	for _, m := range sums {
		fmt.Fprintf(&b, "%-*s", width+2, filepath.Base(m.Model))
		for _, bk := range puzzle.Buckets {
			fmt.Fprintf(&b, " %14s", cell(m.ByRating[bk.Name]))
		}
		fmt.Fprintf(&b, " %14s %10.3f\n", cell(&m.Overall), m.Overall.MeanScore)
	}
	names := puzzle.Themes(sums)
	if len(names) > themes {
		names = names[:themes]
	}
	if len(names) > 0 {
		fmt.Fprintf(&b, "\n%-20s", fmt.Sprintf("theme (top %d)", len(names)))
		for _, m := range sums {
			fmt.Fprintf(&b, " %16s", clipLeft(filepath.Base(m.Model), 16))
		}
		b.WriteString("\n")
		for _, th := range names {
			fmt.Fprintf(&b, "%-20s", th)
			for _, m := range sums {
				fmt.Fprintf(&b, " %16s", cell(m.ByTheme[th]))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func clipLeft(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// gradeSink collects each puzzle's line as the network saw it and grades it once its record is complete.
type gradeSink struct {
	model  string
	write  func(puzzle.Result) error
	bad    func(pipeline.BadRecord) error
	commit func(records int) error // after each batch: the records complete in the output
	// each, when set, takes each complete puzzle instead of grading it.
	each   func(*pendingPuzzle) error
	cur    *pendingPuzzle
	graded int
}

type pendingPuzzle struct {
	record int
	p      *source.Puzzle
	steps  []puzzle.Step
	wdl    []float64
}

func (s *gradeSink) Consume(_ context.Context, b *pipeline.Batch) error {
	for _, r := range b.Bad {
		if err := s.bad(r); err != nil {
			return err
		}
	}
	for i, it := range b.Items {
		if s.cur != nil && s.cur.record != it.Record {
			if err := s.finish(); err != nil {
				return err
			}
		}
		if s.cur == nil {
			s.cur = &pendingPuzzle{record: it.Record, p: it.Puzzle}
		}
		step, err := lineStep(b, i)
		if err != nil {
			return err
		}
		s.cur.steps = append(s.cur.steps, step)
		if it.Ply == 1 {
			s.cur.wdl = wdlAt(b, i)
		}
	}
	// A puzzle is complete once the batch completes its record; the last one may go on in the next batch.
	if s.cur != nil && s.cur.record < b.Records {
		if err := s.finish(); err != nil {
			return err
		}
	}
	done := b.Records
	if s.cur != nil {
		done = s.cur.record
	}
	return s.commit(done)
}

func (s *gradeSink) finish() error {
	c := s.cur
	s.cur = nil
	if s.each != nil {
		return s.each(c)
	}
	r, err := puzzle.Grade(c.p.ID, s.model, c.p.Rating, c.p.Themes, c.steps, c.wdl)
	if err != nil {
		return err
	}
	s.graded++
	return s.write(r)
}

func (s *gradeSink) Close(pipeline.Summary, error) error { return nil }

// lineStep is row i of b as a step of its puzzle's line.
func lineStep(b *pipeline.Batch, i int) (puzzle.Step, error) {
	it := b.Items[i]
	pol, ok := b.Policy(i)
	if !ok {
		return puzzle.Step{}, errors.New("puzzles: the network has no policy head")
	}
	move := it.Next.UCI()
	p, _ := pol.Of(move)
	st := puzzle.Step{Ply: it.Ply, Move: move, P: float64(p), Legal: len(pol.Moves)}
	if k := pol.Top(); k >= 0 {
		st.Top = pol.Moves[k].UCI()
	}
	return st, nil
}

// wdlAt is row i's W/D/L, nil when the network has no WDL head.
func wdlAt(b *pipeline.Batch, i int) []float64 {
	h := b.Outputs.Heads
	if h == nil || h.WDL == nil {
		return nil
	}
	return []float64{float64(h.WDL[3*i]), float64(h.WDL[3*i+1]), float64(h.WDL[3*i+2])}
}

// filterState is OUTDIR/filter.state.json, rewritten after every commit of --filter: what a resume may keep.
type filterState struct {
	Inputs  []string             `json:"inputs"`
	Models  []string             `json:"models"` // big, sparring
	Select  puzzle.FilterOptions `json:"select"`
	Pass    int                  `json:"pass"`    // 0: the sparring net, 1: the big net
	Records int                  `json:"records"` // input records of the pass complete
	Read    int                  `json:"read"`    // eligible puzzles the sparring net graded
	Hard    int64                `json:"hard"`    // length of filter.hard: the records it keeps, one a line
	Kept    int                  `json:"kept"`    // rows the big net keeps
	Bytes   int64                `json:"bytes"`   // length of filtered.csv.part
}

const (
	filterStateFile = "filter.state.json"
	filterHardFile  = "filter.hard"
)

// commitFault, when set (tests), is asked at every commit of a resumable command and can fail it, as a
// kill would stop the run: what was committed before must be all a resume needs.
var commitFault func(cmd string, commit int) error

// runPuzzleFilter runs the sparring net on the eligible puzzles, then the big net on those it finds hard and
// forcing, and writes the puzzles the big net gets right to OUTDIR/filtered.csv, unchanged. Both passes
// commit after every batch (filter.state.json; the hard records in filter.hard, the kept rows in
// filtered.csv.part, renamed to filtered.csv at the end), so --resume finishes a stopped run.
func runPuzzleFilter(ctx context.Context, opts *PuzzlesOptions, inputs *inputFiles, big string) error {
	f := opts.Factory
	sel := opts.Select
	dir := opts.Output
	path := filepath.Join(dir, filterFile)
	part := path + ".part"
	statePath := filepath.Join(dir, filterStateFile)
	state := filterState{Inputs: inputs.names, Models: []string{big, opts.Sparring}, Select: sel}
	if opts.Resume {
		var old filterState
		if err := readRunState("puzzles --filter", statePath, &old); err != nil {
			return err
		}
		if !slices.Equal(old.Inputs, state.Inputs) || !slices.Equal(old.Models, state.Models) || old.Select != state.Select {
			return usageErrorf("puzzles --filter: --resume: %s was made from %v with %v and %+v: give the same inputs, networks and thresholds",
				dir, old.Inputs, old.Models, old.Select)
		}
		state = old
	} else {
		if err := checkOutputFile("puzzles", path, opts.Force); err != nil {
			return err
		}
		if err := checkPuzzleDir(dir, opts.Force, filterStateFile, filterHardFile, filterFile+".part"); err != nil {
			return err
		}
	}
	// Both networks load before any file is written: a bad --model leaves nothing behind to resume.
	sessions := map[string]*netSession{}
	for _, m := range []string{opts.Sparring, big} {
		sess, err := f.SessionFor(m, opts.InputFormat)
		if err != nil {
			return err
		}
		if sess.net.Heads.Policy == "" {
			return usageErrorf("puzzles: %s has no policy head: puzzles grade moves", sess.net.Path)
		}
		sessions[m] = sess
	}
	writeState := func() error {
		return writeRunState(statePath, state)
	}
	if !opts.Resume { // first, so that a run stopped at any later point can be resumed
		if err := writeState(); err != nil {
			return err
		}
	}
	hardOut, err := openAt("puzzles --filter", filepath.Join(dir, filterHardFile), state.Hard)
	if err != nil {
		return err
	}
	defer hardOut.Close()
	hard := map[int]bool{}
	sc := bufio.NewScanner(hardOut)
	if _, err := hardOut.Seek(0, io.SeekStart); err != nil {
		return err
	}
	for sc.Scan() {
		r, err := strconv.Atoi(sc.Text())
		if err != nil {
			return fmt.Errorf("puzzles --filter: --resume: %s: %w", filterHardFile, err)
		}
		hard[r] = true
	}
	if _, err := hardOut.Seek(state.Hard, io.SeekStart); err != nil {
		return err
	}
	commits := 0
	save := func(files ...*os.File) error {
		for _, fl := range files {
			if err := fl.Sync(); err != nil {
				return err
			}
		}
		if commitFault != nil {
			commits++
			if err := commitFault("puzzles --filter", commits); err != nil {
				return err
			}
		}
		return writeState()
	}
	eligible := func(it *source.Item) (any, bool, error) {
		return nil, puzzle.Eligible(it.Puzzle.Themes, len(it.Puzzle.Solution())), nil
	}
	pass := func(model string, accept func(*source.Item) (any, bool, error), each func(*pendingPuzzle) error, commit func(records int) error) error {
		if err := inputs.rewind(); err != nil {
			return err
		}
		sess := sessions[model]
		sink := &gradeSink{each: each, bad: func(pipeline.BadRecord) error { return nil }, commit: commit}
		sum, err := runForward(ctx, f, opts.Quiet, "puzzles --filter "+filepath.Base(sess.net.Path), inputs.size,
			pipeline.Input{Parts: inputs.parts, Name: inputs.name(), Type: source.Puzzles, Select: source.Options{Solution: true}, SkipRecords: state.Records},
			pipeline.Forward{Net: sess.net, RT: sess.rt}, sink, sess.enc, accept)
		if err != nil && interrupted(ctx, err) {
			return &interruptedError{cmd: "puzzles --filter", positions: sum.Positions, hint: "rerun with --resume", cause: err}
		}
		return err
	}
	if state.Pass == 0 {
		hw := bufio.NewWriter(hardOut)
		err := pass(opts.Sparring, eligible, func(c *pendingPuzzle) error {
			state.Read++
			if sel.SparringKeeps(c.steps) {
				hard[c.record] = true
				_, err := fmt.Fprintln(hw, c.record)
				return err
			}
			return nil
		}, func(records int) error {
			if err := hw.Flush(); err != nil {
				return err
			}
			pos, err := hardOut.Seek(0, io.SeekCurrent)
			if err != nil {
				return err
			}
			state.Records, state.Hard = records, pos
			return save(hardOut)
		})
		if err != nil {
			return err
		}
		state.Pass, state.Records = 1, 0
		if err := save(); err != nil {
			return err
		}
	}
	out, err := openAt("puzzles --filter", part, state.Bytes)
	if err != nil {
		return err
	}
	defer out.Close()
	bw := bufio.NewWriter(out)
	cw := csv.NewWriter(bw)
	if state.Bytes == 0 {
		if err := cw.Write(source.PuzzleColumns); err != nil {
			return err
		}
	}
	err = pass(big, func(it *source.Item) (any, bool, error) { return nil, hard[it.Record], nil }, func(c *pendingPuzzle) error {
		if !sel.BigKeeps(c.steps) {
			return nil
		}
		state.Kept++
		return cw.Write(c.p.Columns)
	}, func(records int) error {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		pos, err := out.Seek(0, io.SeekCurrent)
		if err != nil {
			return err
		}
		state.Records, state.Bytes = records, pos
		return save(out)
	})
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := os.Rename(part, path); err != nil {
		return fmt.Errorf("puzzles --filter: %w", err)
	}
	for _, n := range []string{filterStateFile, filterHardFile} {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("puzzles --filter: %w", err)
		}
	}
	if !opts.Quiet {
		fmt.Fprintf(f.IO.ErrOut, "puzzles --filter: %d eligible puzzles, %d hard and forcing for the sparring net, %d kept -> %s\n", state.Read, len(hard), state.Kept, path)
	}
	return nil
}
