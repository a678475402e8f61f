package cli

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/sae"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// saeTrainArgs trains a small SAE on the demo network's block0/conv2/relu over the first positions of a PGN.
func saeTrainArgs(pgn, out string, extra ...string) []string {
	return append([]string{"sae", "train", pgn, "--module", "block0/conv2/relu", "--features", "32", "--k", "4", "-o", out,
		"--sae-batch", "256", "--log-every", "0", "--checkpoint", "5", "--eval-positions", "32", "--max-positions", "3000", "--epochs", "2", "-q"}, extra...)
}

// A run killed with SIGKILL and resumed from its last checkpoint ends with the same weights, bit for bit, as
// an uninterrupted run with the same seed.
func TestSAETrainResumeAfterSIGKILL(t *testing.T) {
	pgn := testutil.Shared(t, "data/pgn/educhess-Morphy.pgn")
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	ref, killed := filepath.Join(dir, "ref"), filepath.Join(dir, "killed")
	if code, _, stderr := runCLI(t, env, saeTrainArgs(pgn, ref)...); code != 0 {
		t.Fatalf("uninterrupted run: exit %d: %s", code, stderr)
	}

	cmd := cliProcess(t, saeTrainArgs(pgn, killed)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(killed, checkpointFile)
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(ck); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no checkpoint: %s", stderr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a few checkpoints later, mid-run
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := os.Stat(filepath.Join(killed, "sae.json")); err == nil {
		t.Skip("the child finished before it was killed: nothing to resume (machine too fast for this test)")
	}
	c, err := sae.LoadCheckpoint(ck)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed at checkpoint step %d, epoch %d", c.Trainer.Step, c.Progress["epoch"])

	if code, _, stderr := runCLI(t, env, saeTrainArgs(pgn, killed, "--resume")...); code != 0 {
		t.Fatalf("resumed run: exit %d: %s", code, stderr)
	}
	for _, name := range []string{"W_enc.npy", "b_enc.npy", "W_dec.npy", "b_dec.npy"} {
		a, b := readNPY(t, filepath.Join(ref, name)), readNPY(t, filepath.Join(killed, name))
		if len(a) != len(b) {
			t.Fatalf("%s: %d values uninterrupted, %d resumed", name, len(a), len(b))
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s[%d]: %v uninterrupted, %v resumed", name, i, a[i], b[i])
			}
		}
	}
	if _, err := os.Stat(ck); err == nil {
		t.Error("the checkpoint is left behind after a finished run")
	}
}

// sae train writes a loadable SAEDIR whose metrics and options say what was asked; the sae lens then reads it
// in analyse and batch, and refuses another network.
func TestSAETrainThenLens(t *testing.T) {
	pgn := testutil.Shared(t, "data/pgn/educhess-Morphy.pgn")
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	out := filepath.Join(dir, "sae")
	code, stdout, stderr := runCLI(t, env, "sae", "train", pgn, "--module", "block0/conv2/relu", "--features", "16", "--k", "3", "-o", out,
		"--sae-batch", "256", "--max-positions", "1500", "--eval-positions", "16", "-q", "--log-every", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "FVU") || !strings.Contains(stdout, "patch zero") {
		t.Errorf("no metrics table: %s", stdout)
	}
	f, err := sae.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if f.C != 4 || f.F != 16 || f.K != 3 || f.Vectors != "square" || f.Metrics == nil || f.Metrics.L0 > 3 || len(f.Mean) != 4 || len(f.Fidelity) != 3 {
		t.Errorf("sae.json: %+v", f)
	}
	// Training again into the same directory needs --force.
	if code, _, stderr := runCLI(t, env, saeTrainArgs(pgn, out)...); code != 2 || !strings.Contains(stderr, "--force") {
		t.Errorf("second run into %s: exit %d, %s", out, code, stderr)
	}

	fen := "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"
	code, stdout, stderr = runCLI(t, env, "analyse", "--lens", "sae", "--sae", out, "--fen", fen)
	if code != 0 {
		t.Fatalf("analyse: exit %d: %s", code, stderr)
	}
	var env1 map[string]any
	if err := json.Unmarshal([]byte(stdout), &env1); err != nil {
		t.Fatalf("analyse output: %v\n%s", err, stdout)
	}
	for _, key := range []string{"block0/conv2/relu_sae_index", "block0/conv2/relu_sae_value", "block0/conv2/relu_sae_fvu"} {
		if !strings.Contains(stdout, key) {
			t.Errorf("analyse output lacks %s", key)
		}
	}

	bout := filepath.Join(dir, "batch")
	fens := filepath.Join(dir, "x.fen")
	if err := os.WriteFile(fens, []byte(fen+"\n8/8/8/4k3/8/8/4P3/4K3 b - - 0 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, env, "batch", fens, "--lens", "sae", "--sae", out, "--fidelity", "-o", bout, "-q"); code != 0 {
		t.Fatalf("batch: exit %d: %s", code, stderr)
	}
	testutil.NumpyManifest(t, bout, true)
	if idx := readNPY(t, filepath.Join(bout, "block0.conv2.relu_sae_index.npy")); len(idx) != 2*64*3 {
		t.Errorf("batch index: %d values, want 2*64*3", len(idx))
	}

	maia := testutil.Shared(t, "models/tinygyal-8.onnx")
	if code, _, stderr := runCLI(t, env, "analyse", "--model", maia, "--lens", "sae", "--sae", out, "--fen", fen); code != 2 || !strings.Contains(stderr, "trained on") {
		t.Errorf("sae of the demo network on tinygyal: exit %d: %s", code, stderr)
	}
}

// sae features lists every feature with its examples and their pictures; a top example's value is what the
// sae lens gives for that position in analyse (a FEN list: no history, so both see the same planes). sae eval
// prints the coverage table for the SAE and the neurons.
func TestSAEFeaturesAndEval(t *testing.T) {
	pgn := testutil.Shared(t, "data/pgn/educhess-Morphy.pgn")
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	out := filepath.Join(dir, "sae")
	if code, _, stderr := runCLI(t, env, "sae", "train", pgn, "--module", "block0/conv2/relu", "--features", "16", "--k", "3", "-o", out,
		"--sae-batch", "256", "--max-positions", "1500", "--eval-positions", "0", "-q", "--log-every", "0"); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	fens := filepath.Join(dir, "x.fen")
	if err := os.WriteFile(fens, []byte(strings.Join([]string{
		"r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3",
		"r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R b KQkq - 3 3",
		"8/8/8/4k3/8/8/4P3/4K3 b - - 0 1",
		"rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1",
		"4k3/8/8/8/8/8/8/R3K2R w KQ - 0 1",
	}, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	feats := filepath.Join(dir, "feats")
	if code, _, stderr := runCLI(t, env, "sae", "features", out, fens, "-o", feats, "--top", "2"); code != 0 {
		t.Fatalf("features: exit %d: %s", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(feats, "features.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 16 {
		t.Fatalf("%d feature lines, want 16", len(lines))
	}
	checked := 0
	for _, l := range lines {
		var fl featureLine
		if err := json.Unmarshal([]byte(l), &fl); err != nil {
			t.Fatal(err)
		}
		if fl.Density < 0 || fl.Density > 1 || (fl.Count > 0) != (len(fl.Examples) > 0) || len(fl.Examples) > 2 {
			t.Errorf("feature %d: density %v, count %d, %d examples", fl.Feature, fl.Density, fl.Count, len(fl.Examples))
		}
		for _, e := range fl.Examples {
			svg, err := os.ReadFile(filepath.Join(feats, e.SVG))
			if err != nil || !strings.Contains(string(svg), "on "+e.Square) {
				t.Errorf("feature %d: picture %s: %v", fl.Feature, e.SVG, err)
			}
		}
		if len(fl.Examples) == 0 || checked > 2 {
			continue
		}
		checked++
		e := fl.Examples[0]
		code, stdout, stderr := runCLI(t, env, "analyse", "--lens", "sae", "--sae", out, "--fen", e.FEN)
		if code != 0 {
			t.Fatalf("analyse: exit %d: %s", code, stderr)
		}
		sq, _ := board.ParseSquare(e.Square)
		idx, val := analyseRow(t, stdout, "block0/conv2/relu_sae_index"), analyseRow(t, stdout, "block0/conv2/relu_sae_value")
		found := false
		for a := range 3 {
			if int(idx[int(sq)*3+a]) == fl.Feature && math.Abs(val[int(sq)*3+a]-float64(e.Value)) < 1e-5 {
				found = true
			}
		}
		if !found {
			t.Errorf("feature %d: example %.5g on %s of %s, analyse gives %v / %v there", fl.Feature, e.Value, e.Square, e.FEN, idx[int(sq)*3:int(sq)*3+3], val[int(sq)*3:int(sq)*3+3])
		}
	}
	if checked == 0 {
		t.Fatal("no example checked")
	}

	code, stdout, stderr := runCLI(t, env, "sae", "eval", out, fens)
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	for _, fam := range []string{"own-piece", "opponent-piece", "empty", "attacked-by-own", "attacked-by-opponent", "COVERAGE NEURONS"} {
		if !strings.Contains(stdout, fam) {
			t.Errorf("eval output lacks %s:\n%s", fam, stdout)
		}
	}
}

// analyseRow digs the flattened values of key out of analyse's JSON output, wherever it sits.
func analyseRow(t *testing.T, out, key string) []float64 {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var found any
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == key {
					found = c
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
	var flat []float64
	var flatten func(v any)
	flatten = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			flatten(x["data"])
		case []any:
			for _, c := range x {
				flatten(c)
			}
		case float64:
			flat = append(flat, x)
		}
	}
	flatten(found)
	if len(flat) == 0 {
		t.Fatalf("analyse output has no %s: %.400s", key, out)
	}
	return flat
}

// saeExitFixture writes an untrained SAE of the demo network's block0/conv2/relu into dir/sae-fixture.
func saeExitFixture(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "sae-fixture")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	s, err := sae.New(4, 8, 2, sae.TopK, 1)
	if err != nil {
		t.Fatal(err)
	}
	n := model.Demo()
	f := &sae.File{Model: sae.ModelID{Path: n.Path, SHA256: n.SHA256, Graph: n.GraphSHA256}, Module: "block0/conv2/relu", Shape: []int{4, 8, 8}, Vectors: "square", Mean: make([]float32, 4), SAE: s}
	if err := sae.Save(out, f, false); err != nil {
		t.Fatal(err)
	}
	return out
}

// Training on what batch --lens activation wrote (--from-npy, with its positions.jsonl for records and sides
// to move) gives the same weights as training on the positions streamed through the network.
func TestSAETrainFromNPYEqualsStream(t *testing.T) {
	pgn := testutil.Shared(t, "data/pgn/educhess-Morphy.pgn")
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	acts := filepath.Join(dir, "acts")
	if code, _, stderr := runCLI(t, env, "batch", pgn, "--lens", "activation", "--pattern", "^block0/conv2/relu$", "-o", acts, "-q", "--plies", "every:3"); code != 0 {
		t.Fatalf("batch: exit %d: %s", code, stderr)
	}
	common := []string{"--module", "block0/conv2/relu", "--features", "16", "--k", "3", "--sae-batch", "128", "--buffer", "1000", "--eval-positions", "0", "-q", "--log-every", "0"}
	streamed, fromNPY := filepath.Join(dir, "streamed"), filepath.Join(dir, "npy")
	if code, _, stderr := runCLI(t, env, append([]string{"sae", "train", pgn, "--plies", "every:3", "-o", streamed}, common...)...); code != 0 {
		t.Fatalf("streamed: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, env, append([]string{"sae", "train", "--from-npy", filepath.Join(acts, "block0.conv2.relu_output.npy"), "-o", fromNPY}, common...)...); code != 0 {
		t.Fatalf("from npy: exit %d: %s", code, stderr)
	}
	for _, name := range []string{"W_enc.npy", "W_dec.npy", "b_dec.npy"} {
		a, b := readNPY(t, filepath.Join(streamed, name)), readNPY(t, filepath.Join(fromNPY, name))
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s[%d]: %v streamed, %v from the npy file", name, i, a[i], b[i])
			}
		}
	}
}

// SIGTERM stops sae train reading a stalled stdin: exit 143, one line saying how to go on, and the checkpoint
// left for --resume.
func TestSAETrainSIGTERM(t *testing.T) {
	raw, err := os.ReadFile(testutil.Shared(t, "data/pgn/educhess-Morphy.pgn"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "sae")
	ck := filepath.Join(out, checkpointFile)
	code, stderr := interruptChild(t, raw, len(raw)/2, syscall.SIGTERM, func() bool { _, err := os.Stat(ck); return err == nil },
		"sae", "train", "-", "--input-type", "pgn", "--module", "block0/conv2/relu", "--features", "16", "--k", "3", "-o", out,
		"--sae-batch", "256", "--checkpoint", "5", "-q")
	if code != 143 || !strings.Contains(stderr, "--resume") || strings.Count(stderr, "lczerolens: ") != 1 {
		t.Errorf("exit %d, stderr %q: want 143 and one line naming --resume", code, stderr)
	}
	if _, err := sae.LoadCheckpoint(ck); err != nil {
		t.Errorf("no checkpoint to resume from: %v", err)
	}
}
