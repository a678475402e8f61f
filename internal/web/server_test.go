package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

var errBad = errors.New("bad field")

func testServer(t *testing.T, analyse Analyser, o Options) *httptest.Server {
	srv, _ := testServer2(t, analyse, o)
	return srv
}

func testServer2(t *testing.T, analyse Analyser, o Options) (*httptest.Server, *Server) {
	t.Helper()
	o.Analyse = analyse
	o.BadRequest = func(err error) bool { return errors.Is(err, errBad) }
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, s
}

func do(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAnalyseStatus: bodies that are no JSON object, too big, or refused by the analyser are 400 with a
// JSON error; the analyser's own failures 500; a panic 500 without taking the server down.
func TestAnalyseStatus(t *testing.T) {
	srv := testServer(t, func(_ context.Context, f map[string]json.RawMessage) ([]byte, error) {
		switch {
		case f["panic"] != nil:
			panic("boom")
		case f["bad"] != nil:
			return nil, errBad
		case f["fail"] != nil:
			return nil, errors.New("disk on fire")
		}
		return []byte(`{"ok":true}` + "\n"), nil
	}, Options{MaxBody: 100})
	cases := []struct {
		body string
		code int
	}{
		{`{}`, 200}, {`{"x":1}`, 200}, {``, 400}, {`null`, 400}, {`[]`, 400}, {`"s"`, 400}, {`{} {}`, 400},
		{`{"a":"` + strings.Repeat("x", 200) + `"}`, 400}, {`{"bad":1}`, 400}, {`{"fail":1}`, 500}, {`{"panic":1}`, 500}, {`{}`, 200},
	}
	for _, c := range cases {
		code, body := do(t, srv.URL+"/api/analyse", c.body)
		if code != c.code {
			t.Errorf("%.30q: status %d, want %d (%s)", c.body, code, c.code, body)
		}
		var e struct{ Error string }
		if code != 200 && (json.Unmarshal([]byte(body), &e) != nil || e.Error == "") {
			t.Errorf("%.30q: error body %q is no JSON error", c.body, body)
		}
	}
	if resp, err := http.Get(srv.URL + "/api/analyse"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/analyse: %v %v", resp.StatusCode, err)
	}
}

// TestQueueBound: with one slot and one waiting place, a third request at once is answered 503.
func TestQueueBound(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	srv, s := testServer2(t, func(context.Context, map[string]json.RawMessage) ([]byte, error) {
		started <- struct{}{}
		<-release
		return []byte("{}\n"), nil
	}, Options{Concurrency: 1, MaxWaiting: 1})
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); c, _ := do(t, srv.URL+"/api/analyse", `{}`); codes <- c }()
	}
	<-started // one runs; the other waits (or is about to)
	for s.waiting.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	code, _ := do(t, srv.URL+"/api/analyse", `{}`)
	close(release)
	wg.Wait()
	if code != http.StatusServiceUnavailable {
		t.Errorf("third request: %d, want 503", code)
	}
}

// TestBoardSVG draws through internal/render: pieces, the heat's colours and the arrows asked for.
func TestBoardSVG(t *testing.T) {
	heat := make([]float32, 64)
	heat[28] = 1 // e4
	svg, err := BoardSVG("8/8/8/4k3/8/8/4P3/4K3 w - - 0 1", heat, []string{"e2e4", "zz"}, "t", "", false)
	if err != nil {
		t.Fatal(err)
	}
	s := string(svg)
	if !strings.Contains(s, `data-square="e4"`) || !strings.Contains(s, "colorbar") || strings.Count(s, "marker-end") != 1 {
		t.Errorf("svg lacks the heat, the colour bar or the one legal arrow:\n%.400s", s)
	}
	if _, err := BoardSVG("nonsense", nil, nil, "", "", false); err == nil {
		t.Error("a bad FEN was drawn")
	}
}
