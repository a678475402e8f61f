package lens

import (
	"math"
	"sort"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// Why an adaptive rule: through ReLUs the path integrand f'(a) = grad f(x0 + a (x - x0)) . (x - x0) has
// thousands of kinks, so no fixed rule converges fast (maia-1100's value: |ig_gap| of 1-5% of
// |f(x) - f(x0)| is still common at 1,024 Gauss-Legendre nodes). But the exact change of f over any
// interval [a, b] is f(b) - f(a), which the runs that give the gradients also give, so each trapezoid
// interval's own error e = (b - a)/2 (f'(a) + f'(b)) - (f(b) - f(a)) is known, and the gap is their sum.
// Halving the intervals with the largest |e| spends gradient rows where the kinks are.

// igNode is one node of a position's path.
type igNode struct {
	a    float64
	grad []float32 // d target / d input at the node
	val  float64   // the target at the node
	d    float64   // f'(a): grad . (x - x0)
}

// igPath is one position's path under the adaptive rule, its nodes sorted by a.
type igPath struct {
	i     int
	x, x0 []float32
	nodes []igNode
}

// pathPoint asks for the node at a on a path.
type pathPoint struct {
	p *igPath
	a float64
}

// igHeldBytes bounds the gradient rows held at once: positions are refined in groups that fit.
const igHeldBytes = 512 << 20

// produceAdaptive runs integrated gradients with the adaptive trapezoid rule: every position starts with
// ig.steps equal intervals; while |gap| > maxGap |f(x) - f(x0)| and fewer than maxSteps intervals are
// used, the half of its intervals with the largest |e| are halved. All positions' new nodes of a round
// run together, igRows rows at a time.
func (ig *integrator) produceAdaptive(b *Batch, out *Outputs) ([]BatchResult, error) {
	const per = board.NumPlanes * 64
	bn := b.Len()
	o := newIGOut(bn)
	group := max(1, igHeldBytes/((ig.maxSteps+1)*per*4))
	for lo := 0; lo < bn; lo += group {
		hi := min(bn, lo+group)
		var paths []*igPath
		var pts []pathPoint
		for i := lo; i < hi; i++ {
			x := b.Planes[i*per : (i+1)*per]
			x0 := make([]float32, per)
			ig.bl.fill(x0, x, b)
			p := &igPath{i: i, x: x, x0: x0}
			paths = append(paths, p)
			for k := 0; k <= ig.steps; k++ {
				pts = append(pts, pathPoint{p, float64(k) / float64(ig.steps)})
			}
		}
		for len(pts) > 0 {
			if err := ig.evaluate(b, out, pts); err != nil {
				return nil, err
			}
			pts = pts[:0]
			for _, p := range paths {
				pts = append(pts, p.refine(ig.maxGap, ig.maxSteps)...)
			}
		}
		for _, p := range paths {
			i, n := p.i, len(p.nodes)
			dst := o.ig[i*per : (i+1)*per]
			// Trapezoid weights on uneven nodes: half of each node's two neighbouring intervals.
			w := make([]float64, n)
			for k := range n {
				w[k] = (p.nodes[min(n-1, k+1)].a - p.nodes[max(0, k-1)].a) / 2
			}
			var sum float64
			for j := range dst {
				dx := float64(p.x[j]) - float64(p.x0[j])
				if dx == 0 {
					continue
				}
				var acc float64
				for k, nd := range p.nodes {
					acc += w[k] * float64(nd.grad[j])
				}
				dst[j] = float32(dx * acc)
				sum += dx * acc
			}
			df := p.nodes[n-1].val - p.nodes[0].val
			o.delta[i], o.gap[i], o.steps[i] = float32(df), float32(sum-df), float32(n-1)
			Heatmap(o.heat[i*64:(i+1)*64], dst, p.x, b.Positions[i].SideToMove() == board.Black, b.Transform(i), "grad", ig.planes, ig.normalize)
		}
	}
	return o.results(), nil
}

// evaluate runs the target and its input gradient at the points and adds them to their paths as nodes.
func (ig *integrator) evaluate(b *Batch, out *Outputs, pts []pathPoint) error {
	const per = board.NumPlanes * 64
	gradOut := ig.io.Grads[ig.n.Input]
	for lo := 0; lo < len(pts); lo += igRows {
		chunk := pts[lo:min(len(pts), lo+igRows)]
		rows := len(chunk)
		in := make([]float32, rows*per)
		rowPos := make([]int, rows)
		for r, pt := range chunk {
			row := in[r*per : (r+1)*per]
			for j := range row {
				row[j] = float32(float64(pt.p.x0[j]) + pt.a*(float64(pt.p.x[j])-float64(pt.p.x0[j])))
			}
			rowPos[r] = pt.p.i
		}
		seeds, idx, err := ig.seeds(b, out.Heads, rowPos)
		if err != nil {
			return err
		}
		inputs := map[string]model.Tensor{ig.n.Input: {Shape: []int64{int64(rows), board.NumPlanes, 8, 8}, Data: in}}
		for tensor, s := range seeds {
			inputs[ig.io.SeedInputs[tensor]] = s
		}
		raw, err := out.Runner.Run(ig.plan, inputs, append(headTensors(ig.n), gradOut))
		if err != nil {
			return err
		}
		heads, err := ig.n.DecodeHeads(raw, rows)
		if err != nil {
			return err
		}
		g := raw[gradOut].Data
		for r, pt := range chunk {
			val, err := ig.value(heads, b, pt.p.i, idx, r)
			if err != nil {
				return err
			}
			grad := append([]float32(nil), g[r*per:(r+1)*per]...)
			var d float64
			for j, gj := range grad {
				d += float64(gj) * (float64(pt.p.x[j]) - float64(pt.p.x0[j]))
			}
			pt.p.nodes = append(pt.p.nodes, igNode{a: pt.a, grad: grad, val: val, d: d})
		}
	}
	sorted := map[*igPath]bool{}
	for _, pt := range pts {
		if p := pt.p; !sorted[p] {
			sort.Slice(p.nodes, func(i, j int) bool { return p.nodes[i].a < p.nodes[j].a })
			sorted[p] = true
		}
	}
	return nil
}

// refine returns the midpoints of the intervals to halve next: none when the gap is within maxGap of
// |f(x) - f(x0)| or maxSteps intervals are used; otherwise the half of the intervals whose trapezoid
// misses f's change over them most (none that is exact), capped at maxSteps intervals in all.
func (p *igPath) refine(maxGap float64, maxSteps int) []pathPoint {
	n := len(p.nodes) - 1
	type interval struct {
		k     int
		e     float64
		noise float64 // what float64 rounding alone can leave in e
	}
	ivs := make([]interval, n)
	var gap float64
	for k := range n {
		l, r := p.nodes[k], p.nodes[k+1]
		e := (r.a-l.a)/2*(l.d+r.d) - (r.val - l.val)
		gap += e
		ivs[k] = interval{k, math.Abs(e), 1e-13 * (math.Abs(l.val) + math.Abs(r.val) + (r.a-l.a)*(math.Abs(l.d)+math.Abs(r.d)))}
	}
	if math.Abs(gap) <= maxGap*math.Abs(p.nodes[n].val-p.nodes[0].val) || n >= maxSteps {
		return nil
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].e > ivs[j].e })
	var pts []pathPoint
	for _, v := range ivs[:min((n+1)/2, maxSteps-n)] {
		if v.e <= v.noise { // exact already: halving it cannot help
			continue
		}
		l, r := p.nodes[v.k].a, p.nodes[v.k+1].a
		if mid := (l + r) / 2; l < mid && mid < r { // an interval float64 cannot halve stays as it is
			pts = append(pts, pathPoint{p, mid})
		}
	}
	return pts
}
