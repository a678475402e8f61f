package cli

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestDirectionSteeringReproducesPatching makes a direction from two one-position sets (the corrupted
// position minus the clean one) and steers the clean position by it with alpha 1: the value moves by the
// patching lens's effect at that module; the .npy has the module's shape and alpha 0 moves nothing.
func TestDirectionSteeringReproducesPatching(t *testing.T) {
	model := testutil.Shared(t, "models/maia-1100.onnx")
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	const clean = "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"
	const corrupt = "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/4P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"
	a, b := filepath.Join(dir, "a.fen"), filepath.Join(dir, "b.fen")
	if err := os.WriteFile(a, []byte(corrupt+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte(clean+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "dir.npy")
	const module = "block2/conv2/relu"
	if code, _, stderr := runCLI(t, env, "direction", a, b, "--model", model, "--module", module, "-o", out); code != 0 {
		t.Fatalf("direction: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, env, "direction", a, b, "--model", model, "--module", module, "-o", out); code != 2 {
		t.Fatalf("direction over an existing file without --force: exit %d, want 2: %s", code, stderr)
	}
	if shape, _ := readNPYFile(t, out); len(shape) != 3 || shape[0] != 64 || shape[1] != 8 {
		t.Fatalf("direction shape %v, want [64,8,8]", shape)
	}
	patch := analyseResult(t, "effects", "--model", model, "--fen", clean, "--corrupt-fen", corrupt, "--lens", "patching", "--pattern", "^"+module+"$")
	steer := analyseResult(t, "delta_value", "--model", model, "--fen", clean, "--lens", "steering", "--module", module, "--direction", out)
	if math.Abs(float64(patch[0])) < 1e-3 {
		t.Fatalf("patching effect %g: too small to tell anything", patch[0])
	}
	if math.Abs(float64(steer[0]-patch[0])) > 1e-5 {
		t.Errorf("steering by corrupt - clean moved the value by %g, patching %g", steer[0], patch[0])
	}
	zero := analyseResult(t, "delta_value", "--model", model, "--fen", clean, "--lens", "steering", "--module", module, "--direction", out, "--alpha", "0")
	if zero[0] != 0 {
		t.Errorf("alpha 0 moved the value by %g", zero[0])
	}
	// As many values in another shape ([64,64], an attention body's) is another module's direction.
	other := filepath.Join(dir, "other.npy")
	w, err := os.Create(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := npy.Write(w, []int{64, 64}, make([]float32, 4096)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	code, _, stderr := runCLI(t, env, "analyse", "--model", model, "--fen", clean, "--lens", "steering", "--module", module, "--direction", other)
	if code != 2 || !strings.Contains(stderr, "has shape [64 64]") {
		t.Errorf("direction of another shape: exit %d %q, want 2", code, stderr)
	}
}
