package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/render"
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
	SVG     string
	// CorruptFEN and CorruptMoves give the corrupted position that lenses comparing two runs (patching)
	// need: it starts from CorruptFEN, else from the clean start (--fen or the start position).
	CorruptFEN   string
	CorruptMoves string
	// corruptFENSet says --corrupt-fen was given, so that an empty one is refused rather than ignored.
	corruptFENSet bool
}

// NewCmdAnalyse builds `lczerolens analyse`.
func NewCmdAnalyse(f *Factory, runF ...func(*AnalyseOptions) error) *cobra.Command {
	opts := &AnalyseOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "analyse",
		Aliases: []string{"analyze"},
		Short:   "Run lenses on one position and print their results",
		Long: `Run one or several lenses on one position (a batch of one) and write the results with the network's
outputs: JSON to stdout or -o FILE, or with --format npy the same directory layout as "batch" with one row.

On a terminal, without --format or -o, it shows the position, the network's top moves and W/D/L, and every
[8,8] result as a board of values (coloured where the terminal shows colour); bigger results by shape and
range. Piped, or with --format json, it writes the JSON envelope.`,
		Example: `  lczerolens analyse --lens saliency --startpos --moves "e2e4 e7e5"
  lczerolens analyse --model maia-1100.onnx --lens activation --pattern '^block5/conv2/relu$' --fen "8/8/8/4k3/8/8/4P3/4K3 w - - 0 1"
  lczerolens analyse --lens activation,gradient --startpos --format npy -o out/
  lczerolens analyse --lens gradient --target policy:e2e4 --startpos
  lczerolens analyse --lens lrp --keep heatmap --startpos   # only the [8,8] map, not relevance [112,8,8]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.corruptFENSet = cmd.Flags().Changed("corrupt-fen")
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runAnalyse(opts)
		},
	}
	opts.Pos.register(cmd)
	opts.Lenses.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&opts.Format, "format", "json", "output format: json, or npy (needs -o DIR); default from config key format, else json")
	fl.StringVarP(&opts.Output, "output", "o", "", "output file (json) or directory (npy)")
	fl.IntVar(&opts.Top, "top", 5, "network moves listed in the envelope (0 = all legal moves)")
	fl.BoolVar(&opts.Force, "force", false, "replace an existing output file (-o, --svg), or with --format npy overwrite a non-empty output directory")
	fl.StringVar(&opts.CorruptFEN, "corrupt-fen", "", "corrupted position for lens patching (default: the clean start position)")
	fl.StringVar(&opts.CorruptMoves, "corrupt-moves", "", "moves played from --corrupt-fen (or the clean start) to the corrupted position, for lens patching")
	fl.StringVar(&opts.SVG, "svg", "", "also draw the first [8,8] result (saliency, heatmap) on the board as an SVG file, with the network's best move as an arrow; without one, the boards of the first result with at most 64 (a block's channels, patching's modules) in a grid")
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
	LensMeta      map[string]any  `json:"lens_meta,omitempty"` // per lens, what reading its results needs (module order, ...)
	Results       json.RawMessage `json:"results"`
}

type modelJSON struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

type encodingJSON struct {
	Planes      int    `json:"planes"`
	InputFormat string `json:"input_format"`
	Transform   int    `json:"transform"` // canonical transform applied (bits: 1 flip files, 2 mirror ranks, 4 transpose)
	HistoryFill string `json:"history_fill"`
	// PolicyTranspose is how moves of a transposed position were indexed: planes or lc0-v0.32.
	PolicyTranspose string `json:"policy_transpose"`
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
	if cfg.Format != "" { // --format, else LCZEROLENS_FORMAT or the format key, else json
		opts.Format = cfg.Format
	}
	switch {
	case opts.Format != "json" && opts.Format != "npy":
		return usageErrorf("analyse: format %q: want json or npy", opts.Format)
	case opts.Format == "npy" && opts.Output == "":
		return usageErrorf("analyse: --format npy needs -o DIR")
	}
	if opts.Format == "json" {
		if err := checkOutputFile("analyse", opts.Output, opts.Force); err != nil {
			return err
		}
	}
	if err := checkOutputFile("analyse", opts.SVG, opts.Force); err != nil {
		return err
	}
	a, err := f.analyse(opts, cfg, freshEngine)
	if err != nil {
		return err
	}
	env := a.env
	if opts.SVG != "" {
		info := dirInfo{lens: env.Lens.Name, model: env.Model.Path, lensOpts: env.Lens.Options, transform: env.InputEncoding.Transform, format: env.InputEncoding.InputFormat, modules: metaModules(env.LensMeta)}
		if err := analysisSVG(f.IO, opts.SVG, opts.Force, a.results, a.pos, a.best, info); err != nil {
			return err
		}
	}

	if opts.Format == "npy" {
		// The encoding says how the planes' frame maps to the board, for render of module tensors.
		extra := map[string]any{"input_encoding": env.InputEncoding}
		if meta := env.LensMeta; meta != nil {
			extra["lens_meta"] = meta
		}
		w, err := store.Open(opts.Output, store.Options{
			Format: store.FormatNPY, Force: opts.Force, ToolVersion: f.Version,
			Model: store.ModelInfo{Path: env.Model.Path, SHA256: env.Model.SHA256},
			Lens:  store.LensInfo{Name: env.Lens.Name, Options: env.Lens.Options},
			Extra: extra,
		})
		if err != nil {
			return storeError(err)
		}
		if err := w.Add(positionMeta("analyse", -1, a.ply, a.pos, nil), storeResults(a.results, 0)); err != nil {
			return errors.Join(err, w.Abort()) // Abort releases the directory's lock
		}
		return w.Close()
	}

	// A person at a terminal who asked for no format gets a board; programs (a pipe, a file, an explicit
	// --format json or config key) get the JSON envelope, unchanged.
	if f.IO.StdoutTTY && (opts.Output == "" || opts.Output == "-") && cfg.source("format") == "" {
		return writeHumanView(f.IO.Out, humanView{
			Model: env.Model.Path, Pos: a.pos, Heads: env.Outputs,
			Lens: env.Lens.Name, LensOpts: env.Lens.Options, Results: a.results, Color: f.IO.Color, Command: "analyse",
		})
	}
	env.Results = resultsJSON(a.results, 0)
	return writeOutput("analyse", f.IO.Out, opts.Output, opts.Force, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(env)
	})
}

// analysis is one analysed position: its envelope (without results), its results, and what the SVG and
// NPY outputs need besides.
type analysis struct {
	env     analysisJSON
	results []lens.BatchResult
	pos     *board.Position
	ply     int
	best    headsJSON // the network's best move alone, for the SVG's arrow
}

// engineSource prepares (or finds prepared) the lenses of specs on a session; release is called when the
// analysis no longer uses the engine.
type engineSource func(s *netSession, specs []lens.Spec, savePlanes bool, keep []string) (eng *lens.Engine, release func(), err error)

// freshEngine prepares the lenses anew: what a one-shot command wants.
func freshEngine(s *netSession, specs []lens.Spec, savePlanes bool, keep []string) (*lens.Engine, func(), error) {
	eng, err := s.engine(specs, savePlanes, keep...)
	return eng, func() {}, err
}

// analyse runs the lenses and position of opts under cfg: the one code path of the analyse command and of
// serve's POST /api/analyse, so both return the same envelope for the same inputs.
func (f *Factory) analyse(opts *AnalyseOptions, cfg *Config, engines engineSource) (*analysis, error) {
	specs, err := opts.Lenses.specs(cfg)
	if err != nil {
		return nil, err
	}
	g, err := opts.Pos.game()
	if err != nil {
		return nil, err
	}
	sess, err := f.sessionWith(cfg, cfg.Model, opts.Pos.InputFormat)
	if err != nil {
		return nil, err
	}
	eng, release, err := engines(sess, specs, opts.Lenses.savePlanes, opts.Lenses.keep)
	if err != nil {
		return nil, err
	}
	defer release()
	net, enc := sess.net, sess.enc
	planes := make([]float32, board.NumPlanes*64)
	transform := enc.encode(g, planes)
	pos := g.Current()
	batch := &lens.Batch{Positions: []*board.Position{pos}, Planes: planes, Transforms: []int{transform}, Format: enc.Format, Fill: enc.Fill, Policy: enc.Policy}
	if err := opts.addCorrupt(batch, g, enc, eng.NeedsCorrupt()); err != nil {
		return nil, err
	}
	out, results, err := eng.Run(batch)
	if err != nil {
		return nil, engineError(err)
	}
	name, lensOpts := opts.Lenses.info(specs)
	return &analysis{
		env: analysisJSON{
			Format: "lczerolens-analysis", FormatVersion: 1, ToolVersion: f.Version,
			Model:         modelJSON{Path: net.Path, SHA256: net.SHA256},
			InputEncoding: enc.json(transform),
			Lens:          lensEnvJSON{Name: name, Options: lensOpts},
			Position:      positionJSON{FENStart: startFEN(g), Moves: uciMoves(g), FEN: pos.FEN()},
			Outputs:       summarizeHeads(pos, enc.policy(transform), out.Heads, 0, opts.Top),
			LensMeta:      eng.Meta(),
		},
		results: results,
		pos:     pos,
		ply:     g.Ply(),
		best:    summarizeHeads(pos, enc.policy(transform), out.Heads, 0, 1),
	}, nil
}

// addCorrupt encodes the corrupted position into b when a lens needs one, and refuses corruption flags
// that no chosen lens reads.
func (opts *AnalyseOptions) addCorrupt(b *lens.Batch, clean *board.Game, enc encoding, need bool) error {
	given := opts.CorruptFEN != "" || opts.CorruptMoves != ""
	switch {
	case opts.corruptFENSet && opts.CorruptFEN == "":
		return usageErrorf("analyse: --corrupt-fen is empty: give a FEN, or leave it out to start from the clean position")
	case need && !given:
		return usageErrorf("analyse: lens patching compares with a corrupted position: pass --corrupt-fen and/or --corrupt-moves")
	case !need && given:
		return usageErrorf("analyse: --corrupt-fen/--corrupt-moves are only read by lens patching")
	case !need:
		return nil
	}
	start := opts.CorruptFEN
	if start == "" {
		start = clean.Start().FEN()
	}
	g, err := board.ParseGame(start, opts.CorruptMoves)
	if err != nil {
		return inputError(fmt.Errorf("analyse: corrupted position: %w", err))
	}
	planes := make([]float32, board.NumPlanes*64)
	enc.encode(g, planes) // the clean position's frame is the one patching works in
	b.CorruptPositions, b.CorruptPlanes = []*board.Position{g.Current()}, planes
	return nil
}

// analysisSVG draws the first [8,8] result of an analysed position.
func analysisSVG(streams *IOStreams, path string, force bool, results []lens.BatchResult, pos *board.Position, heads headsJSON, info dirInfo) error {
	var arrows []board.Move
	for _, m := range heads.Moves {
		if mv, err := pos.ParseMove(m.UCI); err == nil {
			arrows = append(arrows, mv)
		}
	}
	var keys []string
	for _, r := range results {
		if !r.JSONOnly() && len(r.Shape) == 2 && r.Shape[0] == 8 && r.Shape[1] == 8 {
			o := render.Options{Heat: r.Row(0), Position: pos, NoValue: noValueMask(results, r.Key, 0, pos), Arrows: arrows}
			o.Title, o.Caption = svgText(r.Key, info.lens, info.lensOpts, info.model, pos.FEN(), r.Row(0))
			return writeSVG(streams, path, force, o)
		}
		keys = append(keys, r.Key)
	}
	// No map: the first result with a board axis and at most maxBoards boards along its other axis (the
	// channels of a block, the modules of per-square patching) as a grid.
	for _, r := range results {
		if r.JSONOnly() {
			continue
		}
		axes, ok := findBoardAxes(r.Key, r.Shape)
		if !ok || axes.query >= 0 || len(axes.other) > 1 || (len(axes.other) == 1 && r.Shape[axes.other[0]] > maxBoards) {
			continue
		}
		boards, _, err := (&RenderOptions{Grid: true}).boardsOf(r.Key, r.Row(0), r.Shape, info, pos)
		if err != nil {
			return err
		}
		var all []float32
		for i := range boards {
			boards[i].Position, boards[i].Arrows = pos, arrows
			all = append(all, boards[i].Heat...)
		}
		title, caption := svgText(r.Key, info.lens, info.lensOpts, info.model, pos.FEN(), all)
		g := render.GridOptions{Title: title, Caption: caption}
		return writeOutput("analyse", streams.Out, path, force, func(w io.Writer) error { return render.Grid(w, g, boards) })
	}
	return usageErrorf("analyse: --svg: no [8,8] map among %s, nor a result of at most %d boards: "+
		"write them with --format npy -o DIR and draw one with \"lczerolens render\" (--channel, --plane, --head and --query)", strings.Join(keys, ", "), maxBoards)
}

// metaModules returns the module order a lens recorded in its meta (per-square patching's rows).
func metaModules(meta map[string]any) []string {
	for _, m := range meta {
		mm, ok := m.(map[string]any)
		if !ok {
			continue
		}
		switch ms := mm["modules"].(type) {
		case []string:
			return ms
		case []any:
			var out []string
			for _, x := range ms {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
			return out
		}
	}
	return nil
}

// resultsJSON renders row i of every result as {"key":{"dtype","shape","data"}} in result order (a
// JSON-only result as {"dtype":"json","data"}).
func resultsJSON(results []lens.BatchResult, i int) json.RawMessage {
	buf := []byte{'{'}
	for k, r := range results {
		if k > 0 {
			buf = append(buf, ',')
		}
		if r.JSONOnly() {
			buf = store.AppendJSONResult(buf, r.Key, jsonValue(r.JSON[i]))
			continue
		}
		buf = store.AppendResultJSON(buf, r.Key, r.Shape, r.Row(i))
	}
	return append(buf, '}')
}

// jsonValue marshals a JSON-only result's value; one that cannot be marshalled (a lens bug) becomes an
// error object rather than invalid output.
func jsonValue(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return b
}

// storeResults converts row i of lens results to store results.
func storeResults(results []lens.BatchResult, i int) []store.Result {
	out := make([]store.Result, len(results))
	for k, r := range results {
		if r.JSONOnly() {
			out[k] = store.Result{Key: r.Key, JSON: jsonValue(r.JSON[i])}
			continue
		}
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
