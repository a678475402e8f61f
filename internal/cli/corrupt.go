package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/corrupt"
	"github.com/lczerolens/lczerolens/internal/pipeline"
	"github.com/lczerolens/lczerolens/internal/play"
	"github.com/lczerolens/lczerolens/internal/source"
)

// CorruptOptions are the inputs of `lczerolens corrupt`.
type CorruptOptions struct {
	Factory      *Factory
	Inputs       []string
	InputType    string
	Plies        string
	Sparring     string
	Output       string
	Force        bool
	MaxPositions int
	Quiet        bool
	Thresholds   corrupt.Thresholds
}

// NewCmdCorrupt builds `lczerolens corrupt`. runF replaces the run step in tests of flag parsing.
func NewCmdCorrupt(f *Factory, runF ...func(*CorruptOptions) error) *cobra.Command {
	opts := &CorruptOptions{Factory: f, Thresholds: corrupt.DefaultThresholds()}
	cmd := &cobra.Command{
		Use:   "corrupt INPUT... --model BIG --sparring SMALL -o corrupted.jsonl",
		Short: "Find minimally corrupted positions for activation patching (leela-interp's search)",
		Long: `For every position of INPUT, search a corrupted twin as leela-interp's make_corruptions.py does.
The move kept is a puzzle's first solution move (puzzle CSV), a JSONL record's "move" field, else
the --model network's top move. Candidates are one edit of the board: remove a pawn, add a white
or black pawn on an empty square, or move a non-pawn piece to an empty square; kept are legal
positions (one king a side, no pawn on the back ranks, the side not to move not in check, at most
8 pawns and 16 men a side; castling rights and an en-passant square that no longer fit are
dropped) in which the move is still legal. Both networks read every candidate (without history) in
batched runs; a candidate qualifies when the --sparring network's log-odds of the move drop by
less than --max-sparring-drop, the --model network's W - L drops by more than --min-value-drop and
its probability of the move falls below --max-big-p; the one with the lowest Jensen-Shannon
divergence between the sparring network's policies is chosen, none when that is above --max-jsd.

Each position with a corruption is one JSONL line: fen and moves (the position as read, with its
history), move, corrupt_fen, edit ("remove e4", "add black c5", "g1e2"), scores, the candidate
counts, the record number (and puzzle_id for puzzles). The file is an input of batch --lens
patching as it is.`,
		Example: `  lczerolens corrupt puzzles.csv --model big.pb.gz --sparring maia-1100.onnx -o corrupted.jsonl
  lczerolens batch corrupted.jsonl --model big.pb.gz --lens patching -o patching/
  lczerolens corrupt positions.epd --model maia-2200.onnx --sparring maia-1100.onnx -o c.jsonl`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs = args
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runCorrupt(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Sparring, "sparring", "", "the small network whose view of the position should not change (required)")
	fl.StringVarP(&opts.Output, "output", "o", "", "JSONL file to write (required; - for stdout)")
	fl.BoolVar(&opts.Force, "force", false, "replace an existing output file")
	fl.StringVar(&opts.InputType, "input-type", "", inputTypeHelp)
	fl.StringVar(&opts.Plies, "plies", "all", "positions of each PGN game: all, first:N, last, every:N")
	fl.IntVar(&opts.MaxPositions, "max-positions", 0, "stop after this many positions (0 = all)")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress output")
	th := &opts.Thresholds
	fl.Float64Var(&th.MaxSparringDrop, "max-sparring-drop", th.MaxSparringDrop, "the sparring net's log-odds of the move must drop by less")
	fl.Float64Var(&th.MinValueDrop, "min-value-drop", th.MinValueDrop, "the big net's W - L must drop by more")
	fl.Float64Var(&th.MaxBigP, "max-big-p", th.MaxBigP, "the big net's probability of the move must fall below")
	fl.Float64Var(&th.MaxJSD, "max-jsd", th.MaxJSD, "no corruption when the lowest sparring JSD is above")
	streamEncodingFlags(fl)
	return cmd
}

// corruptJSON is one output line.
type corruptJSON struct {
	FEN        string         `json:"fen"`
	Moves      string         `json:"moves"`
	Move       string         `json:"move"`
	CorruptFEN string         `json:"corrupt_fen"`
	Edit       string         `json:"edit"`
	Scores     corrupt.Scores `json:"scores"`
	Candidates int            `json:"candidates"`
	Passing    int            `json:"passing"`
	Record     int            `json:"record"`
	Ply        int            `json:"ply"`
	PuzzleID   string         `json:"puzzle_id,omitempty"`
}

func runCorrupt(opts *CorruptOptions) error {
	f := opts.Factory
	if opts.Sparring == "" {
		return usageErrorf("corrupt: --sparring NET (the small network) is required")
	}
	if opts.Output == "" {
		return usageErrorf("corrupt: -o FILE.jsonl (or - for stdout) is required")
	}
	if opts.MaxPositions < 0 {
		return usageErrorf("corrupt: --max-positions %d: want 0 (all) or more", opts.MaxPositions)
	}
	plies, err := source.ParsePlies(opts.Plies)
	if err != nil {
		return inputError(err)
	}
	if err := checkOutputFile("corrupt", opts.Output, opts.Force); err != nil {
		return err
	}
	in, err := openInputs("corrupt", opts.Inputs, opts.InputType, f.IO.In)
	if err != nil {
		return err
	}
	defer in.Close()
	var evs [2]play.Evaluator
	for i, path := range []string{f.Config().Model, opts.Sparring} {
		ev, err := policyEvaluator(f, "corrupt", path, "")
		if err != nil {
			return err
		}
		evs[i] = ev
	}

	ctx, stop := signalContext()
	defer stop()
	// Each position costs hundreds of network reads: report positions, not input bytes.
	report, stopProgress := startProgress(f, opts.Quiet, "corrupt", 0)
	var out []corruptJSON
	positions, bad := 0, 0
	errLimit := errors.New("limit")
	item := func(it *source.Item) error {
		if opts.MaxPositions > 0 && positions >= opts.MaxPositions {
			return errLimit
		}
		positions++
		var move *board.Move
		switch {
		case it.Puzzle != nil:
			move = it.Next
		case it.Fields != nil && len(it.Fields["move"]) > 0:
			var s string
			if err := json.Unmarshal(it.Fields["move"], &s); err != nil {
				return inputError(fmt.Errorf("corrupt: record %d: move: want a string", it.Record))
			}
			m, err := it.History.Current().ParseMove(s)
			if err != nil {
				return inputError(fmt.Errorf("corrupt: record %d: move %q: %w", it.Record, s, err))
			}
			move = &m
		}
		g := it.History.Clone()
		res, err := corrupt.Search(ctx, evs[0], evs[1], g, move, opts.Thresholds)
		if err != nil {
			return err
		}
		report(pipeline.Summary{Positions: positions, Bad: bad})
		if res.Best == nil {
			return nil
		}
		var hist []string
		for _, m := range g.Moves() {
			hist = append(hist, m.UCI())
		}
		rec := corruptJSON{FEN: g.Start().FEN(), Moves: strings.Join(hist, " "), Move: res.Move.UCI(), CorruptFEN: res.Best.Pos.FEN(),
			Edit: res.Best.Edit, Scores: res.Scores, Candidates: res.Candidates, Passing: res.Passing, Record: it.Record, Ply: it.Ply}
		if it.Puzzle != nil {
			rec.PuzzleID = it.Puzzle.ID
		}
		out = append(out, rec)
		return nil
	}
	offset := 0
	for _, part := range in.parts {
		offset, err = source.Walk(part.R, part.Name, in.typ, source.Options{Plies: plies, Offset: offset}, item,
			func(*source.Bad) error { bad++; return nil })
		if errors.Is(err, errLimit) {
			break
		}
		if err != nil {
			stopProgress()
			if interrupted(ctx, err) {
				return &interruptedError{cmd: "corrupt", positions: positions, hint: "nothing written; rerun (with --max-positions for fewer)", cause: err}
			}
			return err
		}
	}
	stopProgress()
	if positions == 0 {
		return inputError(fmt.Errorf("corrupt: no position in %s (%d bad records)", in.name(), bad))
	}
	err = writeOutput("corrupt", f.IO.Out, opts.Output, opts.Force, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, r := range out {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "corrupt: %d of %d positions have a corruption (%.1f%%); %d bad records skipped\n",
		len(out), positions, 100*float64(len(out))/float64(positions), bad)
	return nil
}
