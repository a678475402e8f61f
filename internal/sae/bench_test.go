package sae

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// numpyStep is the same TopK SAE training step (C=64, F=512, k=16, batches of 4096, float32) written as
// PyTorch eager runs it: dense matrix products (BLAS) for the forward and backward, a dense Adam update and
// the decoder renormalisation. PyTorch is not installed here; numpy on the same BLAS-backed dense kernels is
// the stand-in baseline. It prints vectors per second over 20 timed steps after 3 warm-up steps.
const numpyStep = `
import time, numpy as np
rng = np.random.default_rng(0)
C, F, k, B = 64, 512, 16, 4096
x = rng.standard_normal((B, C), dtype=np.float32)
Wd = rng.standard_normal((F, C), dtype=np.float32); Wd /= np.linalg.norm(Wd, axis=1, keepdims=True)
We = Wd.T.copy(); be = np.zeros(F, np.float32); bd = x.mean(0)
ps = [We, be, Wd, bd]; ms = [np.zeros_like(p) for p in ps]; vs = [np.zeros_like(p) for p in ps]
rows = np.arange(B)[:, None]
def step(t):
    xc = x - bd
    pre = np.maximum(xc @ We + be, 0)
    idx = np.argpartition(-pre, k, axis=1)[:, :k]
    z = np.zeros_like(pre); z[rows, idx] = pre[rows, idx]
    e = (z @ Wd + bd - x) * np.float32(2.0 / (B * C))
    gWd = z.T @ e
    dz = (e @ Wd.T) * (z > 0)
    gWe = xc.T @ dz; gbe = dz.sum(0); gbd = e.sum(0) - dz.sum(0) @ We.T
    gWd -= (gWd * Wd).sum(1, keepdims=True) * Wd
    lr = 1e-3 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
    for p, g, m, v in zip(ps, (gWe, gbe, gWd, gbd), ms, vs):
        m *= 0.9; m += 0.1 * g; v *= 0.999; v += 0.001 * g * g; p -= lr * m / (np.sqrt(v) + 1e-8)
    np.divide(Wd, np.linalg.norm(Wd, axis=1, keepdims=True), out=Wd)
for t in range(1, 4): step(t)
t0 = time.perf_counter()
for t in range(4, 24): step(t)
print(20 * B / (time.perf_counter() - t0))
`

// BenchmarkTrainStepVsNumpy reports this package's TopK step throughput and its ratio to the numpy dense
// baseline (x_numpy > 1: faster), both measured in the same run on the same CPU.
func BenchmarkTrainStepVsNumpy(b *testing.B) {
	benchTrainStepVs(b, testutil.NumpyPython(b), numpyStep, "numpy")
}

// benchTrainStepVs runs the baseline script (which prints vectors per second) with python py, then times this
// package's TopK step on the same shape and reports both and their ratio, "x_<name>" (> 1: faster).
func benchTrainStepVs(b *testing.B, py, script, name string) {
	out, err := exec.Command(py, "-c", script).CombinedOutput()
	if err != nil {
		b.Fatalf("%s baseline: %v\n%s", name, err, out)
	}
	base, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		b.Fatalf("%s baseline output %q: %v", name, out, err)
	}
	const c, f, k, batch = 64, 512, 16, 4096
	x, _ := planted(1, batch, c, 256, 8, 0.1)
	s, _ := New(c, f, k, TopK, 1)
	tr := NewTrainer(s, DefaultOptions())
	tr.Init(x, batch)
	tr.TrainStep(x, batch)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		tr.TrainStep(x, batch)
	}
	rate := float64(b.N*batch) / time.Since(start).Seconds()
	b.ReportMetric(rate, "vectors/s")
	b.ReportMetric(base, name+"_vectors/s")
	b.ReportMetric(rate/base, "x_"+name)
}

// torchStep is the same TopK SAE step in PyTorch eager, as a researcher writes it: autograd for the backward,
// torch.optim.Adam, the decoder gradient projected off its rows and the rows renormalised. Like the numpy
// baseline it has no auxiliary loss for dead features. It prints vectors per second over 20 timed steps.
const torchStep = `
import os, time, torch
torch.set_num_threads(len(os.sched_getaffinity(0)))  # as many threads as the Go trainer may use
torch.manual_seed(0)
C, F, k, B = 64, 512, 16, 4096
x = torch.randn(B, C)
w = torch.randn(F, C); w /= w.norm(dim=1, keepdim=True)
We = torch.nn.Parameter(w.T.clone()); Wd = torch.nn.Parameter(w); be = torch.nn.Parameter(torch.zeros(F))
bd = torch.nn.Parameter(x.mean(0))
opt = torch.optim.Adam([We, be, Wd, bd], lr=1e-3)
def step():
    pre = torch.relu((x - bd) @ We + be)
    v, i = pre.topk(k, dim=1)
    z = torch.zeros_like(pre).scatter(1, i, v)
    loss = ((z @ Wd + bd - x) ** 2).mean()
    opt.zero_grad(); loss.backward()
    with torch.no_grad():
        Wd.grad.sub_((Wd.grad * Wd).sum(1, keepdim=True) * Wd)
    opt.step()
    with torch.no_grad():
        Wd.div_(Wd.norm(dim=1, keepdim=True))
for _ in range(3): step()
t0 = time.perf_counter()
for _ in range(20): step()
print(20 * B / (time.perf_counter() - t0))
`

// BenchmarkTrainStepVsTorch reports this package's TopK step throughput and its ratio to PyTorch eager doing
// the same step on the same CPU in the same run (x_torch > 1: faster). Debian's python3-torch provides
// PyTorch; without it the benchmark is skipped, saying so.
func BenchmarkTrainStepVsTorch(b *testing.B) {
	var py string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import torch").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		b.Skip("PyTorch is not installed (Debian: apt install python3-torch): no PyTorch baseline")
	}
	benchTrainStepVs(b, py, torchStep, "torch")
}
