package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
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
	// Index chooses the board of a result with more than a board: the flag given (--channel, --plane,
	// --module or --head) and its value (an index, a range 0-7, a list; modules also by name).
	IndexFlag, Index string
	Query            string // the query square of attention weights [..,64,64]
	Grid             bool   // every index of the chosen axis, one board each
	Columns          int
}

// NewCmdRender builds `lczerolens render`. runF replaces the run step in tests of flag parsing.
func NewCmdRender(f *Factory, runF ...func(*RenderOptions) error) *cobra.Command {
	opts := &RenderOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Draw a result with a board axis (heatmap, activation, gradient, patching) on a board as SVG",
		Long: `Draw one position's result on a chess board as an SVG picture: the squares coloured by value (a
diverging colour map centred at 0 by default), the pieces, a colour bar with its range, optional arrows, and
a title and caption saying what it shows (lens, options, model, FEN).

The result is row --row of result KEY in an output directory of "analyse --format npy" or "batch" (KEY.npy,
or results.jsonl for --format json), or of a bare NPY file (--npy). The pieces come from --fen, else from
row --row of the directory's positions.jsonl; a bare NPY file without --fen draws no pieces.

An [8,8] result (saliency, LRP or occlusion heatmap) is drawn as it is. A result with more axes needs one
board chosen: a channel of an activation [C,8,8] or [64,C] (--channel), a plane of an input gradient
[112,8,8] (--plane), a module row of per-square patching [modules,64] (--module, by index or name), a head
and query square of attention weights [heads,64,64] (--head, --query). An index may be a range (0-7) or a
list (1,5,9); several boards, or --grid for every index, make one picture with a shared colour bar, as do
several keys (--key a,b). Tensors in the network's frame (activations, gradients) are mapped to the board.`,
		Example: `  lczerolens analyse --lens saliency --startpos --format npy -o out/
  lczerolens render --from out/ --key saliency -o board.svg
  lczerolens render --from sal/ --key heatmap --row 12 --arrows e2e4,g1f3 --orientation side-to-move -o pos12.svg
  lczerolens render --from act/ --key block5/conv2/relu_output --channel 0-7 -o channels.svg
  lczerolens render --from act/ --key input_grad --plane 0 -o pawns.svg
  lczerolens render --from patch/ --key effects --grid -o modules.svg
  lczerolens render --npy heat.npy --fen "8/8/8/4k3/8/8/4P3/4K3 w - - 0 1" -o heat.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.FENGiven = cmd.Flags().Changed("fen")
			for _, name := range []string{"channel", "plane", "module", "head"} {
				if cmd.Flags().Changed(name) {
					if opts.IndexFlag != "" {
						return usageErrorf("render: --%s and --%s both choose the board's index: give one", opts.IndexFlag, name)
					}
					opts.IndexFlag, opts.Index = name, cmd.Flags().Lookup(name).Value.String()
				}
			}
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
	fl.String("channel", "", "channel of an activation [C,8,8] or [64,C]: an index, a range (0-7) or a list")
	fl.String("plane", "", "plane of an input gradient or relevance [112,8,8]: an index, a range or a list")
	fl.String("module", "", "module row of per-square patching [modules,64]: an index, a range, a list, or names")
	fl.String("head", "", "head of attention weights [heads,64,64]: an index, a range or a list (with --query)")
	fl.StringVar(&opts.Query, "query", "", "query square of attention weights [..,64,64], e.g. e4: its row is drawn")
	fl.BoolVar(&opts.Grid, "grid", false, "draw every index of the chosen axis, one board each, in one picture")
	fl.IntVar(&opts.Columns, "columns", 0, "boards per row of a grid (0 = up to 4, or 8 for more than 16 boards)")
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
	case opts.Columns < 0:
		return usageErrorf("render: --columns %d: want 0 (automatic) or more", opts.Columns)
	}
	if err := checkOutputFile("render", opts.Output, opts.Force); err != nil {
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
	var info dirInfo
	if opts.From != "" {
		info = readDirInfo(opts.From)
	}
	keys := []string{opts.Key}
	if opts.From != "" {
		keys = splitList(opts.Key)
	}
	var boards []render.Options
	var notes []string
	short, common := shortKeys(keys)
	for ki, key := range keys {
		bs, note, err := opts.boards(key, info, pos)
		if err != nil {
			return err
		}
		for i := range bs {
			if key == "heatmap" && slices.Contains(strings.Split(info.lens, ","), "occlusion") {
				bs[i].NoValue = lens.OcclusionKings(pos) // never edited: no value, not "no effect"
			}
			if len(keys) > 1 { // several keys: each board says which
				bs[i].Label = strings.TrimSpace(short[ki] + " " + bs[i].Label)
			}
		}
		boards = append(boards, bs...)
		if note != "" && !slices.Contains(notes, note) {
			notes = append(notes, note)
		}
	}
	if len(boards) > maxBoards {
		return usageErrorf("render: %d boards: at most %d in one picture (choose indices, e.g. --channel 0-15)", len(boards), maxBoards)
	}
	bottom, err := blackBottom(opts.Orientation, pos)
	if err != nil {
		return err
	}
	arrows, err := parseArrows(opts.Arrows)
	if err != nil {
		return err
	}
	var all []float32
	for i := range boards {
		boards[i].Position, boards[i].BlackBottom, boards[i].Arrows = pos, bottom, arrows
		all = append(all, boards[i].Heat...)
	}
	title := opts.Title
	src := strings.Join(keys, ", ")
	if common != "" {
		src = strings.Join(short, ", ") + ": " + common
	}
	if opts.NPY != "" {
		src = filepath.Base(opts.NPY)
	}
	if title == "" {
		title = fmt.Sprintf("%s, row %d", src, opts.Row)
		if len(boards) == 1 && boards[0].Label != "" {
			title = fmt.Sprintf("%s %s, row %d", src, boards[0].Label, opts.Row)
		}
	}
	_, caption := svgText("", info.lens, info.lensOpts, info.model, fen, all) // the title is the key's, above
	if info.lens != "" {
		caption = append([]string{"lens " + info.lens}, caption...)
	}
	caption = append(caption, notes...)
	g := render.GridOptions{Title: title, Caption: caption, Colormap: render.Colormap(opts.Colormap), Columns: opts.Columns}
	if len(boards) == 1 {
		boards[0].Label = ""
	}
	return writeOutput("render", opts.IO.Out, opts.Output, opts.Force, func(w io.Writer) error { return render.Grid(w, g, boards) })
}

// shortKeys drops the module path that several keys share at the end (encoder0/mha/QK/softmax_attention,
// encoder1/mha/QK/softmax_attention -> encoder0, encoder1), so that board labels fit; common is that part.
func shortKeys(keys []string) (short []string, common string) {
	short = keys
	if len(keys) < 2 {
		return short, ""
	}
	parts := strings.Split(keys[0], "/")
	for n := len(parts) - 1; n >= 1; n-- { // the longest shared tail of whole path elements
		tail := "/" + strings.Join(parts[len(parts)-n:], "/")
		ok := true
		for _, k := range keys {
			if !strings.HasSuffix(k, tail) || len(k) == len(tail) {
				ok = false
				break
			}
		}
		if ok {
			short = make([]string, len(keys))
			for i, k := range keys {
				short[i] = strings.TrimSuffix(k, tail)
			}
			return short, tail[1:]
		}
	}
	return short, ""
}

// maxBoards bounds a grid: more boards than this are too small to read.
const maxBoards = 64

// boards reads result key of the row and returns its boards: one for an [8,8] map, else one per chosen
// index; note says how the tensor's frame was mapped to the board when that is worth saying.
func (opts *RenderOptions) boards(key string, info dirInfo, pos *board.Position) ([]render.Options, string, error) {
	var data []float32
	var shape []int
	var err error
	if opts.From != "" {
		data, shape, err = dirTensor(opts.From, key, opts.Row)
		if err == nil && data == nil { // no manifest: a directory assembled by hand holds [8,8] maps
			data, err = dirRow(opts.From, key, opts.Row)
			shape = []int{8, 8}
		}
	} else {
		data, shape, err = npyTensor(opts.NPY, opts.Row)
	}
	if err != nil {
		return nil, "", err
	}
	return opts.boardsOf(key, data, shape, info, pos)
}

// boardsOf is boards of a tensor already read: data of one position, of the given shape.
func (opts *RenderOptions) boardsOf(key string, data []float32, shape []int, info dirInfo, pos *board.Position) ([]render.Options, string, error) {
	var err error
	axes, ok := findBoardAxes(key, shape)
	if !ok {
		return nil, "", inputError(fmt.Errorf("render: result %q has shape %s: no board axis ([8,8] or 64 squares)", key, shapeString(shape)))
	}
	if len(axes.other) > 1 {
		return nil, "", inputError(fmt.Errorf("render: result %q has shape %s: more axes than a board and one index", key, shapeString(shape)))
	}
	axisName := "channel"
	switch {
	case axes.query >= 0:
		axisName = "head"
	case key == "effects":
		axisName = "module"
	case key == "input_grad" || key == "planes" || strings.HasSuffix(key, "relevance") || (len(axes.other) == 1 && shape[axes.other[0]] == board.NumPlanes):
		axisName = "plane"
	}
	idx := []int{-1}
	if len(axes.other) == 0 && opts.IndexFlag != "" {
		return nil, "", usageErrorf("render: result %q has shape %s, one board: --%s does not apply", key, shapeString(shape), opts.IndexFlag)
	}
	if len(axes.other) == 1 {
		n := shape[axes.other[0]]
		switch {
		case opts.IndexFlag != "":
			if idx, err = indexList(opts.IndexFlag, opts.Index, n, info.modules); err != nil {
				return nil, "", err
			}
		case opts.Grid:
			idx = make([]int, min(n, maxBoards+1))
			for i := range idx {
				idx[i] = i
			}
		default:
			return nil, "", usageErrorf("render: result %q has shape %s: choose a %s with --%s N (0..%d), or --grid for all", key, shapeString(shape), axisName, axisName, n-1)
		}
	}
	// Tensors other than [8,8] maps and per-square patching are in the planes' frame.
	absolute := (len(shape) == 2 && shape[0] == 8 && shape[1] == 8) || key == "effects"
	note := ""
	fm := frameMap(nil, 0)
	if !absolute {
		t := info.transform
		if t < 0 || opts.Row > 0 {
			t = 0
			if f, err := board.ParseInputFormat(info.format); err == nil && pos != nil {
				t = board.Transform(board.NewGame(pos), f)
			} else if info.format == "" {
				note = "input format not recorded: no canonical transform undone"
			}
		}
		fm = frameMap(pos, t)
		if pos == nil {
			note = "no position: drawn in the network's frame (side to move at the bottom)"
		}
	}
	query := 0
	qLabel := ""
	if axes.query >= 0 {
		if opts.Query == "" {
			return nil, "", usageErrorf("render: result %q has shape %s (attention weights): choose a query square with --query SQUARE", key, shapeString(shape))
		}
		sq, err := board.ParseSquare(opts.Query)
		if err != nil {
			return nil, "", usageErrorf("render: --query %q: %v", opts.Query, err)
		}
		query = slices.Index(fm[:], int(sq))
		qLabel = ", query " + sq.String()
	} else if opts.Query != "" {
		return nil, "", usageErrorf("render: --query applies to attention weights [..,64,64], not %q %s", key, shapeString(shape))
	}
	var out []render.Options
	for _, i := range idx {
		vals := axes.pick(data, []int{i}, query)
		if !absolute {
			mapped := make([]float32, 64)
			for p, v := range vals {
				mapped[fm[p]] = v
			}
			vals = mapped
		}
		label := strings.TrimPrefix(qLabel, ", ")
		if i >= 0 {
			name := strconv.Itoa(i)
			if axisName == "module" && i < len(info.modules) {
				name = info.modules[i]
			}
			label = fmt.Sprintf("%s %s%s", axisName, name, qLabel)
		}
		out = append(out, render.Options{Heat: vals, Label: label})
	}
	return out, note, nil
}

// indexList parses an index selector; module names stand for their index in the run's module order.
func indexList(flag, s string, n int, modules []string) ([]int, error) {
	if flag == "module" {
		var out []int
		allNames := true
		for _, part := range strings.Split(s, ",") {
			i := slices.Index(modules, strings.TrimSpace(part))
			if i < 0 {
				allNames = false
				break
			}
			out = append(out, i)
		}
		if allNames {
			return out, nil
		}
	}
	return parseIndexList("--"+flag, s, n)
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
		k, err := manifestKey(dir, m, key)
		if err != nil {
			return nil, err
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

// jsonRow reads row i of result key from a results.jsonl file: a heatmap, [8,8].
func jsonRow(jl, key string, i int) ([]float32, error) {
	vals, shape, err := jsonValues(jl, key, i)
	if err != nil {
		return nil, err
	}
	if len(vals) != 64 {
		return nil, inputError(fmt.Errorf("render: result %q has shape %v, want [8,8] (a heatmap: saliency, heatmap)", key, shape))
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
	f, shape, off, err := openNPY(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
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
	return readRowAt(f, path, off, i, 64)
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
