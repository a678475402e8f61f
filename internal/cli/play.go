package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/pipeline"
	"github.com/lczerolens/lczerolens/internal/play"
)

// PlayOptions are the inputs of `lczerolens play`.
type PlayOptions struct {
	Factory   *Factory
	White     string
	Black     string
	Games     int
	Openings  string
	BookPlies int
	MaxPlies  int
	Seed      uint64
	Output    string
	Force     bool
	Sampler   play.Sampler
	Event     string
	Quiet     bool
}

// NewCmdPlay builds `lczerolens play`. runF replaces the run step in tests of flag parsing.
func NewCmdPlay(f *Factory, runF ...func(*PlayOptions) error) *cobra.Command {
	opts := &PlayOptions{Factory: f, Sampler: play.DefaultSampler()}
	cmd := &cobra.Command{
		Use:   "play --white NET --black NET -o games.pgn",
		Short: "Play games between two networks (or a network and itself) and report the match result",
		Long: `Play --games games between the --white and --black networks, each choosing its move from its own
heads (no search), many games advanced together: every ply is one batched run per network over its
live games. Game i starts from opening i/2 (cycled) with the --white network as white when i is
even and as black when it is odd, so each opening is played with both colours. Openings come from
a FEN/EPD list or a PGN (played to its end or --book-plies plies); without --openings every game
starts from the standard position. Games end by checkmate, stalemate, insufficient material,
threefold repetition, the 50-move rule, or are drawn after --max-plies plies of the networks.

Samplers (--sampler, both sides): argmax (the policy's top move), sample (a draw from the policy
at --temperature), utility (lczerolens's ModelSampler, one ply of look-ahead: alpha * the child's
Q for the mover + beta * lc0's moves-left utility + gamma * log p; argmax of the utility, or a
draw from softmax(utility / --temperature) when --temperature is set above 0). Draws are seeded
per game (--seed).

The games go to -o as PGN: standard tags, Opening, PlyCount, Termination, each network move
commented {p=0.41 v=0.12} (its policy probability, and the value of the position before it for the
mover). The result table (wins, draws, losses, score per network, the Elo difference of --white
over --black with its 95% interval) goes to stdout.`,
		Example: `  lczerolens play --white maia-1900.onnx --black maia-1100.onnx --openings openings.epd -o games.pgn
  lczerolens play --white maia-1900.onnx --black maia-1900.onnx --sampler sample --temperature 0.7 \
    --games 20 --seed 3 -o self.pgn
  lczerolens play --white a.pb.gz --black b.pb.gz --openings book.pgn --book-plies 8 --max-plies 300 \
    --sampler utility --alpha 1 --beta 1 --gamma 0.5 -o games.pgn`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("temperature") && opts.Sampler.Kind == play.Utility {
				opts.Sampler.Temperature = 0
			}
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runPlay(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.White, "white", "", "network playing white in even games (.onnx, .pb, .pb.gz; required)")
	fl.StringVar(&opts.Black, "black", "", "network playing black in even games (may be the same file; required)")
	fl.IntVar(&opts.Games, "games", 0, "games to play (default: 2 per opening, or 2 from the start position)")
	fl.StringVar(&opts.Openings, "openings", "", "openings: a FEN/EPD list (.fen, .epd, .txt) or a PGN (.pgn)")
	fl.IntVar(&opts.BookPlies, "book-plies", 0, "plies of each PGN opening to play (0 = all of its main line)")
	fl.IntVar(&opts.MaxPlies, "max-plies", 400, "plies the networks may play before the game is drawn (0 = no limit)")
	fl.Uint64Var(&opts.Seed, "seed", 0, "seed of the samplers' draws (each game has its own stream)")
	fl.StringVarP(&opts.Output, "output", "o", "", "PGN file to write (required; - for stdout)")
	fl.BoolVar(&opts.Force, "force", false, "replace an existing output file")
	fl.StringVar(&opts.Event, "event", "lczerolens play", "PGN Event tag")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress output")
	s := &opts.Sampler
	fl.StringVar(&s.Kind, "sampler", s.Kind, "move choice: argmax, sample or utility")
	fl.Float64Var(&s.Temperature, "temperature", s.Temperature, "sample: policy temperature; utility: 0 = argmax, above 0 = draw")
	fl.Float64Var(&s.Alpha, "alpha", s.Alpha, "utility: weight of the child's Q for the mover")
	fl.Float64Var(&s.Beta, "beta", s.Beta, "utility: weight of lc0's moves-left utility")
	fl.Float64Var(&s.Gamma, "gamma", s.Gamma, "utility: weight of log p")
	fl.Float64Var(&s.DrawScore, "draw-score", s.DrawScore, "utility: a draw's worth in Q")
	fl.Float64Var(&s.MMax, "m-max", s.MMax, "utility: bound of the moves-left term before scaling")
	fl.Float64Var(&s.MSlope, "m-slope", s.MSlope, "utility: moves-left utility per move of difference")
	fl.Float64Var(&s.K0, "k0", s.K0, "utility: moves-left scale k0 + k1 s + k2 s^2")
	fl.Float64Var(&s.K1, "k1", s.K1, "utility: see --k0")
	fl.Float64Var(&s.K2, "k2", s.K2, "utility: see --k0")
	fl.Float64Var(&s.QThreshold, "q-threshold", s.QThreshold, "utility: |Q| above which the moves-left term acts")
	streamEncodingFlags(fl)
	return cmd
}

func runPlay(opts *PlayOptions) error {
	f := opts.Factory
	switch {
	case opts.White == "" || opts.Black == "":
		return usageErrorf("play: --white and --black name the two networks: both are required")
	case opts.Output == "":
		return usageErrorf("play: -o FILE.pgn (or - for stdout) is required")
	case opts.Games < 0:
		return usageErrorf("play: --games %d: want 1 or more", opts.Games)
	case opts.BookPlies < 0:
		return usageErrorf("play: --book-plies %d: want 0 (the whole line) or more", opts.BookPlies)
	case opts.MaxPlies < 0:
		return usageErrorf("play: --max-plies %d: want 0 (no limit) or more", opts.MaxPlies)
	case opts.BookPlies > 0 && !strings.EqualFold(filepath.Ext(opts.Openings), ".pgn"):
		return usageErrorf("play: --book-plies cuts PGN openings: give --openings FILE.pgn")
	}
	if err := opts.Sampler.Validate(); err != nil {
		return inputError(err)
	}
	var openings []play.Opening
	if opts.Openings != "" {
		var err error
		if openings, err = readOpenings(opts.Openings, opts.BookPlies); err != nil {
			return err
		}
	}
	if opts.Games == 0 {
		opts.Games = 2 * max(len(openings), 1)
	}
	if err := checkOutputFile("play", opts.Output, opts.Force); err != nil {
		return err
	}
	var players [2]play.Player
	for i, path := range []string{opts.White, opts.Black} {
		ev, err := policyEvaluator(f, "play", path, ": it cannot choose moves")
		if err != nil {
			return err
		}
		players[i] = play.Player{Name: netName(path), Eval: ev, Sampler: opts.Sampler}
	}
	if players[0].Name == players[1].Name {
		players[0].Name += " (white in game 1)"
		players[1].Name += " (black in game 1)"
	}

	ctx, stop := signalContext()
	defer stop()
	start := time.Now()
	// Progress counts finished games as "positions": the unit the shared reporter knows.
	report, stopProgress := startProgress(f, opts.Quiet, "play (games)", 0)
	progress := func(done int) { report(pipeline.Summary{Positions: done}) }
	recs, err := play.Run(ctx, players, openings, play.Options{Games: opts.Games, MaxPlies: opts.MaxPlies, Seed: opts.Seed}, progress)
	stopProgress()
	if err != nil {
		if interrupted(ctx, err) {
			return &interruptedError{cmd: "play", hint: "no games written; rerun with fewer --games", cause: err}
		}
		return err
	}
	names := [2]string{players[0].Name, players[1].Name}
	h := play.PGNHeader{Event: opts.Event, Date: start.UTC(), Names: names}
	err = writeOutput("play", f.IO.Out, opts.Output, opts.Force, func(w io.Writer) error {
		for _, r := range recs {
			if err := play.WritePGN(w, h, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	out := f.IO.Out
	if opts.Output == "-" {
		out = f.IO.ErrOut
	}
	if err := play.WriteTable(out, names, recs); err != nil {
		return fmt.Errorf("play: write table: %w", err)
	}
	return nil
}

// netName is a network's name in PGN tags and tables: its file name without the extensions.
func netName(path string) string {
	base := filepath.Base(path)
	for _, ext := range []string{".gz", ".pb", ".onnx"} {
		base = strings.TrimSuffix(base, ext)
	}
	return base
}

// readOpenings reads --openings: PGN by extension, else a FEN/EPD list.
func readOpenings(path string, bookPlies int) ([]play.Opening, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, pathError(fmt.Errorf("play: openings: %w", err))
	}
	defer fh.Close()
	ops, err := play.ReadOpenings(fh, strings.EqualFold(filepath.Ext(path), ".pgn"), bookPlies)
	if err != nil {
		return nil, pathError(fmt.Errorf("%w (in %s)", err, path))
	}
	return ops, nil
}
