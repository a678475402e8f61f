package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lczerolens/lczerolens/internal/atomicfile"
	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/concepts"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/pipeline"
	"github.com/lczerolens/lczerolens/internal/render"
	"github.com/lczerolens/lczerolens/internal/sae"
	"github.com/lczerolens/lczerolens/internal/source"
	"github.com/lczerolens/lczerolens/internal/store"
)

// SAEReadOptions are the inputs of `sae features` and `sae eval`.
type SAEReadOptions struct {
	Factory      *Factory
	Dir          string
	Input        string
	InputType    string
	InputFormat  string
	Plies        string
	Output       string
	Top          int
	MaxPositions int
	Force        bool
}

func saeInputFlags(cmd *cobra.Command, opts *SAEReadOptions) {
	fl := cmd.Flags()
	fl.IntVar(&opts.MaxPositions, "max-positions", 0, "stop after this many positions (0 = the whole input)")
	saeReadFlags(fl, &opts.InputType, &opts.InputFormat, &opts.Plies)
}

// saeReadFlags registers how INPUT is read and encoded, alike for sae train and the commands that run an SAE.
func saeReadFlags(fl *pflag.FlagSet, inputType, inputFormat, plies *string) {
	fl.StringVar(inputType, "input-type", "", "input type: pgn, fen or jsonl (default: from the extension; required for stdin)")
	fl.StringVar(inputFormat, "input-format", "", inputFormatHelp)
	streamEncodingFlags(fl)
	fl.StringVar(plies, "plies", "all", "positions of each game: all, first:N, last, every:N")
}

func newCmdSAEFeatures(f *Factory) *cobra.Command {
	opts := &SAEReadOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "features SAEDIR INPUT -o OUTDIR",
		Short: "List each SAE feature's density and top examples over the positions of INPUT",
		Long: `Run the SAE of SAEDIR over every position of INPUT and write, for every feature, its density (the
fraction of vectors where it is active) and its --top positions by largest value (one example per
position, at the square where the value is largest), in bounded memory (a heap per feature). OUTDIR
gets features.jsonl, one line per feature, and svg/F_R.svg for the R-th example of feature F: the
board with the feature's value on every square as a heatmap (square modules) and the example's
square named in the title.`,
		Example: `  lczerolens sae features sae-b3/ games.pgn --model maia-1100.onnx -o feats/
  lczerolens sae features sae-b3/ games.pgn --model maia-1100.onnx -o feats/ --top 20 \
      --max-positions 5000`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir, opts.Input = args[0], args[1]
			return runSAEFeatures(opts)
		},
	}
	saeInputFlags(cmd, opts)
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "output directory (required)")
	cmd.Flags().IntVar(&opts.Top, "top", 8, "examples kept per feature")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "write into a non-empty OUTDIR, replacing its files")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func newCmdSAEEval(f *Factory) *cobra.Command {
	opts := &SAEReadOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "eval SAEDIR INPUT",
		Short: "Score SAE features against raw neurons as detectors of board concepts",
		Long: `Supervised evaluation in the manner of Karvonen et al. (2024): for per-square board concepts (the
square holds the side to move's piece X, the opponent's piece X, is empty, is attacked by either
side), every SAE feature and every raw neuron of the module is a classifier (value above 0, 10, 25,
50 or 75% of its largest value over INPUT), and each concept gets the best single unit's F1. The
table gives the mean F1 per concept family ("coverage") for the SAE and for the neurons as a
baseline. INPUT is read twice (maxima, then counts). Square modules only ([C,8,8] or [64,C]).`,
		Example: `  lczerolens sae eval sae-b3/ games.pgn --model maia-1100.onnx --max-positions 2000`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir, opts.Input = args[0], args[1]
			return runSAEEval(opts)
		},
	}
	saeInputFlags(cmd, opts)
	return cmd
}

// saeReader runs the sae lens (and, for eval, the activation lens of the same module) over INPUT.
type saeReader struct {
	opts *SAEReadOptions
	file *sae.File
	sess *netSession
	eng  *lens.Engine
	typ  source.Type
}

func newSAEReader(opts *SAEReadOptions, withActivation bool) (*saeReader, error) {
	f := opts.Factory
	file, err := sae.Load(opts.Dir)
	if err != nil {
		return nil, pathError(err)
	}
	typ, err := source.DetectType(opts.Input, opts.InputType)
	if err != nil {
		return nil, inputError(err)
	}
	if _, err := source.ParsePlies(opts.Plies); err != nil {
		return nil, inputError(err)
	}
	sess, err := f.Session(opts.InputFormat)
	if err != nil {
		return nil, err
	}
	v, err := lens.SAE.Resolve(map[string]string{"sae": opts.Dir})
	if err != nil {
		return nil, inputError(err)
	}
	lens.WithSAE(v, file)
	specs := []lens.Spec{{Lens: lens.SAE, Values: v}}
	if withActivation {
		av, err := lens.Activation.Resolve(map[string]string{"pattern": "^" + regexp.QuoteMeta(file.Module) + "$"})
		if err != nil {
			return nil, inputError(err)
		}
		specs = append(specs, lens.Spec{Lens: lens.Activation, Values: av})
	}
	eng, err := sess.engine(specs, false)
	if err != nil {
		return nil, err
	}
	return &saeReader{opts: opts, file: file, sess: sess, eng: eng, typ: typ}, nil
}

// run streams INPUT once into consume.
func (r *saeReader) run(ctx context.Context, cmd string, consume func(b *pipeline.Batch) error) (pipeline.Summary, error) {
	o, f := r.opts, r.opts.Factory
	in, size, closeIn, err := openInput(f, o.Input, cmd)
	if err != nil {
		return pipeline.Summary{}, err
	}
	defer closeIn()
	plies, _ := source.ParsePlies(o.Plies)
	prog := pipeline.NewProgress(f.IO.ErrOut, f.IO.StderrTTY, cmd, size, 0)
	prog.Start()
	defer prog.Stop()
	enc := r.sess.enc
	return pipeline.Run(ctx, pipeline.Input{R: in, Name: o.Input, Type: r.typ, Select: source.Options{Plies: plies}}, r.eng, &funcSink{consume: consume},
		pipeline.Options{BatchSize: f.Config().BatchSize, Format: enc.Format, Fill: enc.Fill, Policy: enc.Policy, Limit: o.MaxPositions, Progress: prog.Update})
}

// result finds a batch result by key suffix.
func result(b *pipeline.Batch, suffix string) (lens.BatchResult, bool) {
	for _, r := range b.Results {
		if strings.HasSuffix(r.Key, suffix) {
			return r, true
		}
	}
	return lens.BatchResult{}, false
}

// codesOf reads position i's codes from the sae lens's index and value results ([vectors,k] or [k]).
func codesOf(idx, val lens.BatchResult, i int, k int, dst []sae.Code) []sae.Code {
	ir, vr := idx.Row(i), val.Row(i)
	n := len(ir) / k
	dst = dst[:0]
	for v := range n {
		c := sae.Code{}
		for a := range k {
			if j := ir[v*k+a]; j >= 0 {
				c.Index = append(c.Index, int32(j))
				c.Value = append(c.Value, vr[v*k+a])
			}
		}
		dst = append(dst, c)
	}
	return dst
}

// exampleMeta says where an example comes from.
type exampleMeta struct {
	FEN    string `json:"fen"`
	Source string `json:"source"`
	Record int    `json:"record"`
	Ply    int    `json:"ply"`
}

// featureLine is one line of features.jsonl.
type featureLine struct {
	Feature  int              `json:"feature"`
	Density  float64          `json:"density"`
	Count    int64            `json:"count"`
	Examples []featureExample `json:"examples"`
}

type featureExample struct {
	Value  float32 `json:"value"`
	Square string  `json:"square,omitempty"`
	exampleMeta
	SVG string `json:"svg"`
}

func runSAEFeatures(opts *SAEReadOptions) error {
	f := opts.Factory
	if opts.Top < 1 {
		return usageErrorf("sae features: --top %d: want at least 1", opts.Top)
	}
	if !opts.Force {
		if ents, err := os.ReadDir(opts.Output); err == nil && len(ents) > 0 {
			return usageErrorf("sae features: %s is not empty: pass --force to write into it", opts.Output)
		}
	}
	lock, err := store.LockDir(opts.Output)
	if err != nil {
		return storeError(err)
	}
	defer lock.Release()
	r, err := newSAEReader(opts, false)
	if err != nil {
		return err
	}
	s := r.file.SAE
	stats := sae.NewFeatureStats(s.F, opts.Top)
	var codes []sae.Code
	ctx, stop := signalContext()
	defer stop()
	sum, err := r.run(ctx, "sae features", func(b *pipeline.Batch) error {
		idx, ok1 := result(b, "_sae_index")
		val, ok2 := result(b, "_sae_value")
		if !ok1 || !ok2 {
			return errors.New("sae features: the sae lens returned no index or value")
		}
		for i, it := range b.Items {
			codes = codesOf(idx, val, i, s.K, codes)
			stats.AddPosition(codes, func() any {
				return exampleMeta{FEN: it.Pos.FEN(), Source: it.Source, Record: it.Record, Ply: it.Ply}
			})
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Cause(ctx)) {
			return &interruptedError{cmd: "sae features", positions: sum.Positions, hint: "nothing written; rerun (with --max-positions to read fewer)", cause: err}
		}
		return err
	}
	svgDir := filepath.Join(opts.Output, "svg")
	if err := os.MkdirAll(svgDir, 0o755); err != nil {
		return fmt.Errorf("sae features: %w", err)
	}
	var jl bytes.Buffer
	enc := json.NewEncoder(&jl)
	square := r.file.Vectors == "square"
	alive := 0
	for j := range s.F {
		line := featureLine{Feature: j, Density: stats.Density(j), Count: stats.Count[j], Examples: []featureExample{}}
		if line.Count > 0 {
			alive++
		}
		for rank, e := range stats.Top(j) {
			m := e.Meta.(exampleMeta)
			ex := featureExample{Value: e.Value, exampleMeta: m, SVG: filepath.Join("svg", fmt.Sprintf("%d_%d.svg", j, rank))}
			pos, err := board.ParseFEN(m.FEN)
			if err != nil {
				return fmt.Errorf("sae features: %w", err)
			}
			o := render.Options{Position: pos, Colormap: render.Sequential, Title: fmt.Sprintf("feature %d = %.3g", j, e.Value)}
			if square {
				ex.Square = board.Square(e.Vector).String()
				o.Heat = e.Values
				o.Title += " on " + ex.Square
				o.BlackBottom = pos.SideToMove() == board.Black
			}
			// The pictures are plain writes (thousands of synced renames would dominate the run): features.jsonl,
			// written atomically last, is what makes the directory complete.
			var pic bytes.Buffer
			if err := render.SVG(&pic, o); err != nil {
				return fmt.Errorf("sae features: %w", err)
			}
			if err := os.WriteFile(filepath.Join(opts.Output, ex.SVG), pic.Bytes(), 0o644); err != nil {
				return fmt.Errorf("sae features: %w", err)
			}
			line.Examples = append(line.Examples, ex)
		}
		if err := enc.Encode(line); err != nil {
			return fmt.Errorf("sae features: %w", err)
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(opts.Output, "features.jsonl"), jl.Bytes(), true); err != nil {
		return fmt.Errorf("sae features: %w", err)
	}
	fmt.Fprintf(f.IO.ErrOut, "sae features: %d of %d features active on %d positions (%d vectors) -> %s\n", alive, s.F, sum.Positions, stats.Vectors, opts.Output)
	return nil
}

func runSAEEval(opts *SAEReadOptions) error {
	f := opts.Factory
	r, err := newSAEReader(opts, true)
	if err != nil {
		return err
	}
	if r.file.Vectors != "square" {
		return usageErrorf("sae eval: %s encodes one vector per position; board concepts need a square module ([C,8,8] or [64,C])", opts.Dir)
	}
	s := r.file.SAE
	ctx, stop := signalContext()
	defer stop()
	var codes []sae.Code
	var vecs []float32
	featMax, neurMax := make([]float32, s.F), make([]float32, s.C)
	cs := concepts.BoardConcepts()
	var featCov, neurCov *sae.Coverage
	labels := make([]bool, len(cs))
	var nidx []int32
	var nval []float32
	pass := func(count bool) (pipeline.Summary, error) {
		return r.run(ctx, "sae eval", func(b *pipeline.Batch) error {
			idx, ok1 := result(b, "_sae_index")
			val, ok2 := result(b, "_sae_value")
			act, ok3 := result(b, "_output")
			if !ok1 || !ok2 || !ok3 {
				return errors.New("sae eval: the lenses returned no index, value or activation")
			}
			for i, it := range b.Items {
				codes = codesOf(idx, val, i, s.K, codes)
				var err error
				vecs, _, _, err = lens.SquareVectors(act.Shape, act.Row(i), b.Input.Transform(i), it.Pos.SideToMove() == board.Black, vecs)
				if err != nil {
					return err
				}
				for sq, c := range codes {
					v := vecs[sq*s.C : (sq+1)*s.C]
					if !count {
						for a, j := range c.Index {
							featMax[j] = max(featMax[j], c.Value[a])
						}
						for u, x := range v {
							neurMax[u] = max(neurMax[u], x)
						}
						continue
					}
					for q, cc := range cs {
						labels[q] = cc.Label(it.Pos, board.Square(sq))
					}
					featCov.Add(c.Index, c.Value, labels)
					nidx, nval = nidx[:0], nval[:0]
					for u, x := range v {
						if x != 0 {
							nidx = append(nidx, int32(u))
							nval = append(nval, x)
						}
					}
					neurCov.Add(nidx, nval, labels)
				}
			}
			return nil
		})
	}
	if _, err := pass(false); err != nil {
		return saeEvalError(ctx, err)
	}
	// Neurons may be negative (pre-ReLU modules): a threshold fraction of a non-positive maximum is 0.
	featCov = sae.NewCoverage(featMax, len(cs), sae.DefaultFractions)
	neurCov = sae.NewCoverage(neurMax, len(cs), sae.DefaultFractions)
	sum, err := pass(true)
	if err != nil {
		return saeEvalError(ctx, err)
	}
	tw := tabwriter.NewWriter(f.IO.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CONCEPT\tFAMILY\tPOSITIVES\tSAE F1\tFEATURE\tNEURON F1\tNEURON\n")
	type acc struct{ sae, neur float64 }
	fam := map[string]*acc{}
	famCount := map[string]int{}
	var order []string
	for q, c := range cs {
		f1, u, _ := featCov.Best(q)
		n1, nu, _ := neurCov.Best(q)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%d\t%.3f\t%d\n", c.Name, c.Family, featCov.Positives(q), f1, u, n1, nu)
		if fam[c.Family] == nil {
			fam[c.Family] = &acc{}
			order = append(order, c.Family)
		}
		fam[c.Family].sae += f1
		fam[c.Family].neur += n1
		famCount[c.Family]++
	}
	fmt.Fprintf(tw, "\nFAMILY\tCOVERAGE SAE\tCOVERAGE NEURONS\n")
	for _, name := range order {
		a, n := fam[name], float64(famCount[name])
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\n", name, a.sae/n, a.neur/n)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("sae eval: write: %w", err)
	}
	fmt.Fprintf(f.IO.ErrOut, "sae eval: %s on %d positions (%d vectors)\n", opts.Dir, sum.Positions, 64*sum.Positions)
	return nil
}

func saeEvalError(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Cause(ctx)) {
		return &interruptedError{cmd: "sae eval", hint: "nothing written; rerun (with --max-positions to read fewer)", cause: err}
	}
	return err
}
