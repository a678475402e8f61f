package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// analyseResult runs analyse and returns one result's data.
func analyseResult(t *testing.T, key string, args ...string) []float32 {
	t.Helper()
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	code, stdout, stderr := runCLI(t, env, append([]string{"analyse"}, args...)...)
	if code != 0 {
		t.Fatalf("analyse %v: exit %d: %s", args, code, stderr)
	}
	var env2 struct {
		Results map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal([]byte(stdout), &env2); err != nil {
		t.Fatal(err)
	}
	raw, ok := env2.Results[key]
	if !ok {
		t.Fatalf("analyse %v: no result %s in %s", args, key, stdout)
	}
	var r struct {
		Data []float32 `json:"data"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r.Data
}

// TestAblationMeanFromFile streams a reference file through the network: the mean over two copies of one
// position is that position's activation, so mean ablation equals resampling it; over two different
// positions it is neither's.
func TestAblationMeanFromFile(t *testing.T) {
	model := testutil.Shared(t, "models/maia-1100.onnx")
	dir := t.TempDir()
	const a, b = "rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 2", "8/2k5/8/3Pp3/8/8/5K2/8 w - - 0 40"
	same := filepath.Join(dir, "same.fen")
	mixed := filepath.Join(dir, "mixed.fen")
	if err := os.WriteFile(same, []byte(a+"\n"+a+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mixed, []byte(a+"\n"+b+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const fen = "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"
	base := []string{"--model", model, "--fen", fen, "--lens", "ablation", "--pattern", "^block[13]/conv2/relu$", "--history-fill", "no"}
	mean := analyseResult(t, "effects", append(base, "--mean-from", same)...)
	resample := analyseResult(t, "effects", append(base, "--resample-fen", a)...)
	mixedMean := analyseResult(t, "effects", append(base, "--mean-from", mixed)...)
	for k := range mean {
		if d := mean[k] - resample[k]; d > 1e-5 || d < -1e-5 {
			t.Errorf("effect %d: mean of two copies %g, resampled %g", k, mean[k], resample[k])
		}
		if d := mixedMean[k] - resample[k]; d < 1e-4 && d > -1e-4 {
			t.Errorf("effect %d: mean of two different positions %g equals one of them %g", k, mixedMean[k], resample[k])
		}
	}
}
