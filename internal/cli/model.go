package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/lc0"
	"github.com/lczerolens/lczerolens/internal/model"
)

// NewCmdModel builds `lczerolens model`, the parent of the network inspection commands.
func NewCmdModel(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Inspect a network: its interface, size and modules",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(NewCmdModelInfo(f), NewCmdModelModules(f))
	return cmd
}

// ModelInfoOptions are the inputs of `lczerolens model info`.
type ModelInfoOptions struct {
	Factory *Factory
	JSON    bool
}

// NewCmdModelInfo builds `lczerolens model info`.
func NewCmdModelInfo(f *Factory, runF ...func(*ModelInfoOptions) error) *cobra.Command {
	opts := &ModelInfoOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Summarise a network: input, outputs, heads, body size, ops and parameters",
		Example: `  lczerolens model info --model maia-1100.onnx
  lczerolens model info --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runModelInfo(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON line")
	return cmd
}

type ioJSON struct {
	Name  string  `json:"name"`
	Shape []int64 `json:"shape"` // -1 = batch
}

type modelInfoJSON struct {
	Path      string         `json:"path"`
	SHA256    string         `json:"sha256"`
	Graph     string         `json:"graph_sha256"` // model.GraphHash: shared by a weight file and its onnx export
	Producer  string         `json:"producer"`
	IRVersion int64          `json:"ir_version"`
	Opset     int64          `json:"opset"`
	Inputs    []ioJSON       `json:"inputs"`
	Outputs   []ioJSON       `json:"outputs"`
	Heads     []string       `json:"heads"`
	Body      string         `json:"body"`
	SE        bool           `json:"se"`
	Blocks    int            `json:"blocks"`
	Filters   int            `json:"filters"`
	Nodes     int            `json:"nodes"`
	Ops       map[string]int `json:"ops"`
	Params    int64          `json:"params"`
	// Lc0 describes the lc0 weight file a converted network came from (absent for .onnx files).
	Lc0 *lc0.Description `json:"lc0_weights,omitempty"`
}

func runModelInfo(opts *ModelInfoOptions) error {
	net, err := opts.Factory.Network()
	if err != nil {
		return err
	}
	in := net.Info()
	doc := modelInfoJSON{
		Path: in.Path, SHA256: in.SHA256, Graph: net.GraphSHA256, Producer: in.Producer, IRVersion: in.IRVersion, Opset: in.Opset,
		Heads: headNames(in.Heads), Body: in.Body, SE: in.SE, Blocks: in.Blocks, Filters: in.Filters,
		Nodes: in.Nodes, Ops: in.OpCounts, Params: in.Params,
	}
	doc.Lc0 = net.Weights
	for _, v := range in.Inputs {
		doc.Inputs = append(doc.Inputs, ioJSON(v))
	}
	for _, v := range in.Outputs {
		doc.Outputs = append(doc.Outputs, ioJSON(v))
	}
	w := opts.Factory.IO.Out
	if opts.JSON {
		if err := json.NewEncoder(w).Encode(doc); err != nil {
			return fmt.Errorf("model info: write json: %w", err)
		}
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "path      %s\nsha256    %s\ngraph     %s (sha256 of graph and weights)\n", in.Path, in.SHA256, net.GraphSHA256)
	fmt.Fprintf(&b, "producer  %s (ir %d, opset %d)\n", orDash(in.Producer), in.IRVersion, in.Opset)
	for _, v := range in.Inputs {
		fmt.Fprintf(&b, "input     %s %s\n", v.Name, dims(v.Shape, "batch"))
	}
	for _, v := range in.Outputs {
		fmt.Fprintf(&b, "output    %s %s\n", v.Name, dims(v.Shape, "batch"))
	}
	fmt.Fprintf(&b, "heads     %s\n", strings.Join(doc.Heads, ", "))
	switch in.Body {
	case "attention":
		fmt.Fprintf(&b, "body      attention, %d encoders x %d embedding\n", in.Blocks, in.Filters)
	case "residual":
		se := ""
		if in.SE {
			se = ", SE"
		}
		fmt.Fprintf(&b, "body      residual, %d blocks x %d filters%s\n", in.Blocks, in.Filters, se)
	default:
		fmt.Fprintf(&b, "body      %s\n", in.Body)
	}
	fmt.Fprintf(&b, "params    %s\n", thousands(in.Params))
	var ops []string
	for _, c := range in.OpCountList() {
		ops = append(ops, fmt.Sprintf("%s %d", c.Op, c.Count))
	}
	fmt.Fprintf(&b, "nodes     %d (%s)\n", in.Nodes, strings.Join(ops, ", "))
	if doc.Lc0 != nil {
		b.WriteString("lc0 weights (converted on load)\n")
		for _, l := range doc.Lc0.Lines() {
			fmt.Fprintf(&b, "  %-21s %s\n", l[0]+":", l[1])
		}
	}
	if _, err := io.WriteString(w, fitLines(b.String(), helpWidth)); err != nil { // the op counts run long
		return fmt.Errorf("model info: write: %w", err)
	}
	return nil
}

func headNames(h model.Heads) []string {
	out := []string{}
	for _, p := range []struct{ name, tensor string }{{"policy", h.Policy}, {"wdl", h.WDL}, {"value", h.Value}, {"mlh", h.MLH}} {
		if p.tensor != "" {
			out = append(out, p.name)
		}
	}
	return out
}

// ModelModulesOptions are the inputs of `lczerolens model modules`.
type ModelModulesOptions struct {
	Factory *Factory
	Pattern string
	JSON    bool
}

// NewCmdModelModules builds `lczerolens model modules`.
func NewCmdModelModules(f *Factory, runF ...func(*ModelModulesOptions) error) *cobra.Command {
	opts := &ModelModulesOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "modules",
		Short: "List the modules (node outputs) lenses can select, with op type and shape",
		Long: `List every node output of the network by module name (the tensor name without its leading "/"), with the
op that produces it and its shape for one position. Lenses select modules with --pattern, a Go regular
expression matched against these names.`,
		Example: `  lczerolens model modules --model maia-1100.onnx
  lczerolens model modules --model maia-1100.onnx --pattern '^block\d+/conv2/relu$'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runModelModules(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Pattern, "pattern", "", "only modules whose name matches this Go regular expression")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object per line")
	return cmd
}

type moduleJSON struct {
	Name  string  `json:"name"`
	Op    string  `json:"op"`
	Shape []int64 `json:"shape"`
	DType string  `json:"dtype"`
}

func runModelModules(opts *ModelModulesOptions) error {
	f := opts.Factory
	net, err := f.Network()
	if err != nil {
		return err
	}
	if !net.ShapesKnown() {
		// Only ops static inference does not model need ONNX Runtime.
		rt, err := f.Sessions()
		if err != nil {
			return err
		}
		if err := net.ResolveShapes(rt); err != nil {
			return err
		}
	}
	mods := net.Modules
	if opts.Pattern != "" {
		if mods, err = net.Select(opts.Pattern); err != nil {
			return inputError(err)
		}
	}
	w := f.IO.Out
	if opts.JSON {
		enc := json.NewEncoder(w)
		for _, m := range mods {
			if err := enc.Encode(moduleJSON{Name: m.Name, Op: m.Op, Shape: m.Shape, DType: m.DType}); err != nil {
				return fmt.Errorf("model modules: write json: %w", err)
			}
		}
		return nil
	}
	width := len("module")
	for _, m := range mods {
		width = max(width, len(m.Name))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s  %-18s  %s\n", width, "module", "op", "shape")
	for _, m := range mods {
		shape := dims(m.Shape, "")
		if m.DType != "float32" && m.DType != "" {
			shape += " " + m.DType
		}
		fmt.Fprintf(&b, "%-*s  %-18s  %s\n", width, m.Name, m.Op, shape)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("model modules: write: %w", err)
	}
	return nil
}

// dims renders a shape as [1,64,8,8]; a -1 dimension is shown as batch (when non-empty), nil as "?".
func dims(shape []int64, batch string) string {
	if shape == nil {
		return "?"
	}
	parts := make([]string, len(shape))
	for i, d := range shape {
		if d < 0 && batch != "" {
			parts[i] = batch
		} else {
			parts[i] = strconv.FormatInt(d, 10)
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// thousands renders 1234567 as 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
