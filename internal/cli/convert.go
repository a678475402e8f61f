package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/lc0"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
)

// ConvertOptions are the inputs of `lczerolens convert`.
type ConvertOptions struct {
	IO         *IOStreams
	Input      string
	Output     string
	PolicyHead string
	ValueHead  string
	Force      bool
}

// NewCmdConvert builds `lczerolens convert`. runF replaces the run step in tests of flag parsing.
func NewCmdConvert(f *Factory, runF ...func(*ConvertOptions) error) *cobra.Command {
	opts := &ConvertOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "convert NET.pb.gz",
		Short: "Convert an lc0 weight file (.pb, .pb.gz) to ONNX, as lc0 leela2onnx does",
		Long: `Convert an lc0 weight file to the ONNX graph lc0's own converter (leela2onnx) builds: same node and
output names, batch norm folded the same way. Every command also reads weight files directly with --model;
convert writes the .onnx for other tools. Multi-head nets choose their heads with --policy-head and
--value-head (default vanilla and winner).`,
		Example: `  lczerolens convert maia-1100.pb.gz -o maia-1100.onnx
  lczerolens convert BT4.pb.gz --policy-head optimistic --value-head q`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Input = args[0]
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runConvert(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", `output file, "-" for stdout (default: the input name with .onnx)`)
	cmd.Flags().StringVar(&opts.PolicyHead, "policy-head", "", "policy head of a multi-head net (default vanilla)")
	cmd.Flags().StringVar(&opts.ValueHead, "value-head", "", "value head of a multi-head net (default winner)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing output file")
	return cmd
}

func runConvert(opts *ConvertOptions) error {
	output := opts.Output
	if output == "" {
		output = strings.TrimSuffix(strings.TrimSuffix(opts.Input, ".gz"), ".pb") + ".onnx"
	}
	raw, err := os.ReadFile(opts.Input)
	if err != nil {
		return pathError(fmt.Errorf("convert: %w", err))
	}
	n, err := lc0.Parse(raw)
	if err != nil {
		return inputError(fmt.Errorf("convert: %s: %w", opts.Input, err))
	}
	m, err := lc0.Convert(n, lc0.Options{PolicyHead: opts.PolicyHead, ValueHead: opts.ValueHead})
	if err != nil {
		return inputError(fmt.Errorf("convert: %s: %w", opts.Input, err))
	}
	b, err := onnxgraph.Marshal(m)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	err = writeOutput("convert", opts.IO.Out, output, opts.Force, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	status := opts.IO.Out
	if output == "-" {
		status = opts.IO.ErrOut
	}
	if _, err := fmt.Fprintf(status, "converted %s to %s (%s; %d nodes, %s bytes)\n", opts.Input, output,
		summarize(n.Describe()), len(m.GetGraph().GetNode()), thousands(int64(len(b)))); err != nil {
		return fmt.Errorf("convert: write: %w", err)
	}
	return nil
}

// summarize is a one-line account of a weight file: body, heads and input format.
func summarize(d lc0.Description) string {
	var body string
	switch d.Body {
	case "attention":
		body = fmt.Sprintf("attention body %d encoders x %d", d.Encoders, d.Embedding)
	case "residual":
		body = fmt.Sprintf("residual body %d x %d", d.Blocks, d.Filters)
		if d.SEBlocks > 0 {
			body += " SE"
		}
	default:
		return "embedded onnx model"
	}
	mlh := ""
	if d.MovesLeftHead {
		mlh = ", moves-left head"
	}
	return fmt.Sprintf("%s, %s policy, %s value%s, input format %d", body, d.PolicyHead, d.ValueHead, mlh, d.InputFormat)
}
