package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/report"
)

// ReportOptions are the inputs of `lczerolens report`.
type ReportOptions struct {
	IO      *IOStreams
	Version string
	Input   string
	Output  string
	Limit   int
	MaxMB   int
	Force   bool
}

// NewCmdReport builds `lczerolens report`.
func NewCmdReport(f *Factory, runF ...func(*ReportOptions) error) *cobra.Command {
	opts := &ReportOptions{IO: f.IO, Version: f.Version}
	cmd := &cobra.Command{
		Use:   "report OUT -o report.html",
		Short: "Write one self-contained HTML file showing an output directory (boards, charts, tables)",
		Long: `Write one HTML file with every picture, style and script inside it (it requests nothing, so
it opens offline and can be mailed) showing OUT: an output directory of batch or analyse --format
npy, an analyse JSON file, a probe file of probe train, or a directory holding any of these.

  batch, analyse   per position a board with every [8,8] result (saliency, lrp, occlusion, ...)
                   switchable; arrows: the record's move (batch) or the network's top 3 (analyse
                   JSON); vectors (logit lens per layer, ...) as a chart of their mean
  probe train      held-out and training score per module: a bar chart and a table
  sae features     per feature (the first --limit) its density and top examples' boards
  .json .jsonl     tables of their first rows; JSONL rows with a rating and a boolean outcome
  .csv             (solved, correct, ...) also summarised by rating band, rows with a "fen" drawn
                   (move, best_move or moves as the arrow); subdirectories one level down too

Big runs are sampled: --limit positions evenly over the run. A board takes about 20 KB per result;
past --max-mb of pictures, later positions are left out (the report and its summary line say so).`,
		Example: `  lczerolens batch games.pgn --lens saliency,occlusion -o sal/ && lczerolens report sal/ -o sal.html
  lczerolens report material.json -o probe.html
  lczerolens report runs/ -o runs.html --limit 20`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Input = args[0]
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runReport(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Output, "output", "o", "", "HTML file to write (required; - for stdout)")
	fl.IntVar(&opts.Limit, "limit", 50, "most positions drawn per directory, sampled evenly over the run")
	fl.IntVar(&opts.MaxMB, "max-mb", 20, "most megabytes of board pictures; later positions are left out")
	fl.BoolVar(&opts.Force, "force", false, "replace an existing output file")
	return cmd
}

func runReport(opts *ReportOptions) error {
	switch {
	case opts.Output == "":
		return usageErrorf("report: no output file: pass -o report.html")
	case opts.Limit < 1:
		return usageErrorf("report: --limit %d: want 1 or more", opts.Limit)
	case opts.MaxMB < 1 || opts.MaxMB > 1024:
		return usageErrorf("report: --max-mb %d: want 1-1024", opts.MaxMB)
	}
	if err := checkOutputFile("report", opts.Output, opts.Force); err != nil {
		return err
	}
	r, err := report.Build(opts.Input, report.Options{Limit: opts.Limit, MaxBytes: opts.MaxMB << 20})
	if err != nil {
		var pe *fs.PathError
		if errors.Is(err, report.ErrNothing) || errors.As(err, &pe) {
			return pathError(err)
		}
		return inputError(err)
	}
	var buf bytes.Buffer
	if err := report.Write(&buf, r, opts.Version); err != nil {
		return err
	}
	if err := writeOutput("report", opts.IO.Out, opts.Output, opts.Force, func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	}); err != nil {
		return err
	}
	if opts.Output != "-" {
		shown := 0
		for _, b := range r.Batches {
			shown += len(b.Positions)
		}
		features := 0
		for _, fs := range r.Features {
			features += len(fs.Features)
		}
		fmt.Fprintf(opts.IO.ErrOut, "report: %s: %.1f MB, %d positions drawn, %d SAE features, %d probe files, %d tables\n",
			opts.Output, float64(buf.Len())/(1<<20), shown, features, len(r.Probes), len(r.Tables))
	}
	return nil
}
