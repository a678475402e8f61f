package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/npy"
)

// DirectionOptions are the inputs of `lczerolens direction`.
type DirectionOptions struct {
	Factory     *Factory
	A, B        string
	Module      string
	Output      string
	InputFormat string
	Force       bool
}

// NewCmdDirection builds `lczerolens direction A B --module M -o dir.npy`.
func NewCmdDirection(f *Factory, runF ...func(*DirectionOptions) error) *cobra.Command {
	opts := &DirectionOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "direction A B --module M -o dir.npy",
		Short: "Write the difference of mean activations of a module between two position sets (a steering direction)",
		Long: `Stream every position of A and of B (PGN, FEN/EPD list or JSONL, as for "batch") through the network and
write mean(activation over A) - mean(activation over B) at --module as a .npy of one position's shape (for
example [64,8,8]). "analyse --lens steering --module M --direction dir.npy --alpha 2" adds it back.`,
		Example: `  lczerolens direction attacks.epd quiet.epd --model maia.onnx --module block3/conv2/relu -o a.npy
  lczerolens analyse --model maia.onnx --lens steering --module block3/conv2/relu --direction a.npy \
    --alpha 2 --startpos`,
		Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.A, opts.B = args[0], args[1]
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runDirection(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Module, "module", "", `module whose activations are averaged (see "lczerolens model modules"; required)`)
	fl.StringVarP(&opts.Output, "output", "o", "", ".npy file to write (required)")
	fl.BoolVar(&opts.Force, "force", false, "replace an existing output file")
	fl.StringVar(&opts.InputFormat, "input-format", "", inputFormatHelp)
	fl.String("policy-transpose", "planes", policyTransposeHelp)
	fl.String("history-fill", "fen-only", "history planes for games starting from a FEN: fen-only, always, no, current")
	_ = cmd.MarkFlagRequired("module")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func runDirection(opts *DirectionOptions) error {
	if err := checkOutputFile("direction", opts.Output, opts.Force); err != nil {
		return err
	}
	sess, err := opts.Factory.Session(opts.InputFormat)
	if err != nil {
		return err
	}
	m, ok := sess.net.Module(opts.Module)
	if !ok {
		return usageErrorf("direction: module %s not in the network; list them with `lczerolens model modules`", opts.Module)
	}
	mods := []model.Module{m}
	a, na, err := sess.meanActivations(opts.A, mods)
	if err != nil {
		return fmt.Errorf("direction: %w", err)
	}
	b, nb, err := sess.meanActivations(opts.B, mods)
	if err != nil {
		return fmt.Errorf("direction: %w", err)
	}
	da, db := a[m.Tensor], b[m.Tensor]
	dir := make([]float32, len(da))
	for k := range dir {
		dir[k] = da[k] - db[k]
	}
	shape := []int{len(dir)}
	if m.Shape != nil {
		shape = shape[:0]
		if m.Shape[0] != 1 { // [64,C]: attention bodies fold the squares into the batch axis
			shape = append(shape, int(m.Shape[0]))
		}
		for _, d := range m.Shape[1:] {
			shape = append(shape, int(d))
		}
	}
	if err := writeOutput("direction", opts.Factory.IO.Out, opts.Output, opts.Force, func(w io.Writer) error {
		return npy.Write(w, shape, dir)
	}); err != nil {
		return err
	}
	fmt.Fprintf(opts.Factory.IO.ErrOut, "direction: mean of %d positions of %s minus mean of %d of %s at %s -> %s %v\n", na, opts.A, nb, opts.B, m.Name, opts.Output, shape)
	return nil
}
