package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// serveFactory is a factory configured as `serve --model model` would leave it.
func serveFactory(t testing.TB, model string) *Factory {
	t.Helper()
	io, _, _, _ := TestIO()
	f := NewFactory(io, toolVersion())
	cfg := defaultConfig()
	cfg.Model = model
	cfg.ORTLib = testutil.ORTLib(t)
	f.setConfig(cfg)
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

func serveTest(t testing.TB, model string) *httptest.Server {
	t.Helper()
	opts := &ServeOptions{Factory: serveFactory(t, model), Concurrency: 4, MaxBody: 64 << 10, MaxEngines: 8}
	h, err := opts.handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func post(t testing.TB, url, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return resp.StatusCode, b
}

// TestServeEnvelopeEqualsAnalyse is issue 20's acceptance 2: the API answers the envelope that `analyse
// --format json` prints for the same flags, as request fields.
func TestServeEnvelopeEqualsAnalyse(t *testing.T) {
	maia := testutil.Shared(t, "models/maia-1100.onnx")
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	fen := "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR b KQkq - 3 3"
	cases := []struct {
		args []string
		body string
	}{
		{[]string{"--lens", "saliency", "--fen", fen}, `{"lens":"saliency","fen":"` + fen + `"}`},
		{[]string{"--lens", "gradient,activation", "--startpos", "--moves", "e2e4 e7e5", "--target", "policy:g1f3", "--pattern", "^block1/conv2/relu$", "--top", "3"},
			`{"lens":["gradient","activation"],"startpos":true,"moves":"e2e4 e7e5","target":"policy:g1f3","pattern":"^block1/conv2/relu$","top":3}`},
		{[]string{"--lens", "occlusion", "--fen", "8/8/8/4k3/8/8/4P3/4K3 w - - 0 1", "--history-fill", "always"},
			`{"lens":"occlusion","fen":"8/8/8/4k3/8/8/4P3/4K3 w - - 0 1","history_fill":"always"}`},
	}
	want := make([]map[string]any, len(cases))
	for i, c := range cases {
		code, stdout, stderr := runCLI(t, env, append([]string{"analyse", "--model", maia}, c.args...)...)
		if code != 0 {
			t.Fatalf("analyse %v: exit %d: %s", c.args, code, stderr)
		}
		if err := json.Unmarshal([]byte(stdout), &want[i]); err != nil {
			t.Fatal(err)
		}
	}
	srv := serveTest(t, maia)
	for i, c := range cases {
		for rep := range 2 { // the second answer comes from the warm engine
			code, body := post(t, srv.URL+"/api/analyse", c.body)
			if code != http.StatusOK {
				t.Fatalf("%s: status %d: %s", c.body, code, body)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want[i]) {
				t.Errorf("%s (request %d): the envelope differs from analyse's", c.body, rep+1)
			}
		}
	}
}

// TestServeConcurrentMixed is issue 20's acceptance 2: 200 concurrent requests, valid and invalid mixed:
// every valid one answers 200 with the position it asked for, every invalid one 400 with a JSON error.
func TestServeConcurrentMixed(t *testing.T) {
	srv := serveTest(t, "") // the demo network: the test is about the server, not the net
	big := `{"fen":"` + strings.Repeat("x", 70<<10) + `"}`
	invalid := []string{
		``, `not json`, `[1,2]`, `{"fen":`, `{"lens":"nosuchlens"}`, `{"fen":"8/8/8/8 w"}`, `{"moves":"e2e5"}`,
		`{"bogus":1}`, `{"output":"/tmp/x"}`, `{"top":"many"}`, `{"top":-1}`, `{"startpos":"yes"}`, `{"lens":[1]}`,
		`{"lens":"saliency","target":"policy:a1a8"}`, `{"format":"npy"}`, `{"fen":{"a":1}}`, big, `{} {}`,
		`{"lens":"gradient","pattern":"("}`, `{"lens":"activation","target":"value"}`, `{"fen":""}`,
	}
	moves := []string{"", "e2e4", "e2e4 e7e5", "d2d4 d7d5 c2c4", "g1f3"}
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 1 {
				body := invalid[(i/2)%len(invalid)]
				code, b := post(t, srv.URL+"/api/analyse", body)
				var e struct{ Error string }
				if code != http.StatusBadRequest || json.Unmarshal(b, &e) != nil || e.Error == "" {
					errs <- fmt.Sprintf("invalid %.40q: status %d, body %.200s", body, code, b)
				}
				return
			}
			mv := moves[(i/2)%len(moves)]
			lensName := []string{"saliency", "activation"}[(i/2)%2]
			code, b := post(t, srv.URL+"/api/analyse", fmt.Sprintf(`{"lens":%q,"moves":%q}`, lensName, mv))
			var env struct {
				Lens     struct{ Name string }
				Position struct{ Moves []string }
			}
			if code != http.StatusOK || json.Unmarshal(b, &env) != nil {
				errs <- fmt.Sprintf("valid %q: status %d: %.200s", mv, code, b)
				return
			}
			if env.Lens.Name != lensName || strings.Join(env.Position.Moves, " ") != mv {
				errs <- fmt.Sprintf("valid %q %s: answered %s %v", mv, lensName, env.Lens.Name, env.Position.Moves)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// Still serving after all that.
	if code, b := post(t, srv.URL+"/api/analyse", `{"lens":"saliency"}`); code != http.StatusOK {
		t.Fatalf("after the storm: %d %s", code, b)
	}
}

// TestServeGracefulShutdown: cancelling the server's context (as SIGINT does) lets it stop cleanly.
func TestServeGracefulShutdown(t *testing.T) {
	f := serveFactory(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	opts := &ServeOptions{Factory: f, Port: 0, Listen: "127.0.0.1", Concurrency: 1, MaxBody: 64 << 10, MaxEngines: 2,
		Interrupt: ctx, Listening: func(a string) { addr <- a }}
	done := make(chan error, 1)
	go func() { done <- runServe(opts) }()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("serve ended at once: %v", err)
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Errorf("listening on %s, want 127.0.0.1 by default", base)
	}
	if code, b := post(t, base+"/api/analyse", `{"lens":"activation"}`); code != 200 {
		t.Fatalf("status %d: %s", code, b)
	}
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(page, []byte("<html")) && !bytes.Contains(page, []byte("<!doctype html>")) {
		t.Errorf("GET / is no page: %.100s", page)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// BenchmarkServeAnalyseWarm measures a request on a warm engine: saliency of one position on maia-1100
// through HTTP, the engine prepared by a first request outside the timing.
func BenchmarkServeAnalyseWarm(b *testing.B) {
	maia := testutil.Shared(b, "models/maia-1100.onnx")
	srv := serveTest(b, maia)
	body := `{"lens":"saliency","fen":"r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR b KQkq - 3 3"}`
	if code, out := post(b, srv.URL+"/api/analyse", body); code != http.StatusOK {
		b.Fatalf("status %d: %s", code, out)
	}
	b.ResetTimer()
	for b.Loop() {
		if code, out := post(b, srv.URL+"/api/analyse", body); code != http.StatusOK {
			b.Fatalf("status %d: %s", code, out)
		}
	}
}

// TestServeFileFieldsLocalOnly: options naming files on the server are refused unless it listens on a
// loopback address.
func TestServeFileFieldsLocalOnly(t *testing.T) {
	f := serveFactory(t, "")
	fields := map[string]json.RawMessage{"lens": json.RawMessage(`"probing"`), "probe": json.RawMessage(`"/etc/passwd"`)}
	if _, _, err := analyseRequest(f, f.Config(), fields, false); err == nil || ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "names a file") {
		t.Errorf("remote: %v", err)
	}
	if _, _, err := analyseRequest(f, f.Config(), fields, true); err != nil {
		t.Errorf("local: %v", err)
	}
	for addr, want := range map[string]bool{"": true, "127.0.0.1": true, "::1": true, "localhost": true, "0.0.0.0": false, "192.0.2.1": false} {
		if loopback(addr) != want {
			t.Errorf("loopback(%q) = %v", addr, !want)
		}
	}
}
