package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// positionFlags are the flags that name one position: --fen or --startpos, then --moves, encoded with
// --history-fill. Shared by encode, predict and analyse.
type positionFlags struct {
	FEN         string
	Startpos    bool
	Moves       string
	HistoryFill string
	InputFormat string

	flags *pflag.FlagSet
}

func (p *positionFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&p.FEN, "fen", "", "position as FEN (six fields, or four as in EPD)")
	fl.BoolVar(&p.Startpos, "startpos", false, "start from the initial position (the default when --fen is not given)")
	fl.StringVar(&p.Moves, "moves", "", "moves played from the position, space-separated UCI (e2e4, e1g1 or e1h1) or SAN (Nf3, O-O)")
	fl.String("history-fill", "fen-only", "history planes for games starting from a FEN: fen-only (lc0 default), always, no, current")
	fl.StringVar(&p.InputFormat, "input-format", "", inputFormatHelp)
	fl.String("policy-transpose", "planes", policyTransposeHelp)
	mutuallyExclusive(cmd, "fen", "startpos")
	p.flags = fl
}

// inputFormatHelp documents --input-format.
const inputFormatHelp = "lc0 input format: 1|classical, 2|castling-plane, 3|canonical, 4|canonical-hectoplies, 5|canonical-v2 (default: the network's own for lc0 weight files, else classical; ONNX files do not record it)"

// streamEncodingFlags registers the config-bound flags of every command that streams many positions
// through a network: --batch-size, --history-fill and --policy-transpose.
func streamEncodingFlags(fl *pflag.FlagSet) {
	fl.Int("batch-size", 256, "positions per model run")
	fl.String("history-fill", "fen-only", "history planes for games starting from a FEN: fen-only, always, no, current")
	fl.String("policy-transpose", "planes", policyTransposeHelp)
}

// policyTransposeHelp documents --policy-transpose (config key policy_transpose).
const policyTransposeHelp = "policy index of moves in canonical formats 3-5 when the board is transposed (pawnless, no castling rights): planes (moves transposed like the planes, as the networks were trained) or lc0-v0.32 (as lc0 v0.32 and later index them, to match such a build)"

// game parses the flags into a game; its errors are the user's input errors. An empty --fen is refused: it
// is a script's empty variable far more often than a wish for the start position (--startpos says that).
func (p *positionFlags) game() (*board.Game, error) {
	start := "startpos"
	if p.FEN != "" {
		start = p.FEN
	} else if p.flags != nil && p.flags.Changed("fen") {
		return nil, usageErrorf("position: --fen is empty: give a FEN, or --startpos for the initial position")
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

// encoding is how positions become planes: lc0's input format and the history fill; and how the policy of a
// transposed canonical position is indexed.
type encoding struct {
	Format board.InputFormat
	Fill   board.HistoryFill
	Policy board.PolicyTranspose
}

// encode writes g's planes and returns the canonical transform applied (0 for formats 1 and 2).
func (e encoding) encode(g *board.Game, dst []float32) int {
	return g.EncodeFormat(e.Format, e.Fill, dst)
}

// policy returns a transform from encode as the board package's policy functions take it under e.Policy.
func (e encoding) policy(transform int) int { return e.Policy.Apply(transform) }

// json describes the encoding of one position with canonical transform t for output envelopes.
func (e encoding) json(t int) encodingJSON {
	return encodingJSON{Planes: board.NumPlanes, InputFormat: e.Format.String(), Transform: t, HistoryFill: e.Fill.String(), PolicyTranspose: e.Policy.String()}
}

// resolveEncoding picks the input format: the network's own (read from an lc0 weight file) or --input-format,
// else classical. A flag that contradicts the network is refused rather than producing garbage.
func resolveEncoding(cfg *Config, flag string, net *model.Network) (encoding, error) {
	hf, err := fill(cfg)
	if err != nil {
		return encoding{}, err
	}
	pt, err := board.ParsePolicyTranspose(cfg.PolicyTranspose)
	if err != nil {
		return encoding{}, inputError(err)
	}
	format := board.InputClassical
	if flag != "" {
		if format, err = board.ParseInputFormat(flag); err != nil {
			return encoding{}, inputError(err)
		}
	}
	if net != nil && net.InputFormat != 0 {
		own := board.InputFormat(net.InputFormat)
		if !own.Valid() {
			return encoding{}, inputError(fmt.Errorf("model %s: lc0 input format %d is not supported (supported: 1-5)", net.Path, net.InputFormat))
		}
		if flag != "" && format != own {
			return encoding{}, usageErrorf("input format: --input-format %s contradicts %s, whose weights say %s", format, net.Path, own)
		}
		format = own
	}
	return encoding{Format: format, Fill: hf, Policy: pt}, nil
}
