package autograd

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

const planesInput = "/input/planes"

// valueHead returns the net's value output and the seed row that turns it into f = W - L (or the scalar value).
func valueHead(m *pb.ModelProto) (string, []float64) {
	for _, o := range m.GetGraph().GetOutput() {
		if o.GetName() == "/output/wdl" {
			return o.GetName(), []float64{1, 0, -1}
		}
	}
	return "/output/value", []float64{1}
}

// refPlanes decodes up to n positions' input planes from an lc0 reference dump (nil when there is none).
func refPlanes(t *testing.T, net string, n int) [][]float64 {
	t.Helper()
	path := filepath.Join(filepath.Dir(testutil.Shared(t, "models")), "reference", "lc0", net+".refdump.jsonl")
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	var out [][]float64
	for _, rec := range testutil.ReadRefdump(t, path) {
		if len(out) == n {
			break
		}
		if len(rec.Planes) != testutil.NumPlanes {
			continue
		}
		x := make([]float64, testutil.NumPlanes*64)
		for i, v := range testutil.DecodePlanes(t, rec) {
			x[i] = float64(v) // lc0's plane values are small integers, exact in float32
		}
		out = append(out, x)
	}
	return out
}

func randomPlanes(rng *rand.Rand, n int) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		x := make([]float64, 112*64)
		for j := range x {
			if rng.Float64() < 0.1 {
				x[j] = 1
			}
		}
		for j := 111 * 64; j < 112*64; j++ { // lc0's all-ones plane
			x[j] = 1
		}
		out[i] = x
	}
	return out
}

// probeModel adds every Relu's input as a graph output, so ReLU sign flips within a step can be counted.
func probeModel(m *pb.ModelProto) (*pb.ModelProto, []string) {
	p := onnxgraph.Clone(m)
	var pre []string
	for _, n := range p.GetGraph().GetNode() {
		if n.GetOpType() == "Relu" {
			pre = append(pre, n.GetInput()[0])
			p.Graph.Output = append(p.Graph.Output, onnxgraph.UntypedOutput(n.GetInput()[0], pb.TensorProto_FLOAT))
		}
	}
	return p, pre
}

type netRun struct {
	value  string
	row    []float64
	fwd    *session // planes -> value, relu inputs
	bwd    *session // planes, seed -> value, grad
	nrelu  int
	probes []string
}

func openNet(t *testing.T, path string) *netRun {
	t.Helper()
	m, _, err := onnxgraph.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	value, row := valueHead(m)
	bm, res, err := Build(m, Spec{Seeds: []string{value}, Wrt: []string{planesInput}})
	if err != nil {
		t.Fatal(err)
	}
	pm, pre := probeModel(m)
	r := &netRun{value: value, row: row, probes: pre}
	if r.fwd, err = newSession(pm, []string{planesInput}, append([]string{value}, pre...), pb.TensorProto_FLOAT, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.fwd.Destroy(); err != nil {
			t.Error(err)
		}
	})
	if r.bwd, err = newSession(bm, []string{planesInput, res.SeedInputs[value]}, []string{value, res.Grads[planesInput]}, pb.TensorProto_FLOAT, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.bwd.Destroy(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func batch(xs [][]float64) array {
	a := array{dims: []int64{int64(len(xs)), 112, 8, 8}}
	for _, x := range xs {
		a.data = append(a.data, x...)
	}
	return a
}

// f evaluates the value head (W - L or v) for each row, and returns the Relu inputs too.
func (r *netRun) f(t *testing.T, xs [][]float64) ([]float64, []array) {
	t.Helper()
	o, err := r.fwd.run([]array{batch(xs)})
	if err != nil {
		t.Fatal(err)
	}
	w := len(r.row)
	v := make([]float64, len(xs))
	for i := range v {
		v[i] = dot(r.row, o[0].data[i*w:(i+1)*w])
	}
	return v, o[1:]
}

func (r *netRun) grad(t *testing.T, xs [][]float64) [][]float64 {
	t.Helper()
	w := len(r.row)
	seed := array{dims: []int64{int64(len(xs)), int64(w)}}
	for range xs {
		seed.data = append(seed.data, r.row...)
	}
	o, err := r.bwd.run([]array{batch(xs), seed})
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, len(xs))
	for i := range out {
		out[i] = o[1].data[i*112*64 : (i+1)*112*64]
	}
	return out
}

func unitDirection(rng *rand.Rand) []float64 {
	v := make([]float64, 112*64)
	n := 0.0
	for i := range v {
		v[i] = rng.NormFloat64()
		n += v[i] * v[i]
	}
	for i := range v {
		v[i] /= math.Sqrt(n)
	}
	return v
}

func netFiles(t *testing.T) []string {
	dir := testutil.Shared(t, "models")
	var files []string
	for _, pat := range []string{"*.onnx", "synthetic/*.onnx"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		testutil.Missing(t, "no nets in %s", dir)
	}
	return files
}

// Finite differences on the real nets (float32: ORT's CPU provider has no double Conv).
//
// For each position, three unit directions v: the computed gradient's own direction (the strongest signal,
// ad = |g|, exposing any error with a component along g) and two random ones (exposing errors orthogonal to
// it, at the weaker signal ~|g|/sqrt(7168)). f = W - L (or the scalar value) is evaluated at x, x +- h v for
// h in fdSteps, with every Relu's input exposed as an extra output so sign flips between x and x +- h v can be
// counted on each side.
//
// Step and bound. The error of a difference quotient has three sources:
//   - rounding: f is float32 with an error eta that grows with the value head's logits (measured 1e-7..3e-6
//     across the nets); eta is estimated per net from |f(x+tv) + f(x-tv) - 2f(x)|/2 at t = 1e-5, 3e-5 (the
//     linear part cancels and curvature is ~1e-10, so this sees rounding only and not the gradient under
//     test), and a quotient over step h carries at most 2*eta/h of it;
//   - truncation: h^2/6 |f”'| for central differences, below 1e-4 |ad| at h = 1e-2 even along the gradient,
//     where curvature is largest (measured 1% at h = 0.1, hence no larger steps);
//   - ReLU kinks inside the step, which make the quotient an average of two slopes.
//
// So each case takes the largest step whose central difference crosses no kink (bound 2*(2 eta/h) +
// 2e-3 |ad|); failing that, the largest step at which one side is kink-free, with that one-sided quotient
// (truncation h/2 |f”|, bound 2*(2 eta/h) + 1e-2 |ad|); failing both, the case is counted and logged, and
// checked only against a relaxed bound (+ 10% of |ad|) that still catches gross errors.
var fdSteps = []float64{1e-2, 3e-3, 1e-3, 3e-4}

func TestNetsFiniteDifferences(t *testing.T) {
	needORT(t)
	for _, path := range netFiles(t) {
		net := strings.TrimSuffix(filepath.Base(path), ".onnx")
		t.Run(net, func(t *testing.T) { checkNet(t, net, path) })
	}
}

func checkNet(t *testing.T, net, path string) {
	r := openNet(t, path)
	rng := rand.New(rand.NewPCG(seedOf(net), 2))
	xs := refPlanes(t, net, 2)
	source := "lc0 reference positions"
	if xs == nil {
		xs, source = randomPlanes(rng, 2), "random 0/1 planes"
	}
	g := r.grad(t, xs)
	// Forward outputs must be unchanged by the appended backward graph.
	f0, _ := r.f(t, xs)
	zeros := array{dims: []int64{int64(len(xs)), int64(len(r.row))}, data: make([]float64, len(xs)*len(r.row))}
	yb, err := r.bwd.run([]array{batch(xs), zeros})
	if err != nil {
		t.Fatal(err)
	}
	for p := range xs {
		if fb := dot(r.row, yb[0].data[p*len(r.row):(p+1)*len(r.row)]); math.Abs(fb-f0[p]) > 1e-5 {
			t.Errorf("pos %d: value %g with the backward graph, %g without", p, fb, f0[p])
		}
	}
	type fdCase struct {
		p    int
		kind string
		v    []float64
	}
	var cases []fdCase
	for p := range xs {
		gn := math.Sqrt(dot(g[p], g[p]))
		if gn == 0 {
			t.Fatalf("pos %d: zero gradient", p)
		}
		gd := make([]float64, len(g[p]))
		for i := range gd {
			gd[i] = g[p][i] / gn
		}
		cases = append(cases, fdCase{p, "gradient direction", gd}, fdCase{p, "random direction", unitDirection(rng)}, fdCase{p, "random direction", unitDirection(rng)})
	}
	// One batch. Per case: x, then x + s v and x - s v for the noise probes and for every step.
	probes := []float64{1e-5, 3e-5}
	offsets := append(append([]float64{}, probes...), fdSteps...)
	per := 1 + 2*len(offsets)
	var rows [][]float64
	for _, c := range cases {
		rows = append(rows, xs[c.p])
		for _, s := range offsets {
			for _, sgn := range []float64{1, -1} {
				x := make([]float64, len(xs[c.p]))
				for i := range x {
					x[i] = xs[c.p][i] + sgn*s*c.v[i]
				}
				rows = append(rows, x)
			}
		}
	}
	fv, pre := r.f(t, rows)
	flipsBetween := func(a, b int) int {
		n := 0
		for _, t := range pre {
			k := len(t.data) / len(rows)
			for i := range k {
				if (t.data[a*k+i] > 0) != (t.data[b*k+i] > 0) {
					n++
				}
			}
		}
		return n
	}
	eta := 6e-8 // one ulp of 0.5 at least
	for ci := range cases {
		base := ci * per
		for k := range probes {
			eta = max(eta, math.Abs(fv[base+1+2*k]+fv[base+2+2*k]-2*fv[base])/2)
		}
	}
	kinked := 0
	for ci, c := range cases {
		base := ci * per
		ad := dot(g[c.p], c.v)
		var fd, bound, h float64
		how := ""
		for si, s := range fdSteps {
			plus := base + 1 + 2*(len(probes)+si)
			fp, fm := flipsBetween(base, plus), flipsBetween(base, plus+1)
			switch {
			case fp == 0 && fm == 0:
				fd, h, how = (fv[plus]-fv[plus+1])/(2*s), s, "central"
				bound = 4*eta/s + 2e-3*math.Abs(ad)
			case how == "" && fp == 0:
				fd, h, how = (fv[plus]-fv[base])/s, s, "forward"
				bound = 4*eta/s + 1e-2*math.Abs(ad)
			case how == "" && fm == 0:
				fd, h, how = (fv[base]-fv[plus+1])/s, s, "backward"
				bound = 4*eta/s + 1e-2*math.Abs(ad)
			}
			if how == "central" {
				break
			}
		}
		if how == "" {
			kinked++
			s := fdSteps[len(fdSteps)-1]
			plus := base + 1 + 2*(len(probes)+len(fdSteps)-1)
			fd, h, how = (fv[plus]-fv[plus+1])/(2*s), s, "central across kinks"
			bound = 4*eta/s + 0.1*math.Abs(ad)
			t.Logf("pos %d %s: ReLUs flip on both sides even at h=%g (%d and %d): relaxed bound %.3g, |fd-ad| %.3g",
				c.p, c.kind, s, flipsBetween(base, plus), flipsBetween(base, plus+1), bound, math.Abs(fd-ad))
		}
		if math.Abs(fd-ad) > bound {
			t.Errorf("pos %d %s (%s difference, h=%g): backward %.7g, numeric %.7g, |diff| %.3g > %.3g",
				c.p, c.kind, how, h, ad, fd, math.Abs(fd-ad), bound)
		}
	}
	t.Logf("%s: %d directional checks on %s, rounding eta %.2g, %d with ReLU flips on both sides at every step",
		net, len(cases), source, eta, kinked)
}

// TestPrunesOffPath checks that the backward graph walks only nodes between Wrt and Seeds: no policy head when
// seeding the value, nothing below an intermediate Wrt.
func TestPrunesOffPath(t *testing.T) {
	path := filepath.Join(testutil.Shared(t, "models"), "maia-1100.onnx")
	m, _, err := onnxgraph.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		wrt    string
		absent []string
	}{
		{planesInput, []string{"/grad/policy", "/grad/output/policy"}},
		{"/block2/conv2/relu", []string{"/grad/policy", "/grad/block0", "/grad/block1", "/grad/block2/conv1", "/grad/inputconv"}},
	} {
		bm, res, err := Build(m, Spec{Seeds: []string{"/output/wdl"}, Wrt: []string{tc.wrt}})
		if err != nil {
			t.Fatal(err)
		}
		added := bm.GetGraph().GetNode()[len(m.GetGraph().GetNode()):]
		convs := 0
		for _, n := range added {
			for _, a := range tc.absent {
				if strings.HasPrefix(n.GetName(), a) {
					t.Errorf("wrt %s: backward node %q is off the path", tc.wrt, n.GetName())
				}
			}
			if n.GetOpType() == "Conv" || n.GetOpType() == "ConvTranspose" {
				convs++
			}
		}
		if _, ok := res.Grads[tc.wrt]; !ok {
			t.Errorf("no gradient output for %s", tc.wrt)
		}
		t.Logf("wrt %s: %d backward nodes, %d convolutions", tc.wrt, len(added), convs)
	}
}

// TestNetsAllHeads seeds every output (policy logits, WDL/value, moves-left) with random cotangents, so the
// policy heads' Gather, Slice, Concat and attention paths are differentiated too, and compares the directional
// derivative along the gradient with a central difference of L = sum_k <seed_k, out_k>. The step h = 1e-3
// keeps float32 rounding (2 eta/h with eta ~ |L| 1e-7) far below the signal |g|, but ReLUs may flip within
// it, so the bound is a loose 2% of |g|: this test catches wrong rules, not small errors (the value-head
// test above does that).
func TestNetsAllHeads(t *testing.T) {
	needORT(t)
	for _, path := range netFiles(t) {
		net := strings.TrimSuffix(filepath.Base(path), ".onnx")
		t.Run(net, func(t *testing.T) {
			m, _, err := onnxgraph.Read(path)
			if err != nil {
				t.Fatal(err)
			}
			var outs []string
			for _, o := range m.GetGraph().GetOutput() {
				outs = append(outs, o.GetName())
			}
			bm, res, err := Build(m, Spec{Seeds: outs, Wrt: []string{planesInput}})
			if err != nil {
				t.Fatal(err)
			}
			fwd, err := newSession(m, []string{planesInput}, outs, pb.TensorProto_FLOAT, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := fwd.Destroy(); err != nil {
					t.Error(err)
				}
			}()
			ins := []string{planesInput}
			for _, o := range outs {
				ins = append(ins, res.SeedInputs[o])
			}
			bwd, err := newSession(bm, ins, []string{res.Grads[planesInput]}, pb.TensorProto_FLOAT, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := bwd.Destroy(); err != nil {
					t.Error(err)
				}
			}()
			rng := rand.New(rand.NewPCG(seedOf(net), 4))
			x := randomPlanes(rng, 1)
			y, err := fwd.run([]array{batch(x)})
			if err != nil {
				t.Fatal(err)
			}
			feeds := []array{batch(x)}
			for _, yo := range y {
				feeds = append(feeds, draw(rng, normal, yo.dims))
			}
			o, err := bwd.run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			g := o[0].data
			gn := math.Sqrt(dot(g, g))
			if gn == 0 || math.IsNaN(gn) || math.IsInf(gn, 0) {
				t.Fatalf("gradient norm %g", gn)
			}
			const h = 1e-3
			loss := func(sign float64) float64 {
				xp := make([]float64, len(g))
				for i := range xp {
					xp[i] = x[0][i] + sign*h*g[i]/gn
				}
				yy, err := fwd.run([]array{batch([][]float64{xp})})
				if err != nil {
					t.Fatal(err)
				}
				l := 0.0
				for k := range yy {
					l += dot(feeds[k+1].data, yy[k].data)
				}
				return l
			}
			fd := (loss(1) - loss(-1)) / (2 * h)
			if math.Abs(fd-gn) > 0.02*gn {
				t.Errorf("along the gradient: backward %.6g, numeric %.6g", gn, fd)
			}
			t.Logf("%s: seeds %v: |g| %.4g, numeric %.4g", net, outs, gn, fd)
		})
	}
}
