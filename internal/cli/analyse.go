package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/store"
)

// AnalyseOptions are the inputs of `lczerolens analyse`.
type AnalyseOptions struct {
	Factory *Factory
	Pos     positionFlags
	Lenses  lensFlags
	Format  string
	Output  string
	Top     int
	Force   bool
}

// NewCmdAnalyse builds `lczerolens analyse`.
func NewCmdAnalyse(f *Factory, runF ...func(*AnalyseOptions) error) *cobra.Command {
	opts := &AnalyseOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "analyse",
		Aliases: []string{"analyze"},
		Short:   "Run lenses on one position and print their results",
		Long: `Run one or several lenses on one position (a batch of one) and write the results with the network's
outputs: JSON to stdout or -o FILE, or with --format npy the same directory layout as "batch" with one row.`,
		Example: `  lczerolens analyse --lens saliency --startpos --moves "e2e4 e7e5"
  lczerolens analyse --model maia-1100.onnx --lens activation --pattern '^block5/conv2/relu$' --fen "8/8/8/4k3/8/8/4P3/4K3 w - - 0 1"
  lczerolens analyse --lens activation,gradient --startpos --format npy -o out/
  lczerolens analyse --lens gradient --target policy:e2e4 --startpos`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runAnalyse(opts)
		},
	}
	opts.Pos.register(cmd)
	opts.Lenses.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&opts.Format, "format", "json", "output format: json, or npy (needs -o DIR)")
	fl.StringVarP(&opts.Output, "output", "o", "", "output file (json) or directory (npy)")
	fl.IntVar(&opts.Top, "top", 5, "network moves listed in the envelope (0 = all legal moves)")
	fl.BoolVar(&opts.Force, "force", false, "with --format npy: overwrite a non-empty output directory")
	return cmd
}

// analysisJSON is the envelope of one analysed position.
type analysisJSON struct {
	Format        string          `json:"format"`
	FormatVersion int             `json:"format_version"`
	ToolVersion   string          `json:"tool_version"`
	Model         modelJSON       `json:"model"`
	InputEncoding encodingJSON    `json:"input_encoding"`
	Lens          lensEnvJSON     `json:"lens"`
	Position      positionJSON    `json:"position"`
	Outputs       headsJSON       `json:"outputs"`
	Results       json.RawMessage `json:"results"`
}

type modelJSON struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

type encodingJSON struct {
	Planes      int    `json:"planes"`
	InputFormat string `json:"input_format"`
	HistoryFill string `json:"history_fill"`
}

type lensEnvJSON struct {
	Name    string         `json:"name"`
	Options map[string]any `json:"options"`
}

type positionJSON struct {
	FENStart string   `json:"fen_start"`
	Moves    []string `json:"moves"`
	FEN      string   `json:"fen"`
}

func runAnalyse(opts *AnalyseOptions) (err error) {
	f := opts.Factory
	cfg := f.Config()
	switch {
	case opts.Format != "json" && opts.Format != "npy":
		return usageErrorf("analyse: format %q: want json or npy", opts.Format)
	case opts.Format == "npy" && opts.Output == "":
		return usageErrorf("analyse: --format npy needs -o DIR")
	}
	specs, err := opts.Lenses.specs(cfg.Lens)
	if err != nil {
		return err
	}
	hf, err := fill(cfg)
	if err != nil {
		return err
	}
	g, err := opts.Pos.game()
	if err != nil {
		return err
	}
	net, err := f.Network()
	if err != nil {
		return err
	}
	rt, err := f.Runtime()
	if err != nil {
		return err
	}
	eng, err := lens.NewEngine(rt, net, specs, lens.EngineOptions{SavePlanes: opts.Lenses.savePlanes})
	if err != nil {
		return inputError(err)
	}
	planes := make([]float32, board.NumPlanes*64)
	g.Encode(hf, planes)
	pos := g.Current()
	out, results, err := eng.Run(&lens.Batch{Positions: []*board.Position{pos}, Planes: planes})
	if err != nil {
		return err
	}
	name, lensOpts := lensInfo(specs)

	if opts.Format == "npy" {
		w, err := store.Open(opts.Output, store.Options{
			Format: store.FormatNPY, Force: opts.Force, ToolVersion: f.Version,
			Model: store.ModelInfo{Path: net.Path, SHA256: net.SHA256},
			Lens:  store.LensInfo{Name: name, Options: lensOpts},
		})
		if err != nil {
			return storeError(err)
		}
		if err := w.Add(positionMeta("analyse", -1, g.Ply(), pos, nil), storeResults(results, 0)); err != nil {
			return err
		}
		return w.Close()
	}

	env := analysisJSON{
		Format: "lczerolens-analysis", FormatVersion: 1, ToolVersion: f.Version,
		Model:         modelJSON{Path: net.Path, SHA256: net.SHA256},
		InputEncoding: encodingJSON{Planes: board.NumPlanes, InputFormat: "classical", HistoryFill: hf.String()},
		Lens:          lensEnvJSON{Name: name, Options: lensOpts},
		Position:      positionJSON{FENStart: startFEN(g), Moves: uciMoves(g), FEN: pos.FEN()},
		Outputs:       summarizeHeads(pos, out.Heads, 0, opts.Top),
	}
	env.Results = resultsJSON(results, 0)
	var w io.Writer = f.IO.Out
	if opts.Output != "" {
		file, err := os.Create(opts.Output)
		if err != nil {
			return fmt.Errorf("analyse: %w", err)
		}
		w = file
		defer closeFile(file, &err)
	}
	if err := json.NewEncoder(w).Encode(env); err != nil {
		return fmt.Errorf("analyse: write json: %w", err)
	}
	return nil
}

// resultsJSON renders row i of every result as {"key":{"dtype","shape","data"}} in result order.
func resultsJSON(results []lens.Result, i int) json.RawMessage {
	buf := []byte{'{'}
	for k, r := range results {
		if k > 0 {
			buf = append(buf, ',')
		}
		buf = store.AppendResultJSON(buf, r.Key, r.Shape, r.Row(i))
	}
	return append(buf, '}')
}

// storeResults converts row i of lens results to store results.
func storeResults(results []lens.Result, i int) []store.Result {
	out := make([]store.Result, len(results))
	for k, r := range results {
		out[k] = store.Result{Key: r.Key, Shape: r.Shape, Data: r.Row(i)}
	}
	return out
}

// positionMeta describes a position for positions.jsonl.
func positionMeta(source string, game, ply int, pos *board.Position, next *board.Move) store.PositionMeta {
	meta := store.PositionMeta{Source: source, Game: game, Ply: ply, FEN: pos.FEN()}
	if next != nil {
		s := next.UCI()
		meta.Move = &s
	}
	return meta
}

func startFEN(g *board.Game) string { return g.Start().FEN() }

func uciMoves(g *board.Game) []string {
	out := []string{}
	for _, m := range g.Moves() {
		out = append(out, m.UCI())
	}
	return out
}
