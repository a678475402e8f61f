package cli

import (
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/sae"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// steeringSAEFixture writes into dir/name an untrained SAE of the demo network's block0/conv2/relu with input
// scale 0.7 (so that a decoder row used unscaled steers otherwise); graph, when set, replaces the network's
// graph hash (an SAE of another network).
func steeringSAEFixture(t *testing.T, dir, name, graph string) string {
	t.Helper()
	s, err := sae.New(4, 8, 2, sae.TopK, 3)
	if err != nil {
		t.Fatal(err)
	}
	s.Scale = 0.7
	n := model.Demo()
	if graph == "" {
		graph = n.GraphSHA256
	}
	f := &sae.File{Model: sae.ModelID{Path: n.Path, SHA256: n.SHA256, Graph: graph}, Module: "block0/conv2/relu", Shape: []int{4, 8, 8}, Vectors: "square", Mean: make([]float32, 4), SAE: s}
	out := filepath.Join(dir, name)
	if err := sae.Save(out, f, true); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSteeringSAEFeatureEqualsNumpyDirection steers the demo network by an SAE feature (--sae --feature)
// and by a .npy that numpy made from the SAEDIR's own files, W_dec[i] / input_scale: the same value and
// policy change, on all squares and on two; the .npy of the unscaled row steers otherwise.
func TestSteeringSAEFeatureEqualsNumpyDirection(t *testing.T) {
	py := testutil.NumpyPython(t)
	dir := t.TempDir()
	saeDir := steeringSAEFixture(t, dir, "sae", "")
	scaled, raw := filepath.Join(dir, "scaled.npy"), filepath.Join(dir, "raw.npy")
	const script = `
import json, sys, numpy as np
d, i = sys.argv[1], int(sys.argv[2])
w = np.load(d + "/W_dec.npy")
s = json.load(open(d + "/sae.json"))["input_scale"]
np.save(sys.argv[3], (w[i] / s).astype(np.float32))
np.save(sys.argv[4], w[i].astype(np.float32))
`
	if out, err := exec.Command(py, "-c", script, saeDir, "5", scaled, raw).CombinedOutput(); err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	const fen = "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"
	for _, squares := range []string{"", "e4,d5"} {
		common := []string{"--fen", fen, "--lens", "steering", "--alpha", "0.3"}
		if squares != "" {
			common = append(common, "--squares", squares)
		}
		moved := false
		for _, key := range []string{"value_after", "delta_value", "kl"} {
			got := analyseResult(t, key, append(common, "--sae", saeDir, "--feature", "5")...)
			want := analyseResult(t, key, append(common, "--module", "block0/conv2/relu", "--direction", scaled)...)
			unscaled := analyseResult(t, key, append(common, "--module", "block0/conv2/relu", "--direction", raw)...)
			if math.Abs(float64(got[0]-want[0])) > 1e-6 {
				t.Errorf("squares %q: %s %g by --sae --feature 5, %g by numpy's W_dec[5]/input_scale", squares, key, got[0], want[0])
			}
			moved = moved || math.Abs(float64(got[0]-unscaled[0])) > 1e-4
		}
		if !moved {
			t.Errorf("squares %q: the unscaled decoder row steers as the scaled one: the test cannot see the scale", squares)
		}
	}
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	code, _, stderr := runCLI(t, env, "analyse", "--fen", fen, "--lens", "steering", "--sae", saeDir, "--feature", "5", "--direction", scaled)
	if code != 2 || !strings.Contains(stderr, "pass one direction") {
		t.Errorf("--sae with --direction: exit %d %q, want 2", code, stderr)
	}
}
