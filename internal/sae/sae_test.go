package sae

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// planted draws n vectors of c values, each a k-sparse positive combination of atoms unit vectors plus
// Gaussian noise; it returns the data and the atoms ([atoms,c]).
func planted(seed uint64, n, c, atoms, k int, noise float64) ([]float32, []float32) {
	rng := newRand(seed)
	dict := make([]float32, atoms*c)
	for i := range dict {
		dict[i] = float32(rng.NormFloat64())
	}
	(&SAE{C: c, F: atoms, WDec: dict}).normalize()
	x := make([]float32, n*c)
	for i := range n {
		row := x[i*c : (i+1)*c]
		for _, j := range rng.Perm(atoms)[:k] {
			axpy(float32(0.5+rng.Float64()), dict[j*c:(j+1)*c], row)
		}
		for k := range row {
			row[k] += float32(noise * rng.NormFloat64())
		}
	}
	return x, dict
}

// train runs steps of batch vectors drawn in order from x (cycling).
func train(t *Trainer, x []float32, n, batch, steps int) StepStats {
	c := t.SAE.C
	var st StepStats
	t.Init(x, min(n, 4096))
	for step := range steps {
		lo := (step * batch) % (n - batch + 1)
		st = t.TrainStep(x[lo*c:(lo+batch)*c], batch)
	}
	return st
}

// bestCosines is, for each true atom, the largest cosine with a decoder row.
func bestCosines(dict []float32, atoms int, s *SAE) []float64 {
	c := s.C
	out := make([]float64, atoms)
	for a := range atoms {
		best := -1.0
		for j := range s.F {
			best = math.Max(best, float64(dot(dict[a*c:(a+1)*c], s.WDec[j*c:(j+1)*c])))
		}
		out[a] = best
	}
	return out
}

func TestPlantedDictionary(t *testing.T) {
	const c, atoms, k, n = 32, 48, 3, 60000
	x, dict := planted(1, n, c, atoms, k, 0.02)
	for _, tc := range []struct {
		name       string
		activation string
		k          int
		l1         float64
		steps      int
	}{
		{"topk", TopK, k, 0, 3000},
		{"relu-l1", ReLU, atoms, 3e-2, 2500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(c, 2*atoms, tc.k, tc.activation, 7)
			if err != nil {
				t.Fatal(err)
			}
			opts := DefaultOptions()
			opts.L1, opts.LR = tc.l1, 3e-3
			st := train(NewTrainer(s, opts), x, n, 256, tc.steps)
			cos := bestCosines(dict, atoms, s)
			var mean float64
			for _, v := range cos {
				mean += v / atoms
			}
			m := s.Evaluate(x[:8192*c], 8192)
			t.Logf("mean best cosine %.4f, last step mse %.4f L0 %.2f, eval %+v", mean, st.MSE, st.L0, m)
			if mean < 0.9 {
				t.Errorf("mean best cosine of the planted atoms %.3f, want >= 0.9", mean)
			}
		})
	}
}

// The metrics an evaluator reports equal numpy's, from the saved files alone.
func TestMetricsMatchNumpy(t *testing.T) {
	py := testutil.NumpyPython(t)
	const c, atoms, n = 16, 24, 3000
	x, _ := planted(3, n, c, atoms, 2, 0.05)
	for _, act := range []string{TopK, ReLU} {
		t.Run(act, func(t *testing.T) {
			s, err := New(c, 256, 4, act, 5)
			if err != nil {
				t.Fatal(err)
			}
			opts := DefaultOptions()
			opts.L1 = 1e-2
			opts.DeadSteps = 5
			train(NewTrainer(s, opts), x, n, 64, 100)
			dir := t.TempDir()
			m := s.Evaluate(x, n)
			if err := Save(dir, &File{SAE: s, Module: "m", Metrics: &m}, false); err != nil {
				t.Fatal(err)
			}
			xs := filepath.Join(dir, "x.npy")
			fh, _ := os.Create(xs)
			if err := npy.Write(fh, []int{n, c}, x); err != nil {
				t.Fatal(err)
			}
			fh.Close()
			out, err := exec.Command(py, "-c", numpyMetrics, dir, xs).CombinedOutput()
			if err != nil {
				t.Fatalf("numpy: %v\n%s", err, out)
			}
			var want Metrics
			if err := json.Unmarshal(out, &want); err != nil {
				t.Fatalf("numpy output %q: %v", out, err)
			}
			got, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("go %+v numpy %+v", *got.Metrics, want)
			if math.Abs(got.Metrics.FVU-want.FVU) > 1e-4*math.Max(1, want.FVU) || math.Abs(got.Metrics.L0-want.L0) > 1e-3 ||
				got.Metrics.Dead != want.Dead {
				t.Errorf("sae.json metrics %+v, numpy from the .npy files %+v", *got.Metrics, want)
			}
		})
	}
}

// numpyMetrics recomputes FVU, L0 and the dead fraction from SAEDIR's sae.json and weights.
const numpyMetrics = `
import json, sys, numpy as np
d, xs = sys.argv[1], sys.argv[2]
meta = json.load(open(d + "/sae.json"))
We, be, Wd, bd = (np.load(d + "/" + f).astype(np.float64) for f in ("W_enc.npy", "b_enc.npy", "W_dec.npy", "b_dec.npy"))
x = np.load(xs).astype(np.float64)
s, k = meta["input_scale"], meta["k"]
pre = np.maximum((x * s - bd) @ We + be, 0)
if meta["activation"] == "topk":
    z = np.zeros_like(pre)
    top = np.argsort(-pre, axis=1)[:, :k]
    rows = np.arange(len(x))[:, None]
    z[rows, top] = pre[rows, top]
else:
    z = pre
xhat = (z @ Wd + bd) / s
fvu = ((x - xhat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
print(json.dumps({"fvu": fvu, "l0": float((z > 0).sum(1).mean()), "dead_fraction": float((~(z > 0).any(0)).mean())}))
`

// A run saved to a checkpoint and continued from it ends with the same bits as one run straight through.
func TestCheckpointResumeSameBits(t *testing.T) {
	const c, n = 16, 4000
	x, _ := planted(9, n, c, 24, 2, 0.05)
	run := func(stopAt int) *SAE {
		s, _ := New(c, 64, 4, TopK, 3)
		opts := DefaultOptions()
		opts.DeadSteps = 3
		tr := NewTrainer(s, opts)
		tr.Init(x, n)
		for step := 0; step < 60; step++ {
			if step == stopAt {
				path := filepath.Join(t.TempDir(), "ckpt")
				if err := SaveCheckpoint(path, &Checkpoint{Trainer: tr}); err != nil {
					t.Fatal(err)
				}
				ck, err := LoadCheckpoint(path)
				if err != nil {
					t.Fatal(err)
				}
				tr = ck.Trainer
			}
			lo := (step * 64) % (n - 64)
			tr.TrainStep(x[lo*c:(lo+64)*c], 64)
		}
		return tr.SAE
	}
	a, b := run(-1), run(23)
	for i := range a.WEnc {
		if a.WEnc[i] != b.WEnc[i] {
			t.Fatalf("W_enc[%d]: %v straight through, %v resumed", i, a.WEnc[i], b.WEnc[i])
		}
	}
	for i := range a.WDec {
		if a.WDec[i] != b.WDec[i] {
			t.Fatalf("W_dec[%d]: %v straight through, %v resumed", i, a.WDec[i], b.WDec[i])
		}
	}
}

func BenchmarkTrainStep(b *testing.B) {
	// maia-1100's residual stream: C=64, F=512, k=16, batches of 4096 vectors.
	const c, f, k, batch = 64, 512, 16, 4096
	x, _ := planted(1, batch, c, 256, 8, 0.1)
	s, _ := New(c, f, k, TopK, 1)
	tr := NewTrainer(s, DefaultOptions())
	tr.Init(x, batch)
	b.ResetTimer()
	for b.Loop() {
		tr.TrainStep(x, batch)
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "vectors/s")
}
