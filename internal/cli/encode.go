package cli

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/npy"
)

// EncodeOptions are the inputs of `lczerolens encode`.
type EncodeOptions struct {
	IO     *IOStreams
	Config func() *Config
	Pos    positionFlags
	Format string
	Output string
	Force  bool
}

// NewCmdEncode builds `lczerolens encode`. runF replaces the run step in tests of flag parsing.
func NewCmdEncode(f *Factory, runF ...func(*EncodeOptions) error) *cobra.Command {
	opts := &EncodeOptions{IO: f.IO, Config: f.Config}
	cmd := &cobra.Command{
		Use:   "encode",
		Short: "Encode a position into lc0's 112 input planes and list its legal moves",
		Long: `Encode a position (with the moves that led to it) into the 112 input planes of classical lc0
networks, exactly as lc0 feeds them: [plane][rank][file], a1 at [0][0], seen from the side to move (ranks
mirrored for black). Also lists the legal moves with their index in lc0's 1858-move policy. For the
canonical formats 3-5 the JSON says which transform was applied and, with policy_transpose, how the moves
of a transposed board are indexed (--policy-transpose).`,
		Example: `  lczerolens encode --startpos --moves "e2e4 e7e5 g1f3"
  lczerolens encode --fen "8/8/8/8/8/8/8/K6k w - - 0 1" --history-fill no
  lczerolens encode --startpos --format npy -o planes.npy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runEncode(opts)
		},
	}
	opts.Pos.register(cmd)
	cmd.Flags().StringVar(&opts.Format, "format", "json", "output format: json (one line) or npy (float32 [1,112,8,8])")
	// The format key of the configuration is about lens results, not planes.
	_ = cmd.Flags().SetAnnotation("format", annNotConfig, []string{"true"})
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "output file (default stdout)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing output file")
	return cmd
}

// encodedJSON is the one-line JSON document of encode.
type encodedJSON struct {
	FEN         string `json:"fen"`
	InputFormat string `json:"input_format"`
	Transform   int    `json:"transform"`
	HistoryFill string `json:"history_fill"`
	// PolicyTranspose is how the legal moves of a transposed position are indexed: planes or lc0-v0.32.
	PolicyTranspose string          `json:"policy_transpose"`
	Planes          [][][]float32   `json:"planes"`
	Legal           []legalMoveJSON `json:"legal"`
}

type legalMoveJSON struct {
	UCI   string `json:"uci"`
	Index int    `json:"index"`
}

func runEncode(opts *EncodeOptions) (err error) {
	if opts.Format != "json" && opts.Format != "npy" {
		return usageErrorf("encode: format %q: want json or npy", opts.Format)
	}
	if err := checkOutputFile("encode", opts.Output, opts.Force); err != nil {
		return err
	}
	enc, err := resolveEncoding(opts.Config(), opts.Pos.InputFormat, nil)
	if err != nil {
		return err
	}
	g, err := opts.Pos.game()
	if err != nil {
		return err
	}
	planes := make([]float32, board.NumPlanes*64)
	transform := enc.encode(g, planes)

	if opts.Format == "npy" {
		return writeOutput("encode", opts.IO.Out, opts.Output, opts.Force, func(w io.Writer) error {
			return npy.Write(w, []int{1, board.NumPlanes, 8, 8}, planes)
		})
	}
	doc := encodedJSON{FEN: g.Current().FEN(), InputFormat: enc.Format.String(), Transform: transform, HistoryFill: enc.Fill.String(), PolicyTranspose: enc.Policy.String(), Planes: nestPlanes(planes)}
	moves, idx := board.LegalIndicesT(g.Current(), enc.policy(transform))
	doc.Legal = make([]legalMoveJSON, len(moves))
	for i, m := range moves {
		doc.Legal[i] = legalMoveJSON{UCI: m.UCI(), Index: idx[i]}
	}
	return writeOutput("encode", opts.IO.Out, opts.Output, opts.Force, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(doc)
	})
}

// nestPlanes turns [112*64] into [112][8][8] for JSON.
func nestPlanes(flat []float32) [][][]float32 {
	out := make([][][]float32, len(flat)/64)
	for p := range out {
		out[p] = make([][]float32, 8)
		for r := 0; r < 8; r++ {
			out[p][r] = flat[p*64+r*8 : p*64+r*8+8]
		}
	}
	return out
}
