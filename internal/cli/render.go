package cli

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/render"
	"github.com/lczerolens/lczerolens/internal/store"
)

// RenderOptions are the inputs of `lczerolens render`.
type RenderOptions struct {
	IO          *IOStreams
	From        string // output directory of analyse/batch
	Key         string
	NPY         string // or a bare NPY file
	Row         int
	FEN         string
	FENGiven    bool // --fen was given: an empty one is refused rather than taken as "no pieces"
	Output      string
	Orientation string
	Arrows      []string
	Colormap    string
	Title       string
	Force       bool
}

// NewCmdRender builds `lczerolens render`. runF replaces the run step in tests of flag parsing.
func NewCmdRender(f *Factory, runF ...func(*RenderOptions) error) *cobra.Command {
	opts := &RenderOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Draw an [8,8] result (saliency, heatmap) on a chess board as SVG",
		Long: `Draw one position's [8,8] result (a saliency, LRP or occlusion heatmap; a1 first, absolute orientation)
as an SVG picture: the squares coloured by value (a diverging colour map centred at 0 by default), the
pieces, a colour bar with its range, and optional arrows.

The map is row --row of result KEY in an output directory of "analyse --format npy" or "batch" (KEY.npy, or
results.jsonl for --format json), or of a bare NPY file (--npy). The pieces come from --fen, else from row
--row of the directory's positions.jsonl; a bare NPY file without --fen draws no pieces.`,
		Example: `  lczerolens analyse --lens saliency --startpos --format npy -o out/ && lczerolens render --from out/ --key saliency -o board.svg
  lczerolens render --from sal/ --key heatmap --row 12 --arrows e2e4,g1f3 --orientation side-to-move -o pos12.svg
  lczerolens render --npy heat.npy --fen "8/8/8/4k3/8/8/4P3/4K3 w - - 0 1" -o heat.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.FENGiven = cmd.Flags().Changed("fen")
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runRender(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.From, "from", "", "output directory of analyse (--format npy) or batch")
	fl.StringVar(&opts.Key, "key", "", "result key to draw (with --from), e.g. saliency or heatmap")
	fl.StringVar(&opts.NPY, "npy", "", "NPY file holding an [8,8] map or rows of them (instead of --from)")
	fl.IntVar(&opts.Row, "row", 0, "row (position) to draw, 0-based")
	fl.StringVar(&opts.FEN, "fen", "", "position whose pieces to draw (default: the row's FEN from positions.jsonl)")
	fl.StringVarP(&opts.Output, "output", "o", "", "SVG file to write (default stdout)")
	fl.StringVar(&opts.Orientation, "orientation", "white", "side at the bottom: white, black or side-to-move")
	fl.StringSliceVar(&opts.Arrows, "arrows", nil, "moves to draw as arrows, UCI, comma-separated (e.g. e2e4,g1f3)")
	fl.StringVar(&opts.Colormap, "colormap", string(render.Diverging), "colour map: diverging (centred at 0) or sequential (min to max)")
	fl.StringVar(&opts.Title, "title", "", "title above the board (default: the key and row)")
	fl.BoolVar(&opts.Force, "force", false, "replace an existing output file")
	return cmd
}

func runRender(opts *RenderOptions) (err error) {
	switch {
	case (opts.From == "") == (opts.NPY == ""):
		return usageErrorf("render: give either --from DIR (with --key) or --npy FILE")
	case opts.From != "" && opts.Key == "":
		return usageErrorf("render: --from needs --key (the result to draw, e.g. saliency or heatmap)")
	case opts.FENGiven && opts.FEN == "":
		// A script's empty variable, not a wish for a board without pieces (leave --fen out for that).
		return usageErrorf("render: --fen is empty: give a FEN, or leave --fen out to draw the row's position")
	case opts.Row < 0:
		return usageErrorf("render: --row %d: want a row number >= 0", opts.Row)
	case opts.Colormap != string(render.Diverging) && opts.Colormap != string(render.Sequential):
		return usageErrorf("render: --colormap %q: want %s", opts.Colormap, strings.Join(render.Colormaps(), " or "))
	}
	if err := checkOutputFile("render", opts.Output, opts.Force); err != nil {
		return err
	}
	var heat []float32
	if opts.From != "" {
		heat, err = dirRow(opts.From, opts.Key, opts.Row)
	} else {
		heat, err = npyRow(opts.NPY, opts.Row)
	}
	if err != nil {
		return err
	}
	fen := opts.FEN
	if fen == "" && opts.From != "" {
		if fen, err = rowFEN(opts.From, opts.Row); err != nil {
			return err
		}
	}
	var pos *board.Position
	if fen != "" {
		if pos, err = board.ParseFEN(fen); err != nil {
			return inputError(fmt.Errorf("render: %w", err))
		}
	}
	ro := render.Options{Heat: heat, Position: pos, Colormap: render.Colormap(opts.Colormap), Title: opts.Title}
	if ro.BlackBottom, err = blackBottom(opts.Orientation, pos); err != nil {
		return err
	}
	if ro.Arrows, err = parseArrows(opts.Arrows); err != nil {
		return err
	}
	if ro.Title == "" {
		src := opts.Key
		if opts.NPY != "" {
			src = filepath.Base(opts.NPY)
		}
		ro.Title = fmt.Sprintf("%s, row %d", src, opts.Row)
	}
	return writeSVG(opts.IO, opts.Output, opts.Force, ro)
}

// writeSVG writes a picture to path (see writeOutput), or to the command's output for "" and "-".
func writeSVG(streams *IOStreams, path string, force bool, o render.Options) error {
	return writeOutput("render", streams.Out, path, force, func(w io.Writer) error { return render.SVG(w, o) })
}

func blackBottom(orientation string, pos *board.Position) (bool, error) {
	switch orientation {
	case "white":
		return false, nil
	case "black":
		return true, nil
	case "side-to-move":
		return pos != nil && pos.SideToMove() == board.Black, nil
	}
	return false, usageErrorf("render: --orientation %q: want white, black or side-to-move", orientation)
}

func parseArrows(moves []string) ([]board.Move, error) {
	var out []board.Move
	for _, s := range moves {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if len(s) < 4 || len(s) > 5 {
			return nil, usageErrorf("render: arrow %q: want a UCI move such as e2e4", s)
		}
		from, err1 := board.ParseSquare(s[:2])
		to, err2 := board.ParseSquare(s[2:4])
		if err := errors.Join(err1, err2); err != nil {
			return nil, usageErrorf("render: arrow %q: %v", s, err)
		}
		out = append(out, board.Move{From: from, To: to})
	}
	return out, nil
}

// dirRow reads row i of result key from an output directory, where its manifest says the key is (KEY.npy,
// or results.jsonl for --format json). A directory without a manifest (assembled by hand) is searched for
// KEY.npy, then results.jsonl.
func dirRow(dir, key string, i int) ([]float32, error) {
	m, err := store.ReadManifest(dir)
	switch {
	case err == nil:
		k, ok := m.Key(key)
		if !ok {
			names := make([]string, len(m.Keys))
			for j, k := range m.Keys {
				names[j] = k.Key
			}
			return nil, inputError(fmt.Errorf("render: %s has no result %q (it has %s)", dir, key, strings.Join(names, ", ")))
		}
		if len(k.Shape) != 2 || k.Shape[0] != 8 || k.Shape[1] != 8 {
			return nil, inputError(fmt.Errorf("render: result %q has shape %v, want [8,8] (a heatmap: saliency, heatmap)", key, k.Shape))
		}
		if i >= m.Count {
			return nil, inputError(fmt.Errorf("render: --row %d: %s has %d rows", i, dir, m.Count))
		}
		if m.Storage == store.FormatJSON {
			return jsonRow(filepath.Join(dir, k.File), key, i)
		}
		return npyRow(filepath.Join(dir, k.File), i)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, inputError(fmt.Errorf("render: %w", err))
	}
	path := filepath.Join(dir, store.KeyFileName(key))
	if _, err := os.Stat(path); err == nil {
		return npyRow(path, i)
	}
	jl := filepath.Join(dir, store.ResultsFile)
	if _, err := os.Stat(jl); err != nil {
		return nil, inputError(fmt.Errorf("render: %s has neither %s nor results.jsonl (is it an output of analyse --format npy or batch, and is %q one of its keys?)", dir, store.KeyFileName(key), key))
	}
	return jsonRow(jl, key, i)
}

// jsonRow reads row i of result key from a results.jsonl file.
func jsonRow(jl, key string, i int) ([]float32, error) {
	f, err := os.Open(jl)
	if err != nil {
		return nil, inputError(fmt.Errorf("render: %w", err))
	}
	defer f.Close()
	line, err := nthLine(f, i)
	if err != nil {
		return nil, pathError(fmt.Errorf("render: %s: %w", jl, err))
	}
	var rec struct {
		Results map[string]struct {
			Shape []int `json:"shape"`
			Data  any   `json:"data"`
		} `json:"results"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return nil, inputError(fmt.Errorf("render: %s line %d: %w", jl, i+1, err))
	}
	r, ok := rec.Results[key]
	if !ok {
		var keys []string
		for k := range rec.Results {
			keys = append(keys, k)
		}
		return nil, inputError(fmt.Errorf("render: %s line %d has no result %q (it has %s)", jl, i+1, key, strings.Join(keys, ", ")))
	}
	var vals []float32
	if err := flattenJSON(r.Data, &vals); err != nil {
		return nil, inputError(fmt.Errorf("render: %s line %d, %q: %w", jl, i+1, key, err))
	}
	if len(vals) != 64 {
		return nil, inputError(fmt.Errorf("render: result %q has shape %v, want [8,8] (a heatmap: saliency, heatmap)", key, r.Shape))
	}
	return vals, nil
}

// flattenJSON appends the numbers of nested JSON arrays, reading the store's "NaN"/"Infinity" strings.
func flattenJSON(v any, dst *[]float32) error {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if err := flattenJSON(e, dst); err != nil {
				return err
			}
		}
	case float64:
		*dst = append(*dst, float32(x))
	case string:
		switch x {
		case "NaN":
			*dst = append(*dst, float32(math.NaN()))
		case "Infinity":
			*dst = append(*dst, float32(math.Inf(1)))
		case "-Infinity":
			*dst = append(*dst, float32(math.Inf(-1)))
		default:
			return fmt.Errorf("unexpected string %q in data", x)
		}
	default:
		return fmt.Errorf("unexpected %T in data", v)
	}
	return nil
}

// npyRow reads map i of an NPY file: the whole file when it holds 64 values (row 0), else row i of
// [rows, 8, 8] or [rows, 64]. Only the header and that row are read.
func npyRow(path string, i int) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, pathError(fmt.Errorf("render: %w", err))
	}
	defer f.Close()
	shape, off, err := npy.ReadHeader(f)
	if err != nil {
		return nil, pathError(fmt.Errorf("render: %s: %w", path, err))
	}
	total := 1
	for _, d := range shape {
		total *= d
	}
	rows := 1
	if total != 64 {
		if len(shape) == 0 || shape[0] == 0 || total/shape[0] != 64 {
			return nil, inputError(fmt.Errorf("render: %s has shape %v, want [8,8] maps (a heatmap: saliency, heatmap)", path, shape))
		}
		rows = shape[0]
	}
	if i >= rows {
		return nil, inputError(fmt.Errorf("render: --row %d: %s has %d rows", i, path, rows))
	}
	if _, err := f.Seek(off+int64(i)*64*4, io.SeekStart); err != nil {
		return nil, fmt.Errorf("render: %s: %w", path, err)
	}
	var buf [64 * 4]byte
	if _, err := io.ReadFull(f, buf[:]); err != nil {
		return nil, pathError(fmt.Errorf("render: %s: row %d: %w", path, i, err))
	}
	out := make([]float32, 64)
	for k := range out {
		out[k] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*k:]))
	}
	return out, nil
}

// rowFEN reads the FEN of row i of an output directory's positions.jsonl.
func rowFEN(dir string, i int) (string, error) {
	path := filepath.Join(dir, "positions.jsonl")
	f, err := os.Open(path)
	if err != nil {
		return "", pathError(fmt.Errorf("render: %w (or pass --fen)", err))
	}
	defer f.Close()
	line, err := nthLine(f, i)
	if err != nil {
		return "", pathError(fmt.Errorf("render: %s: %w", path, err))
	}
	var rec struct {
		FEN string `json:"fen"`
	}
	if err := json.Unmarshal(line, &rec); err != nil || rec.FEN == "" {
		return "", inputError(fmt.Errorf("render: %s line %d: no fen", path, i+1))
	}
	return rec.FEN, nil
}

// nthLine returns line i (0-based) of r.
func nthLine(r io.Reader, i int) ([]byte, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for n := 0; sc.Scan(); n++ {
		if n == i {
			return sc.Bytes(), nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no line %d (row %d)", i+1, i)
}
