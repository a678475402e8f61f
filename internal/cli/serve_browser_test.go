package cli

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/browsertest"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestServeBrowserSaliency is issue 20's acceptance 2: the page loads, takes a FEN, runs saliency and draws
// its heatmap on the board; the values on the squares are the API's saliency for that position.
func TestServeBrowserSaliency(t *testing.T) {
	browsertest.Chromium(t)
	srv := serveTest(t, "")
	fen := "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR b KQkq - 3 3"
	ctx, log := browsertest.New(t, 60*time.Second)
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)),
		chromedp.SetValue(chromedp.CSS("#input"), fen),
		chromedp.SetValue(chromedp.CSS("#lens"), "saliency"),
		chromedp.Click(chromedp.CSS("#load")),
		chromedp.WaitReady(chromedp.CSS(`#board[data-fen="`+fen+`"] svg rect.square`)),
	)
	if err != nil {
		t.Fatalf("browser: %v (page errors %v)", err, log.Errors())
	}
	type square struct{ Name, Fill, Title string }
	squares, err := chromedp.Run(ctx, chromedp.Evaluate[[]square](`[...document.querySelectorAll("#board rect.square")].map(r => ({Name: r.dataset.square,
			Fill: r.getAttribute("fill"), Title: r.querySelector("title").textContent}))`))
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
	if err != nil {
		t.Fatal(err)
	}
	if len(squares) != 64 {
		t.Fatalf("%d squares drawn, want 64", len(squares))
	}
	if !strings.Contains(status, "analysed") {
		t.Errorf("status %q, want an analysis", status)
	}
	// The same request through the API, read independently of the page.
	code, body := post(t, srv.URL+"/api/analyse", `{"lens":"saliency","fen":"`+fen+`"}`)
	if code != 200 {
		t.Fatalf("api: %d %s", code, body)
	}
	var env struct {
		Results struct {
			Saliency struct{ Data [][]float64 }
		}
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	sal := env.Results.Saliency.Data
	if len(sal) != 8 {
		t.Fatalf("api saliency: %v", sal)
	}
	fills := map[string]bool{}
	for _, s := range squares {
		fills[s.Fill] = true
		sq := int(s.Name[1]-'1')*8 + int(s.Name[0]-'a')
		want := sal[sq/8][sq%8]
		f := strings.Fields(s.Title)
		if len(f) != 2 {
			t.Fatalf("square %s: title %q has no value: no heatmap drawn", s.Name, s.Title)
		}
		got, err := strconv.ParseFloat(f[1], 64)
		if err != nil || math.Abs(got-want) > 1e-3*math.Max(math.Abs(want), 1e-9) {
			t.Errorf("square %s shows %q, the api says %g", s.Name, s.Title, want)
		}
	}
	if len(fills) < 3 {
		t.Errorf("heatmap has %d colours, want a gradient", len(fills))
	}
	if errs := log.Errors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
	for _, u := range log.Requests() {
		if !strings.HasPrefix(u, srv.URL) && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page asked for %s, outside the server", u)
		}
	}
}

// TestServeBrowserAttentionRow: with the attention lens, clicking a square draws that query square's
// attention row (the mean over heads, computed here from the API's answer) on the board.
func TestServeBrowserAttentionRow(t *testing.T) {
	browsertest.Chromium(t)
	net := testutil.Shared(t, "models/synthetic/ab_pemap_classical.onnx")
	srv := serveTest(t, net)
	ctx, log := browsertest.New(t, 60*time.Second)
	start := "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitReady(chromedp.CSS(`#board[data-fen="`+start+`"] svg rect.square`)),
		chromedp.SetValue(chromedp.CSS("#lens"), "attention"),
		chromedp.Click(chromedp.CSS("#analyse")),
		chromedp.WaitReady(chromedp.CSS(`#result option[value="encoder1/mha/QK/softmax_attention"]`)),
		chromedp.SetValue(chromedp.CSS("#result"), "encoder1/mha/QK/softmax_attention"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("result").dispatchEvent(new Event("change"))`),
		chromedp.Click(chromedp.CSS(`#board rect[data-square="g1"]`)),
		chromedp.WaitReady(chromedp.CSS(`#board svg .title`)),
	)
	if err != nil {
		t.Fatalf("browser: %v (%v)", err, log.Errors())
	}
	type square struct{ Name, Title string }
	var squares []square
	for range 50 { // the click's redraw is asynchronous: wait for the board with values
		squares, err = chromedp.Run(ctx, chromedp.Evaluate[[]square](`[...document.querySelectorAll("#board rect.square")].map(r =>
			({Name: r.dataset.square, Title: r.querySelector("title").textContent}))`))
		if err != nil {
			t.Fatal(err)
		}
		if len(squares) == 64 && len(strings.Fields(squares[0].Title)) == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, body := post(t, srv.URL+"/api/analyse", `{"lens":"attention","startpos":true}`)
	if code != 200 {
		t.Fatalf("api: %d %s", code, body)
	}
	var env struct {
		Results map[string]struct{ Data [][][]float64 }
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	att := env.Results["encoder1/mha/QK/softmax_attention"].Data // [head][query][key]
	const g1 = 6
	for _, s := range squares {
		key := int(s.Name[1]-'1')*8 + int(s.Name[0]-'a')
		want := 0.0
		for h := range att {
			want += att[h][g1][key] / float64(len(att))
		}
		f := strings.Fields(s.Title)
		if len(f) != 2 {
			t.Fatalf("square %s: %q: no attention row drawn", s.Name, s.Title)
		}
		got, _ := strconv.ParseFloat(f[1], 64)
		if math.Abs(got-want) > 1e-3*math.Max(want, 1e-6) {
			t.Errorf("key %s: shows %s, the mean attention from g1 is %g", s.Name, f[1], want)
		}
	}
	if errs := log.Errors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}

// TestServeBrowserPGNSteps: a pasted PGN (headers, comments, a variation, numbers, result) loads at its last
// position, and stepping back shows the positions before it, as the board package plays the moves.
func TestServeBrowserPGNSteps(t *testing.T) {
	browsertest.Chromium(t)
	srv := serveTest(t, "")
	ctx, log := browsertest.New(t, 60*time.Second)
	pgn := "[Event \"t\"]\n[Site \"?\"]\n\n1. e4 {best by test} e5 2. Nf3 (2. f4 exf4) Nc6 3. Bb5 a6!? 1-0"
	fen := func(moves string) string {
		g, err := board.ParseGame("startpos", moves)
		if err != nil {
			t.Fatal(err)
		}
		return g.Current().FEN()
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitReady(chromedp.CSS(`#board[data-fen] svg`)),
		chromedp.SetValue(chromedp.CSS("#input"), pgn),
		chromedp.Click(chromedp.CSS("#load")),
		chromedp.WaitReady(chromedp.CSS(`#board[data-fen="`+fen("e4 e5 Nf3 Nc6 Bb5 a6")+`"]`)),
		chromedp.Click(chromedp.CSS("#prev")),
		chromedp.WaitReady(chromedp.CSS(`#board[data-fen="`+fen("e4 e5 Nf3 Nc6 Bb5")+`"]`)),
		chromedp.Click(chromedp.CSS("#first")),
		chromedp.WaitReady(chromedp.CSS(`#board[data-fen="`+fen("")+`"]`)),
		chromedp.Click(chromedp.CSS("#next")),
		chromedp.WaitReady(chromedp.CSS(`#board[data-fen="`+fen("e4")+`"]`)),
	)
	if err != nil {
		t.Fatalf("browser: %v (%v)", err, log.Errors())
	}
	if errs := log.Errors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}
