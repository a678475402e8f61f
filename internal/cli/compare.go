package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/atomicfile"
	"github.com/lczerolens/lczerolens/internal/compare"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/pipeline"
	"github.com/lczerolens/lczerolens/internal/source"
	"github.com/lczerolens/lczerolens/internal/store"
)

// CompareOptions are the inputs of `lczerolens compare`.
type CompareOptions struct {
	Factory     *Factory
	Inputs      []string
	InputType   string
	InputFormat string
	Models      []string // exactly two
	Plies       string
	Output      string
	Top         int // largest disagreements kept in the summary
	Force       bool
	Resume      bool
	Quiet       bool
	// Interrupt, when set, replaces SIGINT/SIGTERM handling (tests).
	Interrupt context.Context
}

// NewCmdCompare builds `lczerolens compare`.
func NewCmdCompare(f *Factory, runF ...func(*CompareOptions) error) *cobra.Command {
	opts := &CompareOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "compare --model A --model B INPUT... -o OUTDIR",
		Short: "Put the same positions through two networks and measure where they differ",
		Long: `Run every position of INPUT (PGN, FEN/EPD, JSONL or lichess puzzle CSV; plain or .gz/.bz2/.zst; one
file or several) through network A and network B, both in one pass, and write OUTDIR/compare.jsonl,
one line per position: source, record, ply, fen, top_a and top_b (each net's most probable legal
move), agree, p_a (A's probability of B's top move) and p_b (B's probability of A's top move),
p_top_a and p_top_b, jsd (Jensen-Shannon divergence of the two distributions over the legal moves,
in bits: 0 equal, 1 disjoint), a and b ({"value","wdl"}: each net's value from the side to move and
W/D/L), legal (legal-move count). OUTDIR/summary.json and stdout hold the summary: agreement rate,
mean JSD, the correlation of the values, and the --top positions of largest JSD (FEN and both top
moves). Both networks must take the same input format.

compare.jsonl is committed after every batch (compare.state.json says how far): --resume finishes an
interrupted run, and the summary is computed from compare.jsonl at the end.`,
		Example: `  lczerolens compare --model maia-1100.onnx --model maia-1900.onnx games.pgn -o cmp/
  lczerolens compare --model a.pb.gz --model b.pb.gz lichess_db_puzzle.csv.zst -o cmp/ --top 50
  lczerolens compare --model a.pb.gz --model b.pb.gz lichess_db_puzzle.csv.zst -o cmp/ --resume  # after a stop`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs = args
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runCompare(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.Models, "model", nil, "lc0 network, given twice: A then B (\"\" is the built-in demo network)")
	_ = fl.SetAnnotation("model", annNotConfig, []string{"true"})
	fl.StringVarP(&opts.Output, "output", "o", "", "output directory (required)")
	fl.IntVar(&opts.Top, "top", 20, "positions of largest disagreement listed in the summary")
	streamEncodingFlags(fl)
	fl.StringVar(&opts.InputType, "input-type", "", inputTypeHelp)
	fl.StringVar(&opts.Plies, "plies", "all", "positions of each game: all, first:N, last, every:N")
	fl.StringVar(&opts.InputFormat, "input-format", "", inputFormatHelp)
	fl.BoolVar(&opts.Force, "force", false, "overwrite the outputs of an earlier run in OUTDIR")
	fl.BoolVar(&opts.Resume, "resume", false, "continue an interrupted run in OUTDIR")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress output")
	_ = cmd.MarkFlagRequired("output")
	mutuallyExclusive(cmd, "resume", "force")
	return cmd
}

const (
	compareFile      = "compare.jsonl"
	compareStateFile = "compare.state.json"
)

// compareState is OUTDIR/compare.state.json, rewritten after every commit: what a resume may keep.
type compareState struct {
	Inputs    []string `json:"inputs"`
	Models    []string `json:"models"`
	Plies     string   `json:"plies"`
	Records   int      `json:"records"`    // input records complete in compare.jsonl
	OpenItems int      `json:"open_items"` // positions of the next record consumed (a game cut by a commit)
	Positions int      `json:"positions"`  // lines of compare.jsonl at that point
	Bytes     int64    `json:"bytes"`      // its length at that point
}

func runCompare(opts *CompareOptions) error {
	f := opts.Factory
	if len(opts.Models) != 2 {
		return usageErrorf("compare: --model given %d times: give it twice, A then B", len(opts.Models))
	}
	if opts.Top < 0 {
		return usageErrorf("compare: --top %d: want 0 or more", opts.Top)
	}
	plies, err := source.ParsePlies(opts.Plies)
	if err != nil {
		return inputError(err)
	}
	inputs, err := openInputs("compare", opts.Inputs, opts.InputType, f.IO.In)
	if err != nil {
		return err
	}
	defer inputs.Close()
	lock, err := store.LockDir(opts.Output)
	if err != nil {
		return storeError(err)
	}
	defer lock.Release()
	state := compareState{Inputs: inputs.names, Models: opts.Models, Plies: plies.String()}
	statePath := filepath.Join(opts.Output, compareStateFile)
	if opts.Resume {
		var old compareState
		if err := readRunState("compare", statePath, &old); err != nil {
			return err
		}
		if !slices.Equal(old.Inputs, state.Inputs) || !slices.Equal(old.Models, state.Models) || old.Plies != state.Plies {
			return usageErrorf("compare: --resume: %s was made from %v with %v and --plies %s: give the same inputs, models and plies",
				opts.Output, old.Inputs, old.Models, old.Plies)
		}
		state = old
	} else {
		for _, n := range []string{compareFile, summaryFile, compareStateFile} {
			p := filepath.Join(opts.Output, n)
			if _, err := os.Lstat(p); err == nil && !opts.Force {
				return usageErrorf("compare: %s exists: pass --force to overwrite, or --resume to finish that run", p)
			}
		}
	}
	sa, err := f.SessionFor(opts.Models[0], opts.InputFormat)
	if err != nil {
		return err
	}
	sb, err := f.SessionFor(opts.Models[1], opts.InputFormat)
	if err != nil {
		return err
	}
	if sa.enc != sb.enc {
		return usageErrorf("compare: %s takes %s and %s takes %s: compare networks of one input format", sa.net.Path, sa.enc.Format, sb.net.Path, sb.enc.Format)
	}
	for _, s := range []*netSession{sa, sb} {
		if s.net.Heads.Policy == "" {
			return usageErrorf("compare: %s has no policy head: compare reads move distributions", s.net.Path)
		}
	}
	ctx, stop := commandContext(opts.Interrupt)
	defer stop()
	pair := &compare.Pair{A: pipeline.Forward{Net: sa.net, RT: sa.rt}, B: pipeline.Forward{Net: sb.net, RT: sb.rt}}
	path := filepath.Join(opts.Output, compareFile)
	out, err := openAt("compare", path, state.Bytes)
	if err != nil {
		return err
	}
	defer out.Close()
	start := time.Now()
	sink := &compareSink{pair: pair, w: bufio.NewWriter(out), commit: func(b *pipeline.Batch) error {
		pos, err := out.Seek(0, io.SeekCurrent)
		if err != nil {
			return err
		}
		state.Records, state.OpenItems, state.Bytes = b.Records, b.OpenItems, pos
		state.Positions += b.Len()
		return writeRunState(statePath, state)
	}, file: out}
	s, err := runForward(ctx, f, opts.Quiet, "compare", inputs.size,
		pipeline.Input{Parts: inputs.parts, Name: inputs.name(), Type: inputs.typ, Select: source.Options{Plies: plies},
			SkipRecords: state.Records, SkipItems: state.OpenItems},
		pair, sink, sa.enc, nil)
	if err != nil {
		if interrupted(ctx, err) {
			return &interruptedError{cmd: "compare", positions: state.Positions, hint: "rerun with --resume", cause: err}
		}
		return err
	}
	// The summary is the file's, so that a resumed run reports what one run would have.
	sum := &compare.Summary{Keep: opts.Top}
	if err := readCompare(path, sum.Add); err != nil {
		return err
	}
	if sum.Positions == 0 {
		return usageErrorf("compare: no usable position in %s (%d bad records)", inputs.name(), s.Bad)
	}
	sum.Finish()
	doc := map[string]any{"model_a": sa.net.Path, "model_b": sb.net.Path, "inputs": inputs.names, "summary": sum}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(opts.Output, summaryFile), append(raw, '\n'), true); err != nil {
		return err
	}
	if !opts.Quiet {
		el := time.Since(start).Seconds()
		fmt.Fprintf(f.IO.ErrOut, "compare: %d positions, %.1f s (%.0f positions/s through both nets) -> %s\n", sum.Positions, el, float64(s.Positions)/max(el, 1e-9), opts.Output)
	}
	if _, err := io.WriteString(f.IO.Out, compareText(sa.net.Path, sb.net.Path, sum)); err != nil {
		return fmt.Errorf("compare: write: %w", err)
	}
	return nil
}

func compareText(a, b string, s *compare.Summary) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "A %s\nB %s\npositions          %d\nagreement          %.4f\nmean JSD (bits)    %.4f\n", a, b, s.Positions, s.Agreement, s.MeanJSD)
	if s.ValueCorr != nil {
		fmt.Fprintf(&sb, "value correlation  %.4f\n", *s.ValueCorr)
	} else {
		sb.WriteString("value correlation  undefined (a constant value)\n")
	}
	if len(s.Largest) > 0 {
		sb.WriteString("\nlargest disagreements (JSD, top A, top B, FEN)\n")
		for _, d := range s.Largest {
			fmt.Fprintf(&sb, "%.4f  %-6s %-6s %s\n", d.JSD, d.TopA, d.TopB, d.FEN)
		}
	}
	return sb.String()
}

// compareSink writes one record per position and commits after every batch.
type compareSink struct {
	pair   *compare.Pair
	w      *bufio.Writer
	file   *os.File
	commit func(b *pipeline.Batch) error // after the batch's lines are durable
}

func (s *compareSink) Consume(_ context.Context, b *pipeline.Batch) error {
	if b.Len() == 0 {
		return s.commit(b) // a batch of bad records only still moves the cut on
	}
	hb := s.pair.Other(&b.Input)
	if hb == nil {
		return errors.New("compare: network B's outputs of a batch are missing")
	}
	// B's view of the batch: the same positions and encoding, B's heads.
	other := &pipeline.Batch{Input: b.Input, Outputs: &lens.Outputs{Heads: hb}}
	for i, it := range b.Items {
		pa, _ := b.Policy(i)
		pb, _ := other.Policy(i)
		moves := make([]string, len(pa.Moves))
		for k, m := range pa.Moves {
			moves[k] = m.UCI()
		}
		r := compare.Compare(moves, f64(pa.P), f64(pb.P), value(b.Outputs.Heads, i), value(hb, i))
		r.Source, r.Record, r.Ply, r.FEN = it.Source, it.Record, it.Ply, it.Pos.FEN()
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := s.w.Write(append(raw, '\n')); err != nil {
			return err
		}
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	if err := s.file.Sync(); err != nil {
		return err
	}
	return s.commit(b)
}

// readCompare calls add with every record of a compare.jsonl.
func readCompare(path string, add func(compare.Record)) error {
	fl, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	defer fl.Close()
	sc := bufio.NewScanner(fl)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var r compare.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("compare: %s line %d: %w", path, line, err)
		}
		add(r)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("compare: read %s: %w", path, err)
	}
	return nil
}

func (s *compareSink) Close(pipeline.Summary, error) error { return nil }

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func value(h *model.HeadOutputs, i int) compare.Value {
	v := compare.Value{Q: float64(h.ForceValue(i))}
	if h.WDL != nil {
		v.WDL = []float64{float64(h.WDL[3*i]), float64(h.WDL[3*i+1]), float64(h.WDL[3*i+2])}
	}
	return v
}
