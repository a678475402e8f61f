package cli

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/demonet"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// viewFEN has one piece besides the kings, so that its saliency is a single square (d2) whose value has a
// closed form on the demo network.
const viewFEN = "4k3/8/8/8/8/8/3Q4/4K3 w - - 0 1"

// closedSaliency is the demo network's grad-x-input saliency of W - L at sq, summed over the current
// position's 12 piece planes (white to move: the planes' frame is the absolute one).
func closedSaliency(t *testing.T, fen string, sq int) float64 {
	t.Helper()
	pos, err := board.ParseFEN(fen)
	if err != nil {
		t.Fatal(err)
	}
	planes := make([]float32, board.NumPlanes*64)
	board.NewGame(pos).Encode(board.FillFENOnly, planes)
	g := demonet.ForceValueGrad(planes)
	s := 0.0
	for p := range 12 {
		s += g[p*64+sq] * float64(planes[p*64+sq])
	}
	return s
}

var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// parseGrid finds the grid printed under the line starting with title and returns its 64 values, a1
// first, checking the labels: files a-h above and below, ranks 8 to 1 on both sides.
func parseGrid(t *testing.T, text, title string) []float64 {
	t.Helper()
	lines := strings.Split(text, "\n")
	at := -1
	for i, l := range lines {
		if strings.HasPrefix(l, title) {
			at = i
			break
		}
	}
	if at < 0 || at+10 >= len(lines) {
		t.Fatalf("no grid %q in:\n%s", title, text)
	}
	files := "a b c d e f g h"
	if got := strings.Join(strings.Fields(lines[at+1]), " "); got != files {
		t.Errorf("files above the grid %q, want %q", got, files)
	}
	if got := strings.Join(strings.Fields(lines[at+10]), " "); got != files {
		t.Errorf("files below the grid %q, want %q", got, files)
	}
	vals := make([]float64, 64)
	for row := range 8 {
		rank := 8 - row
		f := strings.Fields(lines[at+2+row])
		if len(f) != 10 || f[0] != strconv.Itoa(rank) || f[9] != strconv.Itoa(rank) {
			t.Fatalf("rank %d line %q: want the rank, 8 values, the rank", rank, lines[at+2+row])
		}
		for file := range 8 {
			v, err := strconv.ParseFloat(f[1+file], 64)
			if err != nil {
				v = math.NaN()
			}
			vals[(rank-1)*8+file] = v
		}
	}
	return vals
}

// TestAnalyseTerminalView runs analyse on a pseudo-terminal (util-linux script): it shows a board grid
// with rank and file labels holding the closed-form saliency of d2, coloured (red for a positive value)
// when TERM says the terminal has colour; piped, and on the terminal with --format json, it writes the
// JSON envelope byte for byte as the in-process run with plain streams does.
func TestAnalyseTerminalView(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		testutil.Missing(t, "util-linux script (a pseudo-terminal for the child) is not installed")
	}
	args := []string{"analyse", "--lens", "saliency", "--fen", viewFEN}
	onTerminal := func(term string, extra ...string) string {
		t.Helper()
		quoted := []string{shellQuote(cliProcess(t).Path)}
		for _, a := range append(append([]string(nil), args...), extra...) {
			quoted = append(quoted, shellQuote(a))
		}
		// stderr (the demo network's notice) goes elsewhere: only stdout is the terminal's text here.
		cmd := exec.Command(scriptBin, "-qec", strings.Join(quoted, " ")+" 2>/dev/null", "/dev/null")
		cmd.Env = append(cliProcess(t).Env, "TERM="+term, "NO_COLOR=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("script: %v: %s", err, out)
		}
		return strings.ReplaceAll(string(out), "\r\n", "\n") // the terminal's line discipline
	}

	want := closedSaliency(t, viewFEN, 11) // d2
	raw := onTerminal("xterm-256color")
	text := ansiEscape.ReplaceAllString(raw, "")
	for _, s := range []string{"position  " + viewFEN, "white to move", "W/D/L", "side to move's view", "input_grad [112,8,8]", "--format json"} {
		if !strings.Contains(text, s) {
			t.Errorf("terminal view lacks %q:\n%s", s, text)
		}
	}
	vals := parseGrid(t, text, "saliency [8,8]")
	if math.Abs(vals[11]-want) > 1e-3 {
		t.Errorf("d2 = %g on the terminal, closed form %g", vals[11], want)
	}
	for sq, v := range vals {
		if sq != 11 && v != 0 {
			t.Errorf("%s = %g, want 0 (no piece but the kings, whose value is 0)", board.Square(sq), v)
		}
	}
	// The d2 cell's background is red (positive), the others near white.
	d2 := regexp.MustCompile(`48;2;(\d+);(\d+);(\d+)m\s*\+0\.4`).FindStringSubmatch(raw)
	if d2 == nil {
		t.Fatalf("no coloured d2 cell in %q", raw)
	}
	r, _ := strconv.Atoi(d2[1])
	b, _ := strconv.Atoi(d2[3])
	if r <= b+50 {
		t.Errorf("d2 background rgb(%s,%s,%s): want red for a positive value", d2[1], d2[2], d2[3])
	}
	if plain := onTerminal("dumb"); strings.Contains(plain, "\x1b[") {
		t.Errorf("TERM=dumb still gets colour escapes")
	}

	// Piped, and --format json on the terminal: the envelope as the plain in-process run writes it.
	code, inProcess, stderr := runCLI(t, map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}, args...)
	if code != 0 {
		t.Fatalf("in-process analyse: %d %s", code, stderr)
	}
	var piped bytes.Buffer
	cmd := cliProcess(t, args...)
	cmd.Stdout = &piped
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if piped.String() != inProcess {
		t.Errorf("piped output differs from the JSON envelope:\n%.300s\nwant\n%.300s", piped.String(), inProcess)
	}
	if got := onTerminal("xterm-256color", "--format", "json"); got != inProcess {
		t.Errorf("--format json on a terminal differs from the JSON envelope:\n%.300s", got)
	}
	var env struct {
		Format  string `json:"format"`
		Results struct {
			Saliency struct {
				Data [][]float64 `json:"data"`
			} `json:"saliency"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(inProcess), &env); err != nil || env.Format != "lczerolens-analysis" {
		t.Fatalf("envelope: %v %q", err, env.Format)
	}
	if got := env.Results.Saliency.Data[1][3]; math.Abs(got-want) > 1e-5 {
		t.Errorf("JSON d2 = %g, closed form %g", got, want)
	}
}

// TestPredictTerminalView runs predict in process with stdout marked a terminal: the board is drawn from
// the FEN (rank 8 first, files a-h), and W/D/L is the closed form, said to be from the side to move's view.
func TestPredictTerminalView(t *testing.T) {
	setEnv(t, map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)})
	const fen = "4k3/8/8/8/8/8/3Q4/4K3 b - - 0 1"
	streams, _, out, errOut := TestIO()
	streams.StdoutTTY = true
	if code := Run([]string{"predict", "--fen", fen}, streams); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	text := out.String()
	for _, s := range []string{" 8  . . . . k . . .", " 2  . . . Q . . . .", "    a b c d e f g h", "black to move", "(from the side to move's view: black)"} {
		if !strings.Contains(text, s) {
			t.Errorf("predict view lacks %q:\n%s", s, text)
		}
	}
	pos, _ := board.ParseFEN(fen)
	planes := make([]float32, board.NumPlanes*64)
	board.NewGame(pos).Encode(board.FillFENOnly, planes)
	w, d, l := demonet.Value(planes)
	m := regexp.MustCompile(`W/D/L\s+([0-9.]+) / ([0-9.]+) / ([0-9.]+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no W/D/L line:\n%s", text)
	}
	for i, want := range []float64{w, d, l} {
		if got, _ := strconv.ParseFloat(m[1+i], 64); math.Abs(got-want) > 6e-4 {
			t.Errorf("W/D/L[%d] = %g, closed form %g (black to move: black's view)", i, got, want)
		}
	}
}

// TestAnalyseSVGSaysWhatItShows: analyse --svg of occlusion on the demo network titles the picture with the
// lens and captions it with the target, the model and the FEN, and marks the kings' squares, which
// occlusion never edits, as having no value rather than colouring their 0 as "no effect".
func TestAnalyseSVGSaysWhatItShows(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "o.svg")
	code, _, stderr := runCLI(t, map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}, "analyse", "--lens", "occlusion", "--fen", viewFEN, "--svg", svg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	doc, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, s := range []string{`class="title"`, "lens occlusion", "target=value", "model " + model.DemoName, "FEN " + viewFEN} {
		if !strings.Contains(text, s) {
			t.Errorf("picture lacks %q", s)
		}
	}
	novalue := regexp.MustCompile(`data-square="(\w\d)" data-novalue="true"`).FindAllStringSubmatch(text, -1)
	var got []string
	for _, m := range novalue {
		got = append(got, m[1])
	}
	if strings.Join(got, ",") != "e1,e8" {
		t.Errorf("squares without a value %v, want the kings' e1,e8", got)
	}
}
