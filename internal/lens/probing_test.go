package lens

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/concepts"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/probe"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// withCorrupt pairs each position of b with the next one (cyclically) as its corrupted counterpart.
func withCorrupt(b *Batch) *Batch {
	n, plane := b.Len(), board.NumPlanes*64
	for i := range n {
		j := (i + 1) % n
		b.CorruptPositions = append(b.CorruptPositions, b.Positions[j])
		b.CorruptPlanes = append(b.CorruptPlanes, b.Planes[j*plane:(j+1)*plane]...)
	}
	return b
}

// demoLensValues resolves a lens's options with what it needs beyond its defaults to run on the demo network.
func demoLensValues(t *testing.T, l *Lens) (Values, error) {
	t.Helper()
	if l == Steering { // block0's output of the demo net has 4 channels
		v, err := l.Resolve(map[string]string{"module": "block0/conv2/relu", "direction": "dir.npy"})
		if err == nil {
			WithDirection(v, []float32{1, -1, 0.5, 0}, nil)
		}
		return v, err
	}
	if l == SAE {
		v, err := l.Resolve(map[string]string{"sae": "demo-sae"})
		if err == nil {
			WithSAE(v, demoSAE(t))
		}
		return v, err
	}
	if l != Probing {
		return l.Resolve(nil)
	}
	v, err := l.Resolve(map[string]string{"probe": "demo-material.json"})
	if err == nil {
		WithProbes(v, demoMaterialProbe(t))
	}
	return v, err
}

// randomGames plays n positions of random legal moves from the start, deterministically.
func randomBatch(t *testing.T, n int, seed uint64) *Batch {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	b := &Batch{}
	planes := make([]float32, board.NumPlanes*64)
	g := board.NewGame(board.StartPosition())
	for b.Len() < n {
		moves := g.Current().LegalMoves()
		if len(moves) == 0 || g.Ply() > 120 {
			g = board.NewGame(board.StartPosition())
			continue
		}
		g.Play(moves[rng.IntN(len(moves))])
		g.Encode(board.FillFENOnly, planes)
		b.Planes = append(b.Planes, planes...)
		b.Positions = append(b.Positions, g.Current())
	}
	return b
}

// demoMaterialProbe trains a material-balance probe on the demo network's block output.
func demoMaterialProbe(t *testing.T) *probe.File {
	t.Helper()
	r := runtimeFor(t)
	n := model.Demo()
	v, _ := Activation.Resolve(map[string]string{"pattern": "^block0/conv2/relu$"})
	e, err := NewEngine(r, n, []Spec{{Activation, v}}, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := randomBatch(t, 2000, 1)
	_, res, err := e.Run(b)
	if err != nil {
		t.Fatal(err)
	}
	f := probe.NewFitter("block0/conv2/relu", res[0].Shape, probe.FitOptions{L2: 1e-6, MaxRows: 4000})
	for i, p := range b.Positions {
		if err := f.Add(res[0].Row(i), float64(concepts.MaterialBalance(p)), i%5 == 0); err != nil {
			t.Fatal(err)
		}
	}
	p, err := f.Fit()
	if err != nil {
		t.Fatal(err)
	}
	pf := &probe.File{Format: probe.Format, FormatVersion: 1, Model: probe.ModelID{Path: n.Path, SHA256: n.SHA256}, Concept: "material-balance", Kind: "regression", Probes: []probe.Probe{*p}}
	if p.Score < 0.999 {
		t.Fatalf("the demo network's block output is linear in material, yet the probe's held-out R^2 is %g (train %g)", p.Score, p.TrainScore)
	}
	return pf
}

// TestProbingDemoMaterial applies a probe trained on the demo network, whose block output is an affine map
// of the material planes: it must predict the material balance of unseen positions.
func TestProbingDemoMaterial(t *testing.T) {
	r := runtimeFor(t)
	v, err := Probing.Resolve(map[string]string{"probe": "demo-material.json"})
	if err != nil {
		t.Fatal(err)
	}
	WithProbes(v, demoMaterialProbe(t))
	e, err := NewEngine(r, model.Demo(), []Spec{{Probing, v}}, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := randomBatch(t, 50, 99)
	_, res, err := e.Run(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Key != "block0/conv2/relu_probe" {
		t.Fatalf("results %v", res)
	}
	for i, p := range b.Positions {
		want := float64(concepts.MaterialBalance(p))
		if got := float64(res[0].Data[i]); math.Abs(got-want) > 0.05 {
			t.Errorf("%s: probe says %g, material balance %g", p.FEN(), got, want)
		}
	}
	// Another network is refused.
	maia, err := model.Load(testutil.Shared(t, "models/maia-1100.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Probing.Compatible(maia, v); err == nil {
		t.Error("a probe of the demo network was accepted for maia-1100")
	}
}

// TestProbingNeedsLoadedFile: the lens reads no file, so a path the caller did not load is an error naming it,
// and no path at all says how to pass one.
func TestProbingNeedsLoadedFile(t *testing.T) {
	for raw, want := range map[string]string{"": "pass --probe", "p.json": "p.json was not loaded"} {
		v, err := Probing.Resolve(map[string]string{"probe": raw})
		if err != nil {
			t.Fatal(err)
		}
		if err := Probing.Compatible(model.Demo(), v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("probe %q: error %v, want one containing %q", raw, err, want)
		}
	}
}
