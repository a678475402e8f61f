package cli

import (
	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/board"
)

// positionFlags are the flags that name one position: --fen or --startpos, then --moves, encoded with
// --history-fill. Shared by encode, predict and analyse.
type positionFlags struct {
	FEN         string
	Startpos    bool
	Moves       string
	HistoryFill string
}

func (p *positionFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&p.FEN, "fen", "", "position as FEN (six fields, or four as in EPD)")
	fl.BoolVar(&p.Startpos, "startpos", false, "start from the initial position (the default when --fen is not given)")
	fl.StringVar(&p.Moves, "moves", "", "moves played from the position, space-separated UCI (e2e4, e1g1 or e1h1) or SAN (Nf3, O-O)")
	fl.String("history-fill", "fen-only", "history planes for games starting from a FEN: fen-only (lc0 default), always, no, current")
	cmd.MarkFlagsMutuallyExclusive("fen", "startpos")
}

// game parses the flags into a game; its errors are the user's input errors.
func (p *positionFlags) game() (*board.Game, error) {
	start := "startpos"
	if p.FEN != "" {
		start = p.FEN
	}
	g, err := board.ParseGame(start, p.Moves)
	if err != nil {
		return nil, inputError(err)
	}
	return g, nil
}

// fill parses the configured history fill.
func fill(cfg *Config) (board.HistoryFill, error) {
	hf, err := board.ParseHistoryFill(cfg.HistoryFill)
	if err != nil {
		return 0, inputError(err)
	}
	return hf, nil
}
