package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// einvalWriter fails every write with EINVAL, whose text ("invalid argument") once read as a usage error.
type einvalWriter struct{}

func (einvalWriter) Write([]byte) (int, error) {
	return 0, &fs.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EINVAL}
}

// exitFixtures are the files the exit-code table reads.
type exitFixtures struct {
	dir, pgn, heat, weights, notNet, shards, badCfg, fracCfg string
}

func newExitFixtures(t *testing.T) *exitFixtures {
	t.Helper()
	dir := t.TempDir()
	fx := &exitFixtures{dir: dir, pgn: smallPGN(t, dir, "games.pgn")}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fx.notNet = write("notnet.onnx", "this is not a network")
	fx.badCfg = write("bad.yaml", "batchsize: 3\n")
	fx.fracCfg = write("frac.yaml", "threads: 1.5\n")
	heat := make([]float32, 64)
	for i := range heat {
		heat[i] = float32(i) - 31.5
	}
	var b bytes.Buffer
	if err := npy.Write(&b, []int{8, 8}, heat); err != nil {
		t.Fatal(err)
	}
	fx.heat = write("heat.npy", b.String())
	// A small generated lc0 weight file from the lc0 package's fuzz corpus (a Go-quoted []byte literal).
	raw, err := os.ReadFile(filepath.Join(testutil.Root(t), "internal/lc0/testdata/fuzz/FuzzParse/plain_conv.pb"))
	if err != nil {
		t.Fatal(err)
	}
	lit := strings.TrimSpace(strings.TrimPrefix(string(raw), "go test fuzz v1\n"))
	lit = strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")")
	weights, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatalf("fuzz corpus entry: %v", err)
	}
	fx.weights = write("net.pb", weights)
	fx.shards = filepath.Join(dir, "shards")
	return fx
}

// makeShards runs the two shards that merge joins (once; they need ONNX Runtime).
func (fx *exitFixtures) makeShards(t *testing.T, env map[string]string) []string {
	t.Helper()
	var dirs []string
	for i := range 2 {
		out := filepath.Join(fx.shards, strconv.Itoa(i))
		dirs = append(dirs, out)
		if _, err := os.Stat(filepath.Join(out, "manifest.json")); err == nil {
			continue
		}
		if code, _, stderr := runCLI(t, env, "batch", fx.pgn, "-o", out, "--quiet", "--lens", "activation", "--shard", fmt.Sprintf("%d/2", i)); code != 0 {
			t.Fatalf("shard %d: exit %d: %s", i, code, stderr)
		}
	}
	return dirs
}

// limitedCLI runs the CLI as a child process whose files may not grow beyond 512 bytes (ulimit -f 1), so
// that writing its output fails with EFBIG, a real I/O fault of the kind a full disk gives.
func limitedCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	child := cliProcess(t, args...)
	sh := exec.Command("/bin/sh", append([]string{"-c", `ulimit -f 1 && exec "$@"`, "sh", os.Args[0]}, args...)...)
	sh.Env = child.Env
	var stderr bytes.Buffer
	sh.Stderr = &stderr
	err := sh.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatal(err)
	return 0, ""
}

// TestExitCodeTable is the exit-code contract over every command: each usage or input error exits 2 and
// each runtime failure (a failing writer, EINVAL included; a file that cannot grow; a missing ONNX Runtime)
// exits 1, with one line on stderr. A command of the CLI without both kinds of case here fails the test.
func TestExitCodeTable(t *testing.T) {
	lib := testutil.ORTLib(t)
	env := map[string]string{"LCZEROLENS_ORT_LIB": lib}
	fx := newExitFixtures(t)
	missing := filepath.Join(fx.dir, "nosuch")
	out := func(name string) string { return filepath.Join(fx.dir, "out", name) }
	type tc struct {
		cmd  string // the command path the case covers
		args []string
		env  map[string]string
		// einval replaces stdout by a writer failing with EINVAL; limited runs a child whose files cannot
		// grow (then args are the child's; shards are made first for merge).
		einval, limited bool
		code            int
		want            string
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{"LCZEROLENS_ORT_LIB": lib}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	pzl, _ := filepath.Abs(puzzleFixture)
	cases := []tc{
		// Usage and input errors: exit 2.
		{cmd: "lczerolens", args: []string{"frobnicate"}, code: 2, want: `unknown command "frobnicate"`},
		{cmd: "lczerolens", args: []string{"--frob"}, code: 2, want: "unknown flag"},
		{cmd: "version", args: []string{"version", "extra"}, code: 2, want: "unknown command"},
		{cmd: "version", args: []string{"version", "--config", "root_test_missing.yaml"}, code: 2, want: "root_test_missing.yaml"},
		{cmd: "encode", args: []string{"encode", "--fen", ""}, code: 2, want: "--fen is empty"},
		{cmd: "encode", args: []string{"encode", "--fen", "8/8/8/8/8/8/8/K6k w - - 0 1", "--startpos"}, code: 2, want: "--fen and --startpos cannot be used together"},
		{cmd: "encode", args: []string{"encode", "--startpos", "--moves", "e2e5"}, code: 2, want: "e2e5"},
		{cmd: "encode", args: []string{"encode", "--startpos", "--format", "xml"}, code: 2, want: "xml"},
		{cmd: "encode", args: []string{"encode", "--startpos", "--history-fill", "bogus"}, code: 2, want: `history-fill "bogus"`},
		{cmd: "encode", args: []string{"encode", "--startpos"}, env: with(map[string]string{"LCZEROLENS_BATCH_SIZE": "abc"}), code: 2, want: "LCZEROLENS_BATCH_SIZE"},
		{cmd: "encode", args: []string{"encode", "--startpos", "--config", fx.fracCfg}, code: 2, want: "threads 1.5: not an integer"},
		{cmd: "predict", args: []string{"predict", "--startpos", "--top", "-1"}, code: 2, want: "--top -1"},
		{cmd: "predict", args: []string{"predict", "--startpos", "--top", "abc"}, code: 2, want: "invalid argument"},
		{cmd: "predict", args: []string{"predict", "--fen", "x", "--startpos"}, code: 2, want: "cannot be used together"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "saliency,saliency"}, code: 2, want: "saliency is named twice"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "saliency", "--target", "banana"}, code: 2, want: "lens saliency: option --target"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "lrp", "--epsilon", "-1"}, code: 2, want: "lens lrp: option --epsilon"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "activation", "--pattern", "^nosuch$"}, code: 2, want: "nosuch"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--model", missing}, code: 2, want: missing},
		{cmd: "analyse", args: []string{"analyse", "--fen", "", "--lens", "activation"}, code: 2, want: "--fen is empty"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "patching", "--corrupt-fen", ""}, code: 2, want: "--corrupt-fen is empty"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--model", fx.notNet}, code: 2, want: "not an onnx model"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--threads", "100000"}, code: 2, want: fmt.Sprintf("want at most %d", threadsPerCPU*runtime.NumCPU())},
		{cmd: "analyse", args: []string{"analyse", "--startpos"}, env: with(map[string]string{"LCZEROLENS_FORMAT": "npy"}), code: 2, want: "--format npy needs -o DIR"},
		{cmd: "batch", args: []string{"batch", fx.pgn, "-o", out("b1"), "--force", "--resume"}, code: 2, want: "--resume and --force cannot be used together"},
		{cmd: "batch", args: []string{"batch", fx.pgn, "-o", out("b2"), "--batch-size", "1000000000"}, code: 2, want: fmt.Sprintf("want at most %d", MaxBatchSize)},
		{cmd: "batch", args: []string{"batch", fx.pgn, "-o", out("b3"), "--threads", "100000"}, code: 2, want: "--threads"},
		{cmd: "batch", args: []string{"batch", fx.pgn}, code: 2, want: `required flag(s) "output"`},
		{cmd: "batch", args: []string{"batch", fx.pgn, filepath.Join(fx.dir, "p.csv"), "-o", out("b4")}, code: 2, want: "give inputs of one type"},
		{cmd: "batch", args: []string{"batch", missing, "-o", out("b5")}, code: 2, want: missing},
		{cmd: "batch", args: []string{"batch", fx.pgn, "-o", out("b6"), "--shard", "3/2"}, code: 2, want: "3/2"},
		{cmd: "probe train", args: []string{"probe", "train", fx.pgn, "-o", out("p.json")}, code: 2, want: `"concept"`},
		{cmd: "probe train", args: []string{"probe", "train", fx.pgn, "-o", out("p.json"), "--concept", "material-balance", "--holdout", "2"}, code: 2, want: "--holdout 2"},
		{cmd: "probe", args: []string{"probe", "frob"}, code: 2, want: `unknown command "frob"`},
		{cmd: "render", args: []string{"render", "--from", fx.dir, "--npy", fx.heat}, code: 2, want: "either --from"},
		{cmd: "render", args: []string{"render", "--npy", fx.heat, "--row", "abc"}, code: 2, want: "--row"},
		{cmd: "render", args: []string{"render", "--npy", missing}, code: 2, want: missing},
		{cmd: "render", args: []string{"render", "--npy", fx.heat, "--fen", ""}, code: 2, want: "--fen is empty"},
		{cmd: "help", args: []string{"help", "frob"}, code: 2, want: `unknown help topic "frob"`},
		{cmd: "help", args: []string{"help", "model", "frob"}, code: 2, want: `unknown help topic "model frob"`},
		{cmd: "merge", args: []string{"merge", "-o", out("m1")}, code: 2, want: "requires at least 1 arg"},
		{cmd: "merge", args: []string{"merge", fx.dir, "-o", out("m2")}, code: 2, want: "not a batch output directory"},
		{cmd: "lenses", args: []string{"lenses", "lst"}, code: 2, want: "did you mean list"},
		{cmd: "lenses list", args: []string{"lenses", "list", "extra"}, code: 2, want: "unknown command"},
		{cmd: "lenses describe", args: []string{"lenses", "describe", "nosuch"}, code: 2, want: "unknown lens"},
		{cmd: "lenses describe", args: []string{"lenses", "describe"}, code: 2, want: "accepts 1 arg(s)"},
		{cmd: "model", args: []string{"model", "frob"}, code: 2, want: `unknown command "frob"`},
		{cmd: "model info", args: []string{"model", "info", "--model", missing}, code: 2, want: missing},
		{cmd: "model modules", args: []string{"model", "modules", "--pattern", "("}, code: 2, want: "regular expression"},
		{cmd: "convert", args: []string{"convert"}, code: 2, want: "accepts 1 arg(s), received 0"},
		{cmd: "convert", args: []string{"convert", missing}, code: 2, want: missing},
		{cmd: "convert", args: []string{"convert", fx.notNet, "-o", "-"}, code: 2, want: "notnet.onnx"},
		{cmd: "completion bash", args: []string{"completion", "bash", "--frob"}, code: 2, want: "unknown flag"},
		{cmd: "completion", args: []string{"completion", "tcsh"}, code: 2, want: `unknown command "tcsh"`},

		// Runtime failures: exit 1.
		{cmd: "version", args: []string{"version"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "encode", args: []string{"encode", "--startpos"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "predict", args: []string{"predict", "--startpos"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "saliency"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "activation"}, env: map[string]string{"LCZEROLENS_ORT_LIB": missing}, code: 1, want: "make ort"},
		{cmd: "batch", args: []string{"batch", fx.pgn, "-o", out("b7"), "--lens", "activation", "--quiet"}, limited: true, code: 1, want: "file too large"},
		{cmd: "batch", args: []string{"batch", fx.pgn, "-o", out("b8"), "--lens", "activation"}, env: map[string]string{"LCZEROLENS_ORT_LIB": missing}, code: 1, want: "make ort"},
		{cmd: "probe train", args: []string{"probe", "train", fx.pgn, "-o", out("p1.json"), "--concept", "piece-under-attack", "--min-class", "1", "--holdout", "0"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "render", args: []string{"render", "--npy", fx.heat}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "render", args: []string{"render", "--npy", fx.heat, "-o", out("h.svg")}, limited: true, code: 1, want: "file too large"},
		{cmd: "merge", args: []string{"merge", "SHARDS", "-o", out("m3"), "--quiet"}, limited: true, code: 1, want: "file too large"},
		{cmd: "lenses list", args: []string{"lenses", "list"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "lenses describe", args: []string{"lenses", "describe", "saliency"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "model info", args: []string{"model", "info"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "model modules", args: []string{"model", "modules"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "convert", args: []string{"convert", fx.weights, "-o", "-"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "convert", args: []string{"convert", fx.weights, "-o", out("net.onnx")}, limited: true, code: 1, want: "file too large"},
		{cmd: "completion bash", args: []string{"completion", "bash"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "render", args: []string{"render", "--npy", fx.heat, "--channel", "1"}, code: 2, want: "--channel does not apply"},
		{cmd: "render", args: []string{"render", "--npy", fx.heat, "--plane", "1", "--channel", "2"}, code: 2, want: "both choose"},
		{cmd: "render", args: []string{"render", "--npy", fx.heat, "--query", "e4"}, code: 2, want: "--query applies"},
		{cmd: "render", args: []string{"render", "--npy", fx.heat, "--columns", "-1"}, code: 2, want: "--columns -1"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "ablation", "--heads", "1"}, code: 2, want: "has no head axis"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "ablation", "--squares", "z9"}, code: 2, want: "option --squares"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "ablation", "--mean-from", missing}, code: 2, want: missing},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "ablation", "--mean-from", fx.pgn, "--resample-fen", "8/8/8/8/8/8/8/K6k w - - 0 1"}, code: 2, want: "pick one replacement"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "steering", "--module", "block0/conv2/relu"}, code: 2, want: "no direction"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "steering", "--module", "block0/conv2/relu", "--direction", missing}, code: 2, want: missing},
		{cmd: "direction", args: []string{"direction", fx.pgn, fx.pgn, "--module", "nosuch", "-o", out("d.npy")}, code: 2, want: "module nosuch"},
		{cmd: "direction", args: []string{"direction", fx.pgn, fx.pgn, "--module", "block0/conv2/relu", "-o", "-"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "attention"}, code: 2, want: "no attention module"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "attention", "--top-pairs", "-1"}, code: 2, want: "option --top-pairs"},
		{cmd: "play", args: []string{"play", "--white", fx.notNet, "-o", out("g.pgn")}, code: 2, want: "--white and --black"},
		{cmd: "play", args: []string{"play", "--white", fx.notNet, "--black", fx.notNet, "-o", out("g.pgn")}, code: 2, want: "notnet.onnx"},
		{cmd: "play", args: []string{"play", "--white", fx.notNet, "--black", fx.notNet, "--openings", missing, "-o", out("g.pgn")}, code: 2, want: missing},
		{cmd: "play", args: []string{"play", "--white", fx.notNet, "--black", fx.notNet, "--sampler", "best", "-o", out("g.pgn")}, code: 2, want: "want argmax, sample or utility"},
		{cmd: "play", args: []string{"play", "--white", fx.notNet, "--black", fx.notNet, "--book-plies", "4", "-o", out("g.pgn")}, code: 2, want: "--openings FILE.pgn"},
		{cmd: "play", args: []string{"play", "--white", testutil.Shared(t, "models/tinygyal-8.onnx"), "--black", testutil.Shared(t, "models/tinygyal-8.onnx"), "--games", "1", "--max-plies", "2", "-o", "-"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "corrupt", args: []string{"corrupt", fx.pgn, "-o", out("c.jsonl")}, code: 2, want: "--sparring NET"},
		{cmd: "corrupt", args: []string{"corrupt", missing, "--sparring", fx.notNet, "-o", out("c.jsonl")}, code: 2, want: missing},
		{cmd: "corrupt", args: []string{"corrupt", fx.pgn, "--sparring", fx.notNet, "-o", out("c.jsonl")}, code: 2, want: "notnet.onnx"},
		{cmd: "corrupt", args: []string{"corrupt", fx.pgn, "--sparring", testutil.Shared(t, "models/tinygyal-8.onnx"), "--plies", "some", "-o", out("c.jsonl")}, code: 2, want: "plies"},
		{cmd: "corrupt", args: []string{"corrupt", fx.pgn, "--model", testutil.Shared(t, "models/tinygyal-8.onnx"), "--sparring", testutil.Shared(t, "models/tinygyal-8.onnx"), "-o", out("c.jsonl")}, env: map[string]string{"LCZEROLENS_ORT_LIB": missing}, code: 1, want: "make ort"},
		{cmd: "probe train", args: []string{"probe", "train", fx.pgn, "-o", out("p2.json"), "--concept", "has-piece:K"}, code: 2, want: "the label is 1 on all"},
		{cmd: "probe train", args: []string{"probe", "train", fx.pgn, "-o", out("p3.json"), "--concept", "square-piece"}, code: 2, want: "add --per-square"},
		{cmd: "probe train", args: []string{"probe", "train", fx.pgn, "-o", out("p4.json"), "--concept", "in-check", "--l2", "none"}, code: 2, want: `--l2 "none"`},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "saliency", "--keep", "saliency,nosuch"}, code: 2, want: "valid keys: saliency, input_grad"},
		{cmd: "batch", args: []string{"batch", fx.pgn, "-o", out("keep"), "--lens", "saliency", "--keep", "input_gradient"}, code: 2, want: "valid keys: saliency, input_grad"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "integrated-gradients", "--steps", "0"}, code: 2, want: "--steps: 0: want 1 to 1024"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "integrated-gradients", "--baseline", "ones"}, code: 2, want: "want zeros, empty-board or fen:FEN"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "integrated-gradients", "--max-gap", "0"}, code: 2, want: "--max-gap: 0: want a fraction above 0"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "integrated-gradients", "--max-steps", "32"}, code: 2, want: "--max-steps 32 is below --steps 64"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "gradcam", "--pattern", "^value/reshape$"}, code: 2, want: "want [C,8,8], [64,C]"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "lrp", "--composite", "epsilon-gamma", "--rule", "zplus"}, code: 2, want: "needs --rule epsilon"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "lrp", "--composite", "epsilon-gamma", "--gamma", "-1"}, code: 2, want: "--gamma: -1: want a finite number >= 0"},
		{cmd: "puzzles", args: []string{"puzzles", fx.pgn, "-o", out("pz1")}, code: 2, want: "not a lichess puzzle CSV"},
		{cmd: "puzzles", args: []string{"puzzles", pzl, "--sparring", "x.onnx", "-o", out("pz2")}, code: 2, want: "--sparring is for --filter"},
		{cmd: "puzzles", args: []string{"puzzles", pzl, "--filter", "-o", out("pz3")}, code: 2, want: "--filter needs one --model"},
		{cmd: "puzzles", args: []string{"puzzles", pzl, "-o", out("pz4")}, env: map[string]string{"LCZEROLENS_ORT_LIB": missing}, code: 1, want: "make ort"},
		{cmd: "compare", args: []string{"compare", "--model", "", pzl, "-o", out("c1")}, code: 2, want: "give it twice"},
		{cmd: "compare", args: []string{"compare", "--model", "", "--model", "", missing, "-o", out("c2")}, code: 2, want: missing},
		{cmd: "compare", args: []string{"compare", "--model", "", "--model", "", pzl, "-o", out("c3")}, env: map[string]string{"LCZEROLENS_ORT_LIB": missing}, code: 1, want: "make ort"},
		{cmd: "sae", args: []string{"sae", "frob"}, code: 2, want: `unknown command "frob"`},
		{cmd: "sae train", args: []string{"sae", "train", fx.pgn, "-o", out("s1")}, code: 2, want: "module"},
		{cmd: "sae train", args: []string{"sae", "train", fx.pgn, "--module", "nosuch", "-o", out("s2")}, code: 2, want: "model modules"},
		{cmd: "sae train", args: []string{"sae", "train", fx.pgn, "--module", "block0/conv2/relu", "--activation", "relu", "-o", out("s3")}, code: 2, want: "--l1"},
		{cmd: "sae train", args: []string{"sae", "train", "--module", "block0/conv2/relu", "-o", out("s4")}, code: 2, want: "--from-npy"},
		{cmd: "sae train", args: []string{"sae", "train", fx.pgn, "--module", "block0/conv2/relu", "-o", out("s5")}, env: map[string]string{"LCZEROLENS_ORT_LIB": missing}, code: 1, want: "make ort"},
		{cmd: "sae features", args: []string{"sae", "features", missing, fx.pgn, "-o", out("sf1")}, code: 2, want: "sae.json"},
		{cmd: "sae features", args: []string{"sae", "features", saeExitFixture(t, fx.dir), fx.pgn, "-o", out("sf2")}, env: map[string]string{"LCZEROLENS_ORT_LIB": missing}, code: 1, want: "make ort"},
		{cmd: "sae eval", args: []string{"sae", "eval", missing, fx.pgn}, code: 2, want: "sae.json"},
		{cmd: "sae eval", args: []string{"sae", "eval", saeExitFixture(t, fx.dir), fx.pgn}, env: map[string]string{"LCZEROLENS_ORT_LIB": missing}, code: 1, want: "make ort"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "steering", "--sae", steeringSAEFixture(t, fx.dir, "steer-sae", ""), "--feature", "8"}, code: 2, want: "has 8 features (0 to 7)"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "steering", "--sae", steeringSAEFixture(t, fx.dir, "steer-sae", ""), "--feature", "1", "--module", "block0/conv1/relu"}, code: 2, want: "trained on module block0/conv2/relu"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "steering", "--sae", steeringSAEFixture(t, fx.dir, "steer-sae-other", strings.Repeat("0", 64)), "--feature", "1"}, code: 2, want: "trained on"},
		{cmd: "analyse", args: []string{"analyse", "--startpos", "--lens", "steering", "--module", "block0/conv2/relu", "--feature", "1"}, code: 2, want: "--feature needs --sae"},
		{cmd: "serve", args: []string{"serve", "--port", "70000"}, code: 2, want: "--port 70000"},
		{cmd: "serve", args: []string{"serve", "--model", missing}, code: 2, want: missing},
		{cmd: "serve", args: []string{"serve", "--listen", "no such host!"}, code: 2, want: "listen on"},
		{cmd: "serve", args: []string{"serve"}, env: map[string]string{"LCZEROLENS_ORT_LIB": missing}, code: 1, want: "make ort"},
		{cmd: "report", args: []string{"report", missing, "-o", out("r.html")}, code: 2, want: missing},
		{cmd: "report", args: []string{"report", fx.dir, "-o", out("r2.html"), "--limit", "0"}, code: 2, want: "--limit 0"},
		{cmd: "report", args: []string{"report", fx.dir}, code: 2, want: "pass -o"},
		{cmd: "report", args: []string{"report", fx.badCfg, "-o", out("r3.html")}, code: 2, want: "no batch, analyse, probe"},
		{cmd: "report", args: []string{"report", reportFixture(t, fx.dir), "-o", "-"}, einval: true, code: 1, want: "invalid argument"},
		{cmd: "probe train", args: []string{"probe", "train", fx.pgn, "-o", out("pb1.json"), "--concept", "move-target:1", "--bilinear"}, code: 2, want: "add --per-square"},
		{cmd: "probe train", args: []string{"probe", "train", fx.pgn, "-o", out("pb2.json"), "--concept", "square-piece", "--per-square", "--bilinear"}, code: 2, want: "not a top-1 concept"},
		{cmd: "probe train", args: []string{"probe", "train", fx.pgn, "-o", out("pb3.json"), "--concept", "move-target:1", "--per-square", "--bilinear", "--rank", "0"}, code: 2, want: "--rank 0"},
	}
	if err := os.MkdirAll(filepath.Join(fx.dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(fx.dir)
	covered := map[string][2]bool{} // command path -> has a usage case, has a runtime case
	for _, c := range cases {
		cov := covered[c.cmd]
		cov[c.code-1] = true
		covered[c.cmd] = cov
		t.Run(c.cmd+"/"+strings.Join(c.args, "_"), func(t *testing.T) {
			e := c.env
			if e == nil {
				e = env
			}
			var code int
			var stderr string
			switch {
			case c.limited:
				args := c.args
				if i := slices.Index(args, "SHARDS"); i >= 0 {
					args = slices.Concat(args[:i], fx.makeShards(t, env), args[i+1:])
				}
				code, stderr = limitedCLI(t, args...)
			case c.einval:
				setEnv(t, e)
				io, _, _, errOut := TestIO()
				io.Out = einvalWriter{}
				code = Run(c.args, io)
				stderr = errOut.String()
			default:
				code, _, stderr = runCLI(t, e, c.args...)
			}
			if code != c.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, c.code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "lczerolens: ") || !strings.Contains(last, c.want) {
				t.Errorf("last stderr line %q: want one line naming %q", last, c.want)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Count(stderr, "lczerolens: ") != 1 {
				t.Errorf("error is not reported once, in one line: %q", stderr)
			}
		})
	}
	// Every command of the CLI has both kinds of case (help only prints).
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		path := commandName(c)
		// Cobra's completion scripts are one code path; bash stands for the others.
		cobras := c.Name() == "help" || c.HasParent() && c.Parent().Name() == "completion" && c.Name() != "bash"
		if !cobras && !c.Hidden {
			cov := covered[path]
			switch {
			case !cov[1] && !c.HasSubCommands():
				t.Errorf("command %q has no usage-error case", path)
			case !cov[0] && !c.HasSubCommands():
				t.Errorf("command %q has no runtime-failure case", path)
			case !cov[1]:
				t.Errorf("group command %q has no unknown-subcommand case", path)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := NewCmdRoot(NewFactory(&IOStreams{}, "test"))
	root.InitDefaultHelpCmd()
	walk(root)
}

// TestExitCodeOfWrappedErrors checks the mapping itself: what decides is the type of an error in the chain,
// never its text, and wrapping keeps both the cause (errors.Is) and the code.
func TestExitCodeOfWrappedErrors(t *testing.T) {
	fsync := &fs.PathError{Op: "fsync", Path: "out/x.npy", Err: syscall.EINVAL}
	tests := []struct {
		name string
		err  error
		code int
	}{
		{"einval from fsync is a runtime failure", fmt.Errorf("store: commit: %w", fsync), ExitFailure},
		{"usage error text does not matter", errors.New("unknown flag: invalid argument, accepts 1 arg(s)"), ExitFailure},
		{"usage error wrapped", fmt.Errorf("outer: %w", usageErrorf("bad")), ExitUsage},
		{"usage error joined with a close error", errors.Join(usageErrorf("bad"), errors.New("close")), ExitUsage},
		{"missing input path", pathError(fmt.Errorf("batch: %w", &fs.PathError{Op: "open", Path: "x", Err: syscall.ENOENT})), ExitUsage},
		{"input path on a failing disk", pathError(fmt.Errorf("batch: %w", &fs.PathError{Op: "read", Path: "x", Err: syscall.EIO})), ExitFailure},
		{"bad file content", pathError(errors.New("model: load x: not an onnx model")), ExitUsage},
		{"a package's own exit code", fmt.Errorf("batch: %w", exitErr(143)), 143},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.code {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.code)
			}
		})
	}
	if err := pathError(fmt.Errorf("batch: %w", fsync)); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("the cause is lost: %v", err)
	}
}

type exitErr int

func (e exitErr) Error() string { return "exit " + strconv.Itoa(int(e)) }
func (e exitErr) ExitCode() int { return int(e) }
