package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/lens"
)

// LensesOptions are the inputs of `lczerolens lenses list|describe`.
type LensesOptions struct {
	IO      *IOStreams
	Factory *Factory
	JSON    bool
	Model   bool // list compatibility with the configured --model
	Name    string
}

// NewCmdLenses builds `lczerolens lenses` with its list and describe subcommands.
func NewCmdLenses(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lenses",
		Short: "List and describe the registered lenses",
		Example: `  lczerolens lenses list
  lczerolens lenses list --model maia-1100.onnx
  lczerolens lenses describe saliency`,
	}
	opts := &LensesOptions{IO: f.IO, Factory: f}
	list := &cobra.Command{
		Use:   "list",
		Short: "List every lens with its doc and options (with --model: whether it runs on that network and why not)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts.Model = c.Flags().Lookup("model").Changed || f.Config().Model != ""
			return runLensesList(opts)
		},
	}
	list.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	describe := &cobra.Command{
		Use:   "describe NAME",
		Short: "Describe one lens: its doc, options, defaults and results",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runLensesDescribe(opts)
		},
	}
	describe.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	cmd.AddCommand(list, describe)
	return cmd
}

type optionJSON struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Default string `json:"default"`
	// DefaultDoc is what an empty default stands for (the modules a pattern selects when none is given).
	DefaultDoc string   `json:"default_doc,omitempty"`
	Help       string   `json:"help"`
	Choices    []string `json:"choices,omitempty"`
}

type lensJSON struct {
	Name       string       `json:"name"`
	Doc        string       `json:"doc"`
	Options    []optionJSON `json:"options"`
	Compatible *bool        `json:"compatible,omitempty"`
	Reason     string       `json:"reason,omitempty"`
}

func describeLens(l *lens.Lens) lensJSON {
	j := lensJSON{Name: l.Name, Doc: l.Doc, Options: []optionJSON{}}
	for _, o := range l.Options {
		j.Options = append(j.Options, optionJSON{Name: o.Name, Type: string(o.Kind), Default: o.Default, DefaultDoc: o.DefaultDoc, Help: o.Help, Choices: o.Choices})
	}
	return j
}

func runLensesList(opts *LensesOptions) error {
	var all []lensJSON
	for _, l := range lens.Lenses {
		j := describeLens(l)
		if opts.Model {
			n, err := opts.Factory.Network()
			if err != nil {
				return err
			}
			ok := true
			if v, err := l.Resolve(nil); err != nil {
				ok, j.Reason = false, err.Error()
			} else if l.Compatible != nil {
				if err := l.Compatible(n, v); err != nil {
					ok, j.Reason = false, err.Error()
				}
			}
			j.Compatible = &ok
		}
		all = append(all, j)
	}
	if opts.JSON {
		if err := json.NewEncoder(opts.IO.Out).Encode(all); err != nil {
			return fmt.Errorf("lenses list: write json: %w", err)
		}
		return nil
	}
	// Wrapped under the name column rather than padded into columns: a table sized by its longest doc and
	// reason ran to twice a terminal's width.
	col := 0
	for _, j := range all {
		col = max(col, len(j.Name))
	}
	col += 2
	var b strings.Builder
	for _, j := range all {
		pad := strings.Repeat(" ", col)
		writeWrapped(&b, fmt.Sprintf("%-*s%s", col, j.Name, j.Doc), col)
		for _, o := range j.Options {
			writeWrapped(&b, pad+optionLine(o), col+4)
		}
		if j.Compatible != nil {
			status := "with this model: compatible"
			if !*j.Compatible {
				status = "with this model: incompatible: " + j.Reason
			}
			writeWrapped(&b, pad+status, col+4)
		}
	}
	if _, err := io.WriteString(opts.IO.Out, b.String()); err != nil {
		return fmt.Errorf("lenses list: write: %w", err)
	}
	return nil
}

// optionLine describes one lens option: its flag, kind, real default, help and choices.
func optionLine(o optionJSON) string {
	def := o.Default
	if def == "" {
		def = o.DefaultDoc
	}
	if def == "" {
		def = "none"
	}
	line := fmt.Sprintf("--%s (%s, default %s): %s", o.Name, o.Type, def, o.Help)
	if len(o.Choices) > 0 {
		line += " [" + strings.Join(o.Choices, ", ") + "]"
	}
	return line
}

// writeWrapped writes line word-wrapped to helpWidth, continuation lines indented by hang columns.
func writeWrapped(b *strings.Builder, line string, hang int) {
	b.WriteString(wrapHanging(line, helpWidth, hang))
	b.WriteString("\n")
}

func runLensesDescribe(opts *LensesOptions) error {
	l, err := lens.Lenses.Get(opts.Name)
	if err != nil {
		return inputError(err)
	}
	j := describeLens(l)
	if opts.JSON {
		if err := json.NewEncoder(opts.IO.Out).Encode(j); err != nil {
			return fmt.Errorf("lenses describe: write json: %w", err)
		}
		return nil
	}
	var b strings.Builder
	writeWrapped(&b, j.Name+": "+j.Doc, 2)
	b.WriteString("\nOptions (flags of analyse and batch, and config keys):\n")
	for _, o := range j.Options {
		writeWrapped(&b, "  "+optionLine(o), 6)
	}
	fmt.Fprintf(&b, "\nExample:\n  lczerolens analyse --lens %s --startpos\n", l.Name)
	if _, err := io.WriteString(opts.IO.Out, b.String()); err != nil {
		return fmt.Errorf("lenses describe: write: %w", err)
	}
	return nil
}
