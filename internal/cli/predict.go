package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/board"
)

// PredictOptions are the inputs of `lczerolens predict`.
type PredictOptions struct {
	Factory *Factory
	Pos     positionFlags
	Top     int
	JSON    bool
}

// NewCmdPredict builds `lczerolens predict`. runF replaces the run step in tests of flag parsing.
func NewCmdPredict(f *Factory, runF ...func(*PredictOptions) error) *cobra.Command {
	opts := &PredictOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "predict",
		Short: "Show a network's move probabilities and evaluation for one position",
		Long: `Run the network on one position and print its top moves (probability over the legal moves, and the
raw policy logit), W/D/L when the network has a WDL head, the value q (W - L, or the value head), and the
moves-left estimate when present. With --json, one line:
{"fen","input_encoding","moves":[{"uci","p","logit"}],"wdl":[w,d,l],"value","mlh"}, moves by probability,
castling as e1g1; on a terminal, the position is drawn as a board too; input_encoding says how the position was encoded: input format, canonical transform,
history fill and policy_transpose (how the moves of a transposed board are indexed, --policy-transpose).`,
		Example: `  lczerolens predict --model maia-1100.onnx --startpos
  lczerolens predict --model maia-1100.onnx --startpos --moves "e2e4 c7c5" --top 0 --json
  lczerolens predict --fen "6k1/5ppp/8/8/8/8/5PPP/3R2K1 w - - 0 1"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runPredict(opts)
		},
	}
	opts.Pos.register(cmd)
	cmd.Flags().IntVar(&opts.Top, "top", 5, "moves to list, by probability (0 = all legal moves)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON line")
	return cmd
}

// predictJSON is predict's --json line.
type predictJSON struct {
	FEN           string       `json:"fen"`
	InputEncoding encodingJSON `json:"input_encoding"`
	headsJSON
}

func runPredict(opts *PredictOptions) error {
	f := opts.Factory
	if opts.Top < 0 {
		return usageErrorf("predict: --top %d: want 0 (all legal moves) or more", opts.Top)
	}
	g, err := opts.Pos.game()
	if err != nil {
		return err
	}
	sess, err := f.Session(opts.Pos.InputFormat)
	if err != nil {
		return err
	}
	net, rt, enc := sess.net, sess.rt, sess.enc
	planes := make([]float32, board.NumPlanes*64)
	transform := enc.encode(g, planes)
	h, err := net.Forward(rt, planes, 1)
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	pos := g.Current()
	doc := predictJSON{FEN: pos.FEN(), InputEncoding: enc.json(transform), headsJSON: summarizeHeads(pos, enc.policy(transform), h, 0, opts.Top)}
	if opts.JSON {
		if err := json.NewEncoder(f.IO.Out).Encode(doc); err != nil {
			return fmt.Errorf("predict: write json: %w", err)
		}
		return nil
	}
	if f.IO.StdoutTTY {
		return writeHumanView(f.IO.Out, humanView{Model: net.Path, Pos: pos, Heads: doc.headsJSON, Color: f.IO.Color, Command: "predict"})
	}
	return writePredictText(f.IO.Out, net.Path, doc)
}

func writePredictText(w io.Writer, model string, doc predictJSON) error {
	var b strings.Builder
	fmt.Fprintf(&b, "position  %s\nmodel     %s\n", doc.FEN, model)
	e := doc.InputEncoding
	fmt.Fprintf(&b, "encoding  %s, history fill %s, transform %d, policy transpose %s\n", e.InputFormat, e.HistoryFill, e.Transform, e.PolicyTranspose)
	if len(doc.Moves) == 0 {
		b.WriteString("moves     none (game over)\n")
	} else {
		fmt.Fprintf(&b, "\n%-7s %8s %9s\n", "move", "p", "logit")
		for _, m := range doc.Moves {
			fmt.Fprintf(&b, "%-7s %8.4f %9.4f\n", m.UCI, m.P, m.Logit)
		}
		b.WriteString("\n")
	}
	if doc.WDL != nil {
		fmt.Fprintf(&b, "wdl       %.4f %.4f %.4f\n", doc.WDL[0], doc.WDL[1], doc.WDL[2])
	}
	fmt.Fprintf(&b, "value     %+.4f\n", doc.Value)
	if doc.MLH != nil {
		fmt.Fprintf(&b, "mlh       %.1f\n", *doc.MLH)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("predict: write: %w", err)
	}
	return nil
}
