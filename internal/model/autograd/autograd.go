package autograd

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/lczerolens/lczerolens/internal/model/shape"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// Spec says which gradients to build.
type Spec struct {
	// Seeds are forward tensors whose cotangent is given: each gets a new graph input "<name>/seed" of the same
	// shape and element type.
	Seeds []string
	// Wrt are the tensors (graph inputs or any node output) to return gradients for.
	Wrt []string
	// Mode selects the propagation rules: gradients (the zero value) or layer-wise relevance propagation.
	Mode Mode
	// Epsilon is the LRP stabiliser (LRP modes only; must be > 0).
	Epsilon float64
	// Composite assigns other rules to linear layers by type (ModeLRPEpsilon only; the zero value: the
	// epsilon rule everywhere), as zennit's composites do.
	Composite Composite
}

// Mode is what a backward graph propagates.
type Mode int

// The modes. In the LRP modes the seed inputs hold coefficients c_k and the backward graph starts from the
// relevance c_k * tensor_k, so the returned "gradients" are relevances that sum to about L itself.
const (
	ModeGradient   Mode = iota // reverse-mode gradients of L
	ModeLRPEpsilon             // LRP, epsilon rule for linear ops
	ModeLRPZPlus               // LRP, z+ rule for Conv/MatMul/Gemm with constant weights
)

// String names the mode.
func (m Mode) String() string {
	switch m {
	case ModeGradient:
		return "gradient"
	case ModeLRPEpsilon:
		return "lrp-epsilon"
	case ModeLRPZPlus:
		return "lrp-zplus"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

func (m Mode) lrp() bool { return m == ModeLRPEpsilon || m == ModeLRPZPlus }

// ruleSet returns the rules of a mode.
func ruleSet(m Mode) map[string]rule {
	if m.lrp() {
		return lrpRules
	}
	return rules
}

// GradientIO names what Build added to the graph: the seed inputs and the gradient (or relevance) outputs.
type GradientIO struct {
	SeedInputs map[string]string // seeded tensor -> graph input holding its cotangent (seed)
	Grads      map[string]string // wrt tensor -> graph output holding its gradient
}

// UnsupportedOpError reports an op on a path from Wrt to Seeds that has no gradient rule (or no rule for the
// input that the path goes through, then named by Input).
type UnsupportedOpError struct {
	Op, Node string
	Input    string // the input the path needs a gradient for, when the op has rules for its other inputs only
	Mode     Mode   // the rule set that lacks the op
}

// Error implements error.
func (e *UnsupportedOpError) Error() string {
	what := "gradient"
	if e.Mode.lrp() {
		what = "relevance (LRP)"
	}
	if e.Input != "" {
		return fmt.Sprintf("autograd: no %s rule for op %q (node %q) w.r.t. input %q", what, e.Op, e.Node, e.Input)
	}
	return fmt.Sprintf("autograd: no %s rule for op %q (node %q)", what, e.Op, e.Node)
}

// ErrSpec reports a Spec that does not fit the model (unknown tensor, non-float tensor, duplicates, ...).
var ErrSpec = errors.New("autograd: bad spec")

// minOpset is the oldest default-domain opset whose operator semantics the rules assume (ReduceSum, Split,
// Squeeze/Unsqueeze taking axes as inputs; Softmax over one axis).
const minOpset = 13

// SupportedOps lists the ops with a gradient rule, sorted.
func SupportedOps() []string {
	var out []string
	for op, r := range rules {
		if r.grad != nil {
			out = append(out, op)
		}
	}
	sort.Strings(out)
	return out
}

// NonDifferentiableOps lists the ops recognised as carrying no gradient (integer and boolean results, shape
// arithmetic, piecewise-constant functions), sorted. Paths through them are cut, not flagged.
func NonDifferentiableOps() []string {
	var out []string
	for op, r := range rules {
		if r.grad == nil {
			out = append(out, op)
		}
	}
	sort.Strings(out)
	return out
}

// plan is the analysis shared by Check and Build.
type plan struct {
	spec   Spec
	rules  map[string]rule // the mode's rule set
	g      *pb.GraphProto
	opset  int64
	ix     *onnxgraph.Index
	inputs map[string]bool // graph input names (an initializer that is also an input is not constant)
	inf    *shape.Inference
	nodes  []*pb.NodeProto // topological order
	active []*pb.NodeProto // nodes on a path from Wrt to Seeds, topological order
	need   map[*pb.NodeProto][]bool
	fwd    map[string]bool // tensors that depend differentiably on some Wrt
	bwd    map[string]bool // tensors some Seed depends on differentiably
}

// diffInput reports whether gradient can flow from n's outputs to its input i.
func diffInput(n *pb.NodeProto, i int) bool {
	r, ok := rules[n.GetOpType()]
	if !ok {
		return true // unknown: assume it matters, so Check can flag it
	}
	if r.grad == nil {
		return false
	}
	if r.diff == nil {
		return true
	}
	return r.diff(n, i)
}

func newPlan(m *pb.ModelProto, spec Spec) (*plan, error) {
	if m.GetGraph() == nil {
		return nil, fmt.Errorf("%w: model has no graph", ErrSpec)
	}
	p := &plan{spec: spec, rules: ruleSet(spec.Mode), g: m.GetGraph(), opset: onnxgraph.OpsetVersion(m)}
	if p.opset != 0 && p.opset < minOpset {
		return nil, fmt.Errorf("autograd: opset %d not supported (need >= %d)", p.opset, minOpset)
	}
	if p.opset == 0 {
		p.opset = minOpset
	}
	var err error
	if p.nodes, err = topoSort(p.g); err != nil {
		return nil, err
	}
	p.ix = onnxgraph.NewIndex(p.g)
	p.inputs = map[string]bool{}
	for _, v := range p.g.GetInput() {
		p.inputs[v.GetName()] = true
	}
	p.inf = shape.Infer(&pb.GraphProto{Node: p.nodes, Input: p.g.GetInput(), Initializer: p.g.GetInitializer(), ValueInfo: p.g.GetValueInfo()})
	if err := p.checkSpec(spec); err != nil {
		return nil, err
	}
	p.fwd = map[string]bool{}
	for _, w := range spec.Wrt {
		p.fwd[w] = true
	}
	for _, n := range p.nodes {
		flows := false
		for i, in := range n.GetInput() {
			if in != "" && p.fwd[in] && diffInput(n, i) {
				flows = true
				break
			}
		}
		if !flows {
			continue
		}
		for _, o := range n.GetOutput() {
			if e := p.inf.Get(o).Elem; o != "" && (e == 0 || shape.IsFloat(e)) {
				p.fwd[o] = true
			}
		}
	}
	p.bwd = map[string]bool{}
	for _, s := range spec.Seeds {
		p.bwd[s] = true
	}
	for i := len(p.nodes) - 1; i >= 0; i-- {
		n := p.nodes[i]
		if !slices.ContainsFunc(n.GetOutput(), func(o string) bool { return o != "" && p.bwd[o] }) {
			continue
		}
		for j, in := range n.GetInput() {
			if in != "" && diffInput(n, j) {
				p.bwd[in] = true
			}
		}
	}
	p.need = map[*pb.NodeProto][]bool{}
	for _, n := range p.nodes {
		if !slices.ContainsFunc(n.GetOutput(), func(o string) bool { return o != "" && p.fwd[o] && p.bwd[o] }) {
			continue
		}
		need := make([]bool, len(n.GetInput()))
		any := false
		for i, in := range n.GetInput() {
			if in != "" && p.fwd[in] && p.bwd[in] && diffInput(n, i) {
				need[i], any = true, true
			}
		}
		if any {
			p.active = append(p.active, n)
			p.need[n] = need
		}
	}
	return p, nil
}

func (p *plan) checkSpec(spec Spec) error {
	if len(spec.Seeds) == 0 || len(spec.Wrt) == 0 {
		return fmt.Errorf("%w: need at least one seed and one wrt tensor", ErrSpec)
	}
	switch {
	case spec.Mode.lrp() && (!(spec.Epsilon > 0) || math.IsInf(spec.Epsilon, 1)):
		return fmt.Errorf("%w: %s needs a finite epsilon > 0, got %g", ErrSpec, spec.Mode, spec.Epsilon)
	case spec.Mode != ModeGradient && !spec.Mode.lrp():
		return fmt.Errorf("%w: unknown mode %d", ErrSpec, int(spec.Mode))
	case spec.Composite != (Composite{}) && spec.Mode != ModeLRPEpsilon:
		return fmt.Errorf("%w: a composite (%s) needs %s, not %s", ErrSpec, spec.Composite, ModeLRPEpsilon, spec.Mode)
	}
	if err := spec.Composite.check(); err != nil {
		return fmt.Errorf("%w: %v", ErrSpec, err)
	}
	inputs := p.inputs
	check := func(kind, name string, seen map[string]bool) error {
		if seen[name] {
			return fmt.Errorf("%w: %s %q listed twice", ErrSpec, kind, name)
		}
		seen[name] = true
		_, produced := p.ix.Producer[name]
		_, isInit := p.ix.Initializers[name]
		if !produced && !inputs[name] {
			if isInit {
				return fmt.Errorf("%w: %s %q is an initializer (weights get no gradients)", ErrSpec, kind, name)
			}
			return fmt.Errorf("%w: %s %q: no such tensor", ErrSpec, kind, name)
		}
		if e := p.inf.Get(name).Elem; e != 0 && e != pb.TensorProto_FLOAT && e != pb.TensorProto_DOUBLE {
			return fmt.Errorf("%w: %s %q has element type %v, need float or double", ErrSpec, kind, name, e)
		}
		return nil
	}
	seen := map[string]bool{}
	for _, s := range spec.Seeds {
		if err := check("seed", s, seen); err != nil {
			return err
		}
	}
	seen = map[string]bool{}
	for _, w := range spec.Wrt {
		if err := check("wrt", w, seen); err != nil {
			return err
		}
	}
	return nil
}

// topoSort returns g's nodes in a topological order (the given one when it already is, as ONNX requires).
func topoSort(g *pb.GraphProto) ([]*pb.NodeProto, error) {
	nodes := g.GetNode()
	producer := map[string]int{}
	for i, n := range nodes {
		for _, o := range n.GetOutput() {
			if o != "" {
				producer[o] = i
			}
		}
	}
	sorted := true
	for i, n := range nodes {
		for _, in := range n.GetInput() {
			if j, ok := producer[in]; ok && j >= i {
				sorted = false
			}
		}
	}
	if sorted {
		return nodes, nil
	}
	state := make([]int, len(nodes)) // 0 new, 1 visiting, 2 done
	out := make([]*pb.NodeProto, 0, len(nodes))
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case 1:
			return fmt.Errorf("autograd: graph has a cycle through node %q", nodes[i].GetName())
		case 2:
			return nil
		}
		state[i] = 1
		for _, in := range nodes[i].GetInput() {
			if j, ok := producer[in]; ok {
				if err := visit(j); err != nil {
					return err
				}
			}
		}
		state[i] = 2
		out = append(out, nodes[i])
		return nil
	}
	for i := range nodes {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func nodeLabel(n *pb.NodeProto) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	if len(n.GetOutput()) > 0 {
		return n.GetOutput()[0]
	}
	return n.GetOpType()
}

// unsupported returns the first active node (in forward order) that lacks a rule for an input it needs.
func (p *plan) unsupported() error {
	mode := p.spec.Mode
	for _, n := range p.active {
		r, ok := p.rules[n.GetOpType()]
		if !ok || r.grad == nil {
			return &UnsupportedOpError{Op: n.GetOpType(), Node: nodeLabel(n), Mode: mode}
		}
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			return &UnsupportedOpError{Op: d + "." + n.GetOpType(), Node: nodeLabel(n), Mode: mode}
		}
		if need := max(r.arity, 1); len(n.GetInput()) < need || len(n.GetOutput()) == 0 {
			return fmt.Errorf("autograd: node %q (%s): %d inputs and %d outputs, need %d and 1",
				nodeLabel(n), n.GetOpType(), len(n.GetInput()), len(n.GetOutput()), need)
		}
		for i, need := range p.need[n] {
			if need && r.supports != nil && !r.supports(n, i) {
				return &UnsupportedOpError{Op: n.GetOpType(), Node: nodeLabel(n), Input: n.GetInput()[i], Mode: mode}
			}
		}
	}
	return nil
}

// Check reports the first op on a path from Wrt to Seeds without a rule, as *UnsupportedOpError, or a spec
// error. A nil result means Build will find a rule for every node it walks (it can still fail on shapes it
// cannot resolve, e.g. a strided Conv with unknown spatial size).
func Check(m *pb.ModelProto, spec Spec) error {
	p, err := newPlan(m, spec)
	if err != nil {
		return err
	}
	return p.unsupported()
}

// Build returns a copy of m with the backward graph of L = sum_k <seed_k, tensor_k> appended, the seed inputs
// added and each gradient dL/d(wrt) exposed as a graph output of the wrt tensor's shape. Forward outputs stay.
// In an LRP mode the outputs are the relevances of the wrt tensors instead (see lrp.go). Build can be applied
// again to its own result for another spec: the earlier backward nodes are off every new path.
func Build(m *pb.ModelProto, spec Spec) (*pb.ModelProto, *GradientIO, error) {
	return build(m, spec, defaultOptions())
}

// options select among equivalent backward formulations; the defaults are the fastest measured on ORT's CPU
// provider (see BenchmarkGradientVariants). The alternatives stay for benchmarks and as cross-checks.
type options struct {
	reluMask       string // "" (default): Mul(g, Cast(y > 0)); "where": Where(y > 0, g, 0); "sign": Mul(g, Sign(y))
	convTranspose  bool   // input gradient of stride-1 Conv by ConvTranspose of the forward weights
	naiveBroadcast bool   // always reduce broadcast gradients at run time (Shape/NonZero), ignoring static shapes
}

func defaultOptions() options { return options{} }

func build(m *pb.ModelProto, spec Spec, opt options) (*pb.ModelProto, *GradientIO, error) {
	if m == nil {
		return nil, nil, fmt.Errorf("%w: nil model", ErrSpec)
	}
	out := onnxgraph.Clone(m)
	p, err := newPlan(out, spec)
	if err != nil {
		return nil, nil, err
	}
	if err := p.unsupported(); err != nil {
		return nil, nil, err
	}
	b := newBuilder(p, opt)
	res := &GradientIO{SeedInputs: map[string]string{}, Grads: map[string]string{}}
	g := p.g
	for _, s := range spec.Seeds {
		name := b.uniqueName(s + "/seed")
		res.SeedInputs[s] = name
		g.Input = append(g.Input, b.info(s).ValueInfo(name))
		if spec.Mode.lrp() {
			// Relevance starts as the seeded share of the output itself, not as a unit cotangent.
			b.addGrad(s, full(b.op("Mul", []string{name, s})))
		} else {
			b.addGrad(s, contrib{name: name})
		}
	}
	for i := len(p.active) - 1; i >= 0; i-- {
		n := p.active[i]
		gy := make([]string, len(n.GetOutput()))
		have := false
		for j, o := range n.GetOutput() {
			if o != "" && p.fwd[o] && p.bwd[o] {
				gy[j] = b.total(o)
				have = have || gy[j] != ""
			}
		}
		if !have {
			continue
		}
		b.cur = n
		cs, err := p.rules[n.GetOpType()].grad(b, n, gy)
		if err != nil {
			return nil, nil, fmt.Errorf("autograd: node %q (%s): %w", nodeLabel(n), n.GetOpType(), err)
		}
		for j, c := range cs {
			if j < len(n.GetInput()) && p.need[n][j] && c.name != "" {
				b.addGrad(n.GetInput()[j], c)
			}
		}
	}
	b.cur = nil
	for _, w := range spec.Wrt {
		gname := b.total(w)
		if gname == "" {
			gname = b.zerosLike(w)
		}
		name := b.uniqueName(w + "/grad")
		b.emit(onnxgraph.Node("Identity", b.uniqueNode("/grad/output"+w), []string{gname}, []string{name}))
		res.Grads[w] = name
		g.Output = append(g.Output, b.info(w).ValueInfo(name))
	}
	g.Node = append(slices.Clone(p.nodes), b.nodes...)
	g.Initializer = append(g.Initializer, b.inits...)
	return out, res, nil
}
