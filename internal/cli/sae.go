package cli

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/pipeline"
	"github.com/lczerolens/lczerolens/internal/probe"
	"github.com/lczerolens/lczerolens/internal/sae"
	"github.com/lczerolens/lczerolens/internal/source"
	"github.com/lczerolens/lczerolens/internal/store"
)

// SAETrainOptions are the inputs of `lczerolens sae train`.
type SAETrainOptions struct {
	Factory       *Factory
	Input         string
	InputType     string
	InputFormat   string
	Plies         string
	FromNPY       string
	Module        string
	Output        string
	Features      int
	K             int
	Activation    string
	L1            float64
	LR            float64
	SAEBatch      int
	Steps         int
	Epochs        int
	Seed          uint64
	Holdout       float64
	Buffer        int
	HeldMax       int
	Checkpoint    int
	LogEvery      int
	EvalPositions int
	MaxPositions  int
	Resume        bool
	Force         bool
	Quiet         bool
}

// NewCmdSAE builds `lczerolens sae` with its subcommands.
func NewCmdSAE(f *Factory, runF ...func(*SAETrainOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sae",
		Short: "Train sparse autoencoders on a module's activations and read their features",
		Long: `A sparse autoencoder (SAE) rewrites a module's activation vectors as sparse sums of learned
directions (features), which are often easier to interpret than the raw neurons. Train one with "sae
train"; read its features per position with "analyse --lens sae --sae SAEDIR" (or batch); list what
each feature fires on with "sae features"; score the features as detectors of board concepts with
"sae eval".`,
	}
	cmd.AddCommand(newCmdSAETrain(f, runF...), newCmdSAEFeatures(f), newCmdSAEEval(f))
	return cmd
}

func newCmdSAETrain(f *Factory, runF ...func(*SAETrainOptions) error) *cobra.Command {
	opts := &SAETrainOptions{Factory: f}
	def := sae.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "train [INPUT] --module NAME -o SAEDIR",
		Short: "Train an SAE on the activations of one module over the positions of INPUT",
		Long: `Train a sparse autoencoder on the activation vectors of --module (a name from "model modules") over
every position of INPUT (PGN, FEN/EPD list or JSONL, as for "batch"), streamed through the network,
or over the rows of --from-npy FILE.npy (what "batch --lens activation" wrote; its positions.jsonl,
when present, gives records and sides to move). A [C,8,8] or [64,C] module gives 64 vectors of C per
position, one per square in the absolute board frame (a1=0..h8=63); any other shape one vector.

TopK (default): z = TopK_k(ReLU((x*s - b_dec) W_enc + b_enc)), x_hat = (z W_dec + b_dec)/s, with s
fixed from the first shuffle buffer so that E|x*s|^2 = C. --activation relu --l1 L: z = ReLU(...),
loss + L*sum z. Adam on the mean squared error; decoder rows kept at unit norm. Dead features (no
activation for 200 steps) are revived by the auxiliary TopK loss of Gao et al. (2024): the 2k
largest dead pre-activations fit the residual x - x_hat, weighted 1/32. Vectors pass through a
shuffle buffer of --buffer vectors, so one game's squares are not trained on in sequence. Whole
records (games) are held out (--holdout) for the metrics.

A checkpoint is written to SAEDIR every --checkpoint steps; --resume continues from it (the records
it holds whole are read but not run again) to the same weights as an uninterrupted run. At the end
SAEDIR holds sae.json (options and held-out metrics: FVU, L0, dead fraction, and the KL divergence
of the policy and |delta value| with the module patched by its reconstruction, zero and its mean, on
up to --eval-positions held-out positions) and W_enc.npy [C,F], b_enc.npy [F], W_dec.npy [F,C],
b_dec.npy [C]. --batch-size is positions per network run; --sae-batch is vectors per training step.`,
		Example: `  lczerolens sae train games.pgn --model maia-1100.onnx --module block3/conv2/relu -o sae-b3/
  lczerolens sae train games.pgn --model maia-1100.onnx --module block3/conv2/relu -o sae-b3/ \
      --resume
  lczerolens sae train --from-npy out/block3_conv2_relu_output.npy --model maia-1100.onnx \
      --module block3/conv2/relu --activation relu --l1 0.005 -o sae-l1/`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Input = args[0]
			}
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runSAETrain(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Output, "output", "o", "", "SAE directory to write (required)")
	fl.StringVar(&opts.Module, "module", "", "module whose activations are encoded (see 'lczerolens model modules'; required)")
	fl.StringVar(&opts.FromNPY, "from-npy", "", "train on the rows of this .npy file instead of running the network on INPUT")
	fl.IntVar(&opts.Features, "features", 0, "dictionary size F (default 8*C)")
	fl.IntVar(&opts.K, "k", 32, "active features per vector (topk); the lens's width for relu")
	fl.StringVar(&opts.Activation, "activation", sae.TopK, "topk or relu")
	fl.Float64Var(&opts.L1, "l1", 0, "L1 penalty lambda of --activation relu")
	fl.Float64Var(&opts.LR, "lr", def.LR, "Adam learning rate")
	fl.IntVar(&opts.SAEBatch, "sae-batch", 4096, "vectors per training step")
	fl.IntVar(&opts.Steps, "steps", 0, "stop after this many steps (0: after --epochs passes over the input)")
	fl.IntVar(&opts.Epochs, "epochs", 1, "passes over the input")
	fl.Uint64Var(&opts.Seed, "seed", 1, "seed of the initialisation, shuffle and held-out split")
	fl.Float64Var(&opts.Holdout, "holdout", 0.1, "fraction of input records held out for the metrics")
	fl.IntVar(&opts.Buffer, "buffer", 1<<16, "shuffle buffer size in vectors")
	fl.IntVar(&opts.HeldMax, "held-max", 1<<15, "held-out vectors kept for the metrics")
	fl.IntVar(&opts.Checkpoint, "checkpoint", 200, "write a checkpoint every this many steps (0: never)")
	fl.IntVar(&opts.LogEvery, "log-every", 100, "report the held-out metrics every this many steps (0: never)")
	fl.IntVar(&opts.EvalPositions, "eval-positions", 512, "held-out positions of the downstream fidelity (0: none)")
	fl.IntVar(&opts.MaxPositions, "max-positions", 0, "stop reading after this many positions per pass (0 = the whole input)")
	fl.BoolVar(&opts.Resume, "resume", false, "continue from SAEDIR's checkpoint")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress output")
	fl.BoolVar(&opts.Force, "force", false, "replace an SAE in SAEDIR")
	saeReadFlags(fl, &opts.InputType, &opts.InputFormat, &opts.Plies)
	_ = cmd.MarkFlagRequired("output")
	_ = cmd.MarkFlagRequired("module")
	mutuallyExclusive(cmd, "resume", "force")
	return cmd
}

// checkpointFile is the checkpoint's name in SAEDIR.
const checkpointFile = "checkpoint.gob"

func runSAETrain(opts *SAETrainOptions) (err error) {
	f := opts.Factory
	switch {
	case opts.Input == "" && opts.FromNPY == "":
		return usageErrorf("sae train: give INPUT (positions) or --from-npy FILE.npy")
	case opts.Input != "" && opts.FromNPY != "":
		return usageErrorf("sae train: give INPUT or --from-npy, not both")
	case opts.Activation != sae.TopK && opts.Activation != sae.ReLU:
		return usageErrorf("sae train: --activation %q: want topk or relu", opts.Activation)
	case opts.Activation == sae.ReLU && opts.L1 <= 0:
		return usageErrorf("sae train: --activation relu needs a positive --l1")
	case opts.K < 1 || opts.Features < 0 || opts.SAEBatch < 1 || opts.Steps < 0 || opts.Epochs < 1 || opts.Buffer < 1 || opts.HeldMax < 0 || opts.Checkpoint < 0:
		return usageErrorf("sae train: --k, --sae-batch, --epochs and --buffer must be positive; --features, --steps, --held-max, --checkpoint not negative")
	case opts.Holdout < 0 || opts.Holdout >= 1:
		return usageErrorf("sae train: --holdout %g: want 0 <= fraction < 1", opts.Holdout)
	case !(opts.LR > 0):
		return usageErrorf("sae train: --lr %g: want a positive rate", opts.LR)
	case opts.Epochs > 1 && opts.Input == "-":
		return usageErrorf("sae train: --epochs %d reads the input again: stdin can be read once", opts.Epochs)
	}
	dir := opts.Output
	if _, err := os.Stat(filepath.Join(dir, "sae.json")); err == nil && !opts.Force {
		return usageErrorf("sae train: %s already holds an SAE: pass --force to replace it", dir)
	}
	ckPath := filepath.Join(dir, checkpointFile)
	if !opts.Resume && !opts.Force {
		if _, err := os.Stat(ckPath); err == nil {
			return usageErrorf("sae train: %s holds a checkpoint of an unfinished run: pass --resume to continue it or --force to start again", dir)
		}
	}
	lock, err := store.LockDir(dir)
	if err != nil {
		return storeError(err)
	}
	defer lock.Release()

	net, err := f.Network()
	if err != nil {
		return err
	}
	mod, ok := net.Module(opts.Module)
	if !ok {
		return usageErrorf("sae train: module %q not in %s (see `lczerolens model modules`)", opts.Module, net.Path)
	}
	tr := &saeTraining{opts: opts, train: sae.DefaultOptions()}
	tr.train.LR, tr.train.L1, tr.train.Seed = opts.LR, opts.L1, opts.Seed
	tr.sopts = sae.StreamOptions{Batch: opts.SAEBatch, Buffer: opts.Buffer, Steps: opts.Steps, HeldMax: opts.HeldMax,
		CheckpointEvery: opts.Checkpoint, LogEvery: opts.LogEvery,
		Checkpoint: func(c *sae.Checkpoint) error {
			c.Shape = tr.shape
			c.Progress["record"], c.Progress["record_positions"] = int64(tr.record), int64(tr.recPositions)
			c.Progress["record_train"], c.Progress["record_held"] = tr.recTrain, tr.recHeld
			return sae.SaveCheckpoint(ckPath, c)
		},
		Log: func(step int, st sae.StepStats, held sae.Metrics) {
			fmt.Fprintf(f.IO.ErrOut, "sae train: step %d: train mse %.4g, L0 %.1f, %d dead; held-out FVU %.4f, L0 %.1f, dead %.1f%%\n",
				step, st.MSE, st.L0, st.Dead, held.FVU, held.L0, 100*held.Dead)
		}}
	if opts.Quiet {
		tr.sopts.Log = nil
	}
	if opts.Resume {
		ck, err := sae.LoadCheckpoint(ckPath)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return usageErrorf("sae train: --resume: %s has no checkpoint (%s)", dir, checkpointFile)
			}
			return inputError(err)
		}
		if tr.stream, err = sae.ResumeStream(ck, tr.sopts, opts.Seed); err != nil {
			return inputError(err)
		}
		tr.shape = ck.Shape
		if _, ok := ck.Progress["record"]; ok {
			tr.resume = ck.Progress
		}
		fmt.Fprintf(f.IO.ErrOut, "sae train: resuming at step %d (pass %d, input record %d)\n", ck.Trainer.Step, ck.Progress["epoch"]+1, ck.Progress["record"])
	}

	ctx, stop := signalContext()
	defer stop()
	var positions int
	for epoch := 0; epoch < opts.Epochs; epoch++ {
		if tr.stream != nil && int64(epoch) < tr.stream.Epoch {
			continue
		}
		var n int
		if opts.FromNPY != "" {
			n, err = tr.fromNPY(ctx)
		} else {
			n, err = tr.fromPositions(ctx, f)
		}
		positions += n
		if errors.Is(err, sae.ErrSteps) {
			break
		}
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, context.Cause(ctx)) {
				return &interruptedError{cmd: "sae train", positions: positions, hint: "rerun with --resume to continue from the last checkpoint", cause: err}
			}
			return err
		}
		if tr.stream == nil {
			return inputError(fmt.Errorf("sae train: no vector in %s", tr.inputName()))
		}
		tr.stream.EndEpoch()
	}
	if err := tr.stream.Finish(); err != nil {
		return err
	}
	s := tr.stream.T.SAE
	held, nh := tr.stream.Held()
	m := s.Evaluate(held, nh)
	file := &sae.File{ToolVersion: f.Version, Model: sae.ModelID{Path: net.Path, SHA256: net.SHA256, Graph: net.GraphSHA256}, Module: mod.Name, Shape: tr.shape,
		Vectors: "position", Mean: tr.stream.Mean(), Steps: tr.stream.T.Step, Metrics: &m, SAE: s,
		Options: map[string]any{"input": tr.inputName(), "lr": opts.LR, "l1": opts.L1, "sae_batch": opts.SAEBatch, "epochs": opts.Epochs,
			"steps": opts.Steps, "seed": opts.Seed, "holdout": opts.Holdout, "buffer": opts.Buffer, "aux_k": tr.stream.T.Opts.AuxK,
			"aux_coef": tr.stream.T.Opts.AuxCoef, "dead_steps": tr.stream.T.Opts.DeadSteps, "revival": "auxk"}}
	if isSquareShape(tr.shape) {
		file.Vectors = "square"
	}
	if opts.EvalPositions > 0 && opts.FromNPY == "" && opts.Holdout > 0 {
		if file.Fidelity, err = tr.fidelity(ctx, f, file); err != nil {
			if ctx.Err() != nil {
				return &interruptedError{cmd: "sae train", positions: positions, hint: "the training is done: rerun with --resume to evaluate and save it", cause: err}
			}
			return err
		}
	}
	if err := sae.Save(dir, file, true); err != nil {
		return err
	}
	if err := os.Remove(ckPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sae train: %w", err)
	}
	fmt.Fprintf(f.IO.ErrOut, "sae train: %s, C=%d F=%d k=%d, %d steps on %d positions -> %s\n", mod.Name, s.C, s.F, s.K, file.Steps, positions, dir)
	return printSAEMetrics(f.IO.Out, file)
}

func isSquareShape(shape []int) bool {
	return (len(shape) == 3 && shape[1] == 8 && shape[2] == 8) || (len(shape) == 2 && shape[0] == 64)
}

// saeTraining is one `sae train` run: the stream (made at the first vector, once C is known) and the row
// shape of the module.
type saeTraining struct {
	opts   *SAETrainOptions
	train  sae.Options
	sopts  sae.StreamOptions
	stream *sae.Stream
	shape  []int
	vecs   []float32
	// record is the input record being read; recTrain, recHeld and recPositions are the stream's counts
	// and the positions of this pass when it began. A checkpoint records them so that --resume skips the
	// records it holds whole without running the network on them (pipeline.Input.SkipRecords).
	record                  int
	recTrain, recHeld       int64
	recPositions, positions int
	resume                  map[string]int64 // the checkpoint's progress until the pass it stopped in starts
}

func (t *saeTraining) inputName() string {
	if t.opts.FromNPY != "" {
		return t.opts.FromNPY
	}
	return t.opts.Input
}

// add feeds one position's activation row.
func (t *saeTraining) add(shape []int, row []float32, transform int, black, held bool) error {
	if t.shape == nil {
		t.shape = append([]int(nil), shape...)
	}
	var n, c int
	var err error
	t.vecs, n, c, err = lens.SquareVectors(shape, row, transform, black, t.vecs)
	if err != nil {
		return err
	}
	if t.stream == nil {
		o := t.opts
		fs := o.Features
		if fs == 0 {
			fs = 8 * c
		}
		s, err := sae.New(c, fs, o.K, o.Activation, o.Seed)
		if err != nil {
			return inputError(fmt.Errorf("sae train: %w", err))
		}
		t.stream = sae.NewStream(sae.NewTrainer(s, t.train), t.sopts, o.Seed)
	} else if c != t.stream.T.SAE.C {
		return inputError(fmt.Errorf("sae train: vectors of %d values, the SAE has %d", c, t.stream.T.SAE.C))
	}
	for i := range n {
		if err := t.stream.Add(t.vecs[i*c:(i+1)*c], held); err != nil {
			return err
		}
	}
	return nil
}

// openInput opens INPUT (or stdin) and reports its size (-1 when unknown).
func openInput(f *Factory, name, cmd string) (io.Reader, int64, func(), error) {
	if name == "-" {
		return f.IO.In, -1, func() {}, nil
	}
	file, err := os.Open(name)
	if err != nil {
		return nil, 0, nil, pathError(fmt.Errorf("%s: %w", cmd, err))
	}
	size := int64(-1)
	if st, err := file.Stat(); err == nil {
		size = st.Size()
	}
	return file, size, func() { file.Close() }, nil
}

// moduleEngine prepares the activation lens on one module.
func moduleEngine(sess *netSession, module string) (*lens.Engine, error) {
	v, err := lens.Activation.Resolve(map[string]string{"pattern": "^" + regexp.QuoteMeta(module) + "$"})
	if err != nil {
		return nil, inputError(err)
	}
	return sess.engine([]lens.Spec{{Lens: lens.Activation, Values: v}}, false)
}

// fromPositions streams one pass over INPUT through the network.
func (t *saeTraining) fromPositions(ctx context.Context, f *Factory) (int, error) {
	o := t.opts
	typ, err := source.DetectType(o.Input, o.InputType)
	if err != nil {
		return 0, inputError(err)
	}
	plies, err := source.ParsePlies(o.Plies)
	if err != nil {
		return 0, inputError(err)
	}
	sess, err := f.Session(o.InputFormat)
	if err != nil {
		return 0, err
	}
	eng, err := moduleEngine(sess, o.Module)
	if err != nil {
		return 0, err
	}
	in, size, closeIn, err := openInput(f, o.Input, "sae train")
	if err != nil {
		return 0, err
	}
	defer closeIn()
	t.record, t.recTrain, t.recHeld, t.recPositions, t.positions = -1, 0, 0, 0, 0
	skip, limit := 0, o.MaxPositions
	if r := t.resume; r != nil {
		// The pass the checkpoint stopped in: its records before r["record"] are in the checkpoint whole.
		t.resume = nil
		skip, t.record = int(r["record"]), int(r["record"])
		t.recTrain, t.recHeld, t.recPositions, t.positions = r["record_train"], r["record_held"], int(r["record_positions"]), int(r["record_positions"])
		t.stream.Rewind(t.recTrain, t.recHeld)
		if limit > 0 {
			limit -= t.recPositions
		}
	}
	sink := &funcSink{consume: func(b *pipeline.Batch) error {
		r := b.Results[0]
		for i, it := range b.Items {
			if it.Record != t.record {
				t.record, t.recPositions = it.Record, t.positions
				if t.stream != nil {
					t.recTrain, t.recHeld = t.stream.EpochTrain, t.stream.EpochHeld
				}
			}
			t.positions++
			held := probe.InHoldout(o.Seed, o.Holdout, it.Record)
			if err := t.add(r.Shape, r.Row(i), b.Input.Transform(i), it.Pos.SideToMove() == board.Black, held); err != nil {
				return err
			}
		}
		return nil
	}}
	var progress func(pipeline.Summary)
	if !o.Quiet {
		prog := pipeline.NewProgress(f.IO.ErrOut, f.IO.StderrTTY, "sae train", size, 0)
		prog.Start()
		defer prog.Stop()
		progress = prog.Update
	}
	enc := sess.enc
	sum, err := pipeline.Run(ctx, pipeline.Input{R: in, Name: o.Input, Type: typ, Select: source.Options{Plies: plies}, SkipRecords: skip}, eng, sink,
		pipeline.Options{BatchSize: f.Config().BatchSize, Format: enc.Format, Fill: enc.Fill, Policy: enc.Policy, Limit: limit, Progress: progress})
	return sum.Positions, err
}

// funcSink is a pipeline sink that hands each batch to a function.
type funcSink struct{ consume func(b *pipeline.Batch) error }

func (s *funcSink) Consume(_ context.Context, b *pipeline.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	return s.consume(b)
}

func (s *funcSink) Close(pipeline.Summary, error) error { return nil }

// npyPosition is what positions.jsonl (written next to a batch output) says of a row.
type npyPosition struct {
	Record int    `json:"record"`
	FEN    string `json:"fen"`
}

// fromNPY streams one pass over the rows of --from-npy; a positions.jsonl next to it gives each row's
// record (for the held-out split) and side to move (for the absolute frame).
func (t *saeTraining) fromNPY(ctx context.Context) (int, error) {
	o := t.opts
	fh, err := os.Open(o.FromNPY)
	if err != nil {
		return 0, pathError(fmt.Errorf("sae train: %w", err))
	}
	defer fh.Close()
	br := bufio.NewReaderSize(fh, 1<<20)
	shape, _, err := npy.ReadHeader(br)
	if err != nil {
		return 0, inputError(fmt.Errorf("sae train: %s: %w", o.FromNPY, err))
	}
	if len(shape) < 2 {
		return 0, inputError(fmt.Errorf("sae train: %s has shape %v: want one row per position", o.FromNPY, shape))
	}
	var rows *bufio.Scanner
	if pf, err := os.Open(filepath.Join(filepath.Dir(o.FromNPY), "positions.jsonl")); err == nil {
		defer pf.Close()
		rows = bufio.NewScanner(pf)
		rows.Buffer(make([]byte, 1<<16), 1<<24)
	}
	rowShape := shape[1:]
	size := 1
	for _, d := range rowShape {
		size *= d
	}
	row := make([]float32, size)
	for r := range shape[0] {
		if o.MaxPositions > 0 && r >= o.MaxPositions {
			return r, nil
		}
		if r%256 == 0 && ctx.Err() != nil {
			return r, context.Cause(ctx)
		}
		if err := binary.Read(br, binary.LittleEndian, row); err != nil {
			return r, inputError(fmt.Errorf("sae train: %s row %d: %w", o.FromNPY, r, err))
		}
		rec, black := r, false
		if rows != nil && rows.Scan() {
			var p npyPosition
			if err := json.Unmarshal(rows.Bytes(), &p); err != nil {
				return r, inputError(fmt.Errorf("sae train: positions.jsonl line %d: %w", r+1, err))
			}
			rec = p.Record
			fields := strings.Fields(p.FEN)
			black = len(fields) > 1 && fields[1] == "b"
		}
		if err := t.add(rowShape, row, 0, black, probe.InHoldout(o.Seed, o.Holdout, rec)); err != nil {
			return r, err
		}
	}
	return shape[0], nil
}

// fidelity runs the sae lens with fidelity on up to --eval-positions held-out positions and averages its
// KL and |delta value| per patch.
func (t *saeTraining) fidelity(ctx context.Context, f *Factory, file *sae.File) (map[string]sae.Fidelity, error) {
	o := t.opts
	typ, err := source.DetectType(o.Input, o.InputType)
	if err != nil {
		return nil, inputError(err)
	}
	if o.Input == "-" {
		return nil, nil // stdin was read once already
	}
	plies, _ := source.ParsePlies(o.Plies)
	sess, err := f.Session(o.InputFormat)
	if err != nil {
		return nil, err
	}
	v, err := lens.SAE.Resolve(map[string]string{"sae": o.Output, "fidelity": "true"})
	if err != nil {
		return nil, err
	}
	lens.WithSAE(v, file)
	eng, err := sess.engine([]lens.Spec{{Lens: lens.SAE, Values: v}}, false)
	if err != nil {
		return nil, err
	}
	in, _, closeIn, err := openInput(f, o.Input, "sae train")
	if err != nil {
		return nil, err
	}
	defer closeIn()
	var kl, dv [3]float64
	count := 0
	sink := &funcSink{consume: func(b *pipeline.Batch) error {
		for _, r := range b.Results {
			for i := range b.Len() {
				for q := range 3 {
					switch {
					case strings.HasSuffix(r.Key, "_sae_kl"):
						kl[q] += float64(r.Row(i)[q])
					case strings.HasSuffix(r.Key, "_sae_dvalue"):
						dv[q] += float64(r.Row(i)[q])
					}
				}
			}
		}
		count += b.Len()
		return nil
	}}
	accept := func(it *source.Item) (any, bool, error) {
		return nil, probe.InHoldout(o.Seed, o.Holdout, it.Record), nil
	}
	enc := sess.enc
	if _, err := pipeline.Run(ctx, pipeline.Input{R: in, Name: o.Input, Type: typ, Select: source.Options{Plies: plies}}, eng, sink,
		pipeline.Options{BatchSize: f.Config().BatchSize, Format: enc.Format, Fill: enc.Fill, Policy: enc.Policy, Limit: o.EvalPositions, Accept: accept}); err != nil {
		return nil, err
	}
	if count == 0 {
		return nil, nil
	}
	out := map[string]sae.Fidelity{}
	for q, name := range lens.FidelityPatches {
		out[name] = sae.Fidelity{Positions: count, KL: kl[q] / float64(count), DValue: dv[q] / float64(count)}
	}
	return out, nil
}

func printSAEMetrics(w io.Writer, file *sae.File) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	m := file.Metrics
	fmt.Fprintf(tw, "held-out vectors\t%d\n", m.Vectors)
	fmt.Fprintf(tw, "FVU\t%.4f\n", m.FVU)
	fmt.Fprintf(tw, "L0\t%.2f\n", m.L0)
	fmt.Fprintf(tw, "dead features\t%.1f%%\n", 100*m.Dead)
	for _, p := range lens.FidelityPatches {
		if fd, ok := file.Fidelity[p]; ok {
			fmt.Fprintf(tw, "patch %s (%d positions)\tKL %.4f\t|dvalue| %.4f\n", p, fd.Positions, fd.KL, fd.DValue)
		}
	}
	if fs, ok := file.Fidelity["sae"]; ok {
		if fz := file.Fidelity["zero"]; fz.KL > 0 {
			fmt.Fprintf(tw, "KL recovered vs zero ablation\t%.1f%%\n", 100*(1-fs.KL/fz.KL))
		}
		if fm := file.Fidelity["mean"]; fm.KL > 0 {
			fmt.Fprintf(tw, "KL recovered vs mean ablation\t%.1f%%\n", 100*(1-fs.KL/fm.KL))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("sae train: write: %w", err)
	}
	return nil
}
