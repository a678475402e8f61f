package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Default string   `json:"default"`
	Help    string   `json:"help"`
	Choices []string `json:"choices,omitempty"`
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
		j.Options = append(j.Options, optionJSON{Name: o.Name, Type: string(o.Kind), Default: o.Default, Help: o.Help, Choices: o.Choices})
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
	tw := tabwriter.NewWriter(opts.IO.Out, 2, 4, 2, ' ', 0)
	for _, j := range all {
		status := ""
		if j.Compatible != nil {
			status = "compatible"
			if !*j.Compatible {
				status = "incompatible: " + j.Reason
			}
			status = "\t" + status
		}
		fmt.Fprintf(tw, "%s\t%s%s\n", j.Name, j.Doc, status)
		for _, o := range j.Options {
			fmt.Fprintf(tw, "\t  --%s (%s, default %q)\t%s\n", o.Name, o.Type, o.Default, o.Help)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("lenses list: write: %w", err)
	}
	return nil
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
	fmt.Fprintf(&b, "%s: %s\n\nOptions (flags of analyse and batch, and config keys):\n", j.Name, j.Doc)
	for _, o := range j.Options {
		line := fmt.Sprintf("  --%s (%s, default %q): %s", o.Name, o.Type, o.Default, o.Help)
		if len(o.Choices) > 0 {
			line += " [" + strings.Join(o.Choices, ", ") + "]"
		}
		b.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, "\nExample:\n  lczerolens analyse --lens %s --startpos\n", l.Name)
	if _, err := io.WriteString(opts.IO.Out, b.String()); err != nil {
		return fmt.Errorf("lenses describe: write: %w", err)
	}
	return nil
}
