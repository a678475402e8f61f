package cli

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lczerolens/lczerolens/internal/browsertest"
	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// smallBatch runs batch on a short game with the demo network and two [8,8] lenses.
func smallBatch(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pgn := filepath.Join(dir, "g.pgn")
	if err := os.WriteFile(pgn, []byte("1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 4. Ba4 Nf6 *\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	if code, _, stderr := runCLI(t, env, "batch", pgn, "--lens", "saliency,occlusion", "-o", out, "--quiet"); code != 0 {
		t.Fatalf("batch: exit %d: %s", code, stderr)
	}
	return out
}

// TestReportBrowser is issue 20's acceptance 1: the report of a small batch run opens in a browser with
// its boards drawn, switching the result changes the heatmap (to the values of the chosen NPY file), and the
// page makes no network request and logs no error.
func TestReportBrowser(t *testing.T) {
	browsertest.Chromium(t)
	out := smallBatch(t)
	html := filepath.Join(t.TempDir(), "report.html")
	code, _, stderr := runCLI(t, nil, "report", out, "-o", html, "--limit", "4")
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "4 positions drawn") {
		t.Errorf("report's summary: %q", stderr)
	}
	ctx, log := browsertest.New(t, 60*time.Second)
	url := "file://" + html
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("figure.position svg"))); err != nil {
		t.Fatalf("browser: %v (%v)", err, log.Errors())
	}
	type square struct{ Name, Fill, Title string }
	// The visible board of the third figure (row 2 of 0..8 sampled as 0, 3, 5, 8).
	visible := func() (int, []square) {
		t.Helper()
		idx, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Number(document.querySelectorAll("figure.position")[1].dataset.index)`))
		if err != nil {
			t.Fatal(err)
		}
		sq, err := chromedp.Run(ctx, chromedp.Evaluate[[]square](`[...document.querySelectorAll("figure.position")[1]
			.querySelectorAll(".view:not([hidden]) rect.square")].map(r => ({Name: r.dataset.square, Fill: r.getAttribute("fill"),
			Title: r.querySelector("title").textContent}))`))
		if err != nil {
			t.Fatal(err)
		}
		return idx, sq
	}
	figures, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("figure.position").length`))
	if err != nil || figures != 4 {
		t.Fatalf("%d boards drawn (%v), want 4", figures, err)
	}
	check := func(key string, sq []square, row int) {
		t.Helper()
		f, err := os.Open(filepath.Join(out, key+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, data, err := npy.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(sq) != 64 {
			t.Fatalf("%s: %d squares visible, want one board of 64", key, len(sq))
		}
		for _, s := range sq {
			i := int(s.Name[1]-'1')*8 + int(s.Name[0]-'a')
			want := float64(data[row*64+i])
			fields := strings.Fields(s.Title)
			if len(fields) != 2 {
				t.Fatalf("%s: square %s has no value (%q)", key, s.Name, s.Title)
			}
			got, _ := strconv.ParseFloat(fields[1], 64)
			if math.Abs(got-want) > 1e-3*math.Max(math.Abs(want), 1e-6) {
				t.Errorf("%s row %d square %s: shows %s, the npy holds %g", key, row, s.Name, fields[1], want)
			}
		}
	}
	row, first := visible()
	check("saliency", first, row)
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("select.key"), "heatmap"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("select.key").dispatchEvent(new Event("change"))`)); err != nil {
		t.Fatal(err)
	}
	_, second := visible()
	check("heatmap", second, row)
	same := true
	for i := range first {
		same = same && first[i].Fill == second[i].Fill
	}
	if same {
		t.Error("switching saliency -> heatmap left the board's colours unchanged")
	}
	if errs := log.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
	for _, u := range log.Requests() {
		if u != url {
			t.Errorf("the report requested %s", u)
		}
	}
}

// reportFixture writes a table-like JSONL file that report accepts, for the exit-code table.
func reportFixture(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "rows.jsonl")
	if err := os.WriteFile(p, []byte(`{"id":1,"rating":1200,"solved":true}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
