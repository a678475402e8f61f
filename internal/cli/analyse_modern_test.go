package cli

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestAnalyseModernNets is issue 7's acceptance 3: the activation and gradient lenses run through analyse on
// an attention-body net and an SE net with an attention policy, mish and moves-left, and the input gradients
// agree with central finite differences of the network (value and moves-left targets).
func TestAnalyseModernNets(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	fen := "r1bqk2r/pppp1ppp/2n2n2/2b1p3/2B1P3/3P1N2/PPP2PPP/RNBQK2R w KQkq - 1 5"
	for _, tc := range []struct{ net, format, target string }{
		{"models/synthetic/ab_pemap_classical.onnx", "1", "value"},
		{"models/synthetic/se_apol_mlh.onnx", "4", "value"},
		{"models/synthetic/se_apol_mlh.onnx", "4", "mlh"},
	} {
		path := testutil.Shared(t, tc.net)
		t.Run(tc.net+"/"+tc.target, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, env, "analyse", "--model", path, "--input-format", tc.format, "--fen", fen, "--lens", "activation")
			if code != 0 {
				t.Fatalf("activation: exit %d: %s", code, stderr)
			}
			var act envelope
			if err := json.Unmarshal([]byte(stdout), &act); err != nil || len(act.Results) == 0 {
				t.Fatalf("activation results: %v %v", err, act.Results)
			}
			code, stdout, stderr = runCLI(t, env, "analyse", "--model", path, "--input-format", tc.format, "--fen", fen, "--lens", "gradient", "--target", tc.target, "--save-planes")
			if code != 0 {
				t.Fatalf("gradient: exit %d: %s", code, stderr)
			}
			var e struct {
				Results map[string]struct {
					Data [][][]float32 `json:"data"`
				} `json:"results"`
			}
			if err := json.Unmarshal([]byte(stdout), &e); err != nil {
				t.Fatal(err)
			}
			flat := func(key string) []float64 {
				var out []float64
				for _, p := range e.Results[key].Data {
					for _, r := range p {
						for _, v := range r {
							out = append(out, float64(v))
						}
					}
				}
				return out
			}
			x, g := flat("planes"), flat("input_grad")
			if len(x) != 112*64 || len(g) != len(x) {
				t.Fatalf("planes %d, grad %d", len(x), len(g))
			}
			// The CLI runs above shut ONNX Runtime down on exit, so the check starts its own.
			if _, err := model.InitRuntime([]string{env["LCZEROLENS_ORT_LIB"]}); err != nil {
				t.Fatal(err)
			}
			rt, err := model.NewSessionCache(model.SessionOptions{Device: "cpu", Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close()
			n, err := model.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			f := func(v []float64, h float64) float64 {
				in := make([]float32, len(x))
				for i := range x {
					in[i] = float32(x[i] + h*v[i])
				}
				out, err := n.Forward(rt, in, 1)
				if err != nil {
					t.Fatal(err)
				}
				if tc.target == "mlh" {
					return float64(out.MLH[0])
				}
				return float64(out.ForceValue(0))
			}
			rng := rand.New(rand.NewPCG(1, 2))
			// Unit directions: the gradient's own, and random ones over the current position's piece planes.
			// Step 1e-2 along a unit vector moves each input by ~1e-3 at most, so the O(h^2) curvature term
			// of these smooth nets (mish, relu^2 after LayerNorm) stays well under the 2% tolerance, while the
			// difference of f (~1e-4) stays far above float32 rounding of f (~1e-7).
			const h = 1e-2
			for dir := 0; dir < 4; dir++ {
				v := make([]float64, len(x))
				for i := range v {
					switch {
					case dir == 0:
						v[i] = g[i]
					case i < 12*64:
						v[i] = rng.NormFloat64()
					}
				}
				norm := 0.0
				for _, a := range v {
					norm += a * a
				}
				var gv float64
				for i := range v {
					v[i] /= math.Sqrt(norm)
					gv += g[i] * v[i]
				}
				fd := (f(v, h) - f(v, -h)) / (2 * h)
				if math.Abs(fd-gv) > 0.02*math.Abs(fd)+2e-5 {
					t.Errorf("direction %d: grad.v = %g, finite difference %g", dir, gv, fd)
				}
			}
		})
	}
}
