package model

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lczerolens/lczerolens/internal/model/autograd"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
)

// GradientIO names the extra inputs and outputs of a gradient plan. It is autograd's type, named here so that
// callers of model need not import autograd.
type GradientIO = autograd.GradientIO

// backwardEntry is a cached backward plan with the names of each pass's inputs and outputs.
type backwardEntry struct {
	plan *Plan
	ios  []*GradientIO
}

// resolveTensors maps module or tensor names to tensor names (the model input is accepted as is).
func (n *Network) resolveTensors(names []string) ([]string, error) {
	out := make([]string, len(names))
	for i, t := range names {
		if t == n.Input {
			out[i] = t
			continue
		}
		j, ok := n.byName[t]
		if !ok {
			return nil, fmt.Errorf("model: gradient w.r.t. %q: no such module; list them with `lczerolens model modules --model %s`", t, n.Path)
		}
		out[i] = n.Modules[j].Tensor
	}
	return out, nil
}

// RuleKind says what a backward pass propagates.
type RuleKind int

// The rule kinds.
const (
	RuleGradient   RuleKind = iota // gradients
	RuleLRPEpsilon                 // layer-wise relevance propagation, epsilon rule
	RuleLRPZPlus                   // layer-wise relevance propagation, z+ rule
)

// Rule is how a backward pass propagates. The zero value is plain gradients.
type Rule struct {
	Kind    RuleKind
	Epsilon float64 // the LRP stabiliser, > 0 (LRP rules only)
	// Composite assigns other rules to Conv, dense and first layers (RuleLRPEpsilon only).
	Composite Composite
}

// Composite, LinearRule and LinearKind are autograd's LRP composites (see autograd.LinearKind for what each
// rule conserves), named here so that callers of model need not import autograd.
type (
	Composite  = autograd.Composite
	LinearRule = autograd.LinearRule
	LinearKind = autograd.LinearKind
)

// The linear rules of composites.
const (
	LinearEpsilon   = autograd.LinearEpsilon
	LinearZPlus     = autograd.LinearZPlus
	LinearGamma     = autograd.LinearGamma
	LinearAlphaBeta = autograd.LinearAlphaBeta
	LinearFlat      = autograd.LinearFlat
	LinearWSquare   = autograd.LinearWSquare
	LinearBox       = autograd.LinearBox
)

// String names the rule as flags and keys do ("gradient", "lrp-epsilon(1e-06)").
func (r Rule) String() string {
	m := r.mode()
	if r.Kind == RuleGradient {
		return m.String()
	}
	s := m.String() + "(" + strconv.FormatFloat(r.Epsilon, 'g', -1, 64) + ")"
	if c := r.Composite.String(); c != "" {
		s += "[" + c + "]"
	}
	return s
}

func (r Rule) mode() autograd.Mode {
	switch r.Kind {
	case RuleLRPEpsilon:
		return autograd.ModeLRPEpsilon
	case RuleLRPZPlus:
		return autograd.ModeLRPZPlus
	}
	return autograd.ModeGradient
}

// Backward is one backward pass: the gradients of L = sum_k <seed_k, tensor_k> w.r.t. each tensor of Wrt
// (the model input or modules), or under an LRP rule their relevances, which start as seed_k * tensor_k at
// the seeds and sum to about L.
type Backward struct {
	Seeds, Wrt []string
	Rule       Rule
}

func (p Backward) spec(n *Network) (autograd.Spec, error) {
	w, err := n.resolveTensors(p.Wrt)
	if err != nil {
		return autograd.Spec{}, err
	}
	if p.Rule.Kind < RuleGradient || p.Rule.Kind > RuleLRPZPlus {
		return autograd.Spec{}, fmt.Errorf("model: backward pass: unknown rule kind %d", p.Rule.Kind)
	}
	eps := p.Rule.Epsilon
	if p.Rule.Kind == RuleGradient {
		eps = 0
	}
	return autograd.Spec{Seeds: p.Seeds, Wrt: w, Mode: p.Rule.mode(), Epsilon: eps, Composite: p.Rule.Composite}, nil
}

// CheckGradient reports whether gradients of seeds w.r.t. wrt can be built for n, naming the first op on
// the way that has no gradient rule.
func CheckGradient(n *Network, seeds, wrt []string) error {
	return CheckBackward(n, Backward{Seeds: seeds, Wrt: wrt})
}

// CheckBackward reports whether the pass can be built for n, naming the first op on the way that has no
// rule of the pass's kind.
func CheckBackward(n *Network, p Backward) error {
	spec, err := p.spec(n)
	if err != nil {
		return err
	}
	return autograd.Check(n.Proto, spec)
}

// GradientPlan prepares one graph that returns the heads, the hooked tensors, and the gradient of
// sum_k <seed_k, tensor_k> w.r.t. each tensor of wrt (the model input or modules). Seeds are fed per run.
func GradientPlan(n *Network, hooks, seeds, wrt []string) (*Plan, *GradientIO, error) {
	p, ios, err := BackwardPlan(n, hooks, []Backward{{Seeds: seeds, Wrt: wrt}})
	if err != nil {
		return nil, nil, err
	}
	return p, ios[0], nil
}

// BackwardPlan prepares one graph that returns the heads, the hooked tensors and the outputs of every
// backward pass, so a single run shares the forward computation between them (e.g. a gradient and an LRP
// pass). Each pass has its own seed inputs and outputs, named in its GradientIO. Plans are cached.
func BackwardPlan(n *Network, hooks []string, passes []Backward) (*Plan, []*GradientIO, error) {
	if len(passes) == 0 {
		return nil, nil, errors.New("model: backward plan: no pass")
	}
	h, err := n.resolveTensors(hooks)
	if err != nil {
		return nil, nil, err
	}
	specs := make([]autograd.Spec, len(passes))
	key := strings.Join(h, "\x00")
	for i, p := range passes {
		if specs[i], err = p.spec(n); err != nil {
			return nil, nil, err
		}
		key += "\x01" + strings.Join(p.Seeds, "\x00") + "\x01" + strings.Join(specs[i].Wrt, "\x00") + "\x01" + p.Rule.String()
	}
	// Cached per network, like hook plans: building a backward graph costs milliseconds, a session compile
	// far more.
	n.mu.Lock()
	e, ok := n.backward[key]
	n.mu.Unlock()
	if ok {
		return e.plan, e.ios, nil
	}
	hp, err := n.HookPlan(h)
	if err != nil {
		return nil, nil, err
	}
	m := onnxgraph.Clone(hp.Model)
	ios := make([]*GradientIO, len(passes))
	for i, spec := range specs {
		// Each Build appends a backward graph; earlier ones are off the new paths, so passes do not interfere.
		if m, ios[i], err = autograd.Build(m, spec); err != nil {
			return nil, nil, fmt.Errorf("model: %s plan for %s: %w", passes[i].Rule.mode(), n.Path, err)
		}
	}
	p, err := NewPlan(m)
	if err != nil {
		return nil, nil, err
	}
	n.mu.Lock()
	if n.backward == nil {
		n.backward = map[string]*backwardEntry{}
	}
	n.backward[key] = &backwardEntry{plan: p, ios: ios}
	n.mu.Unlock()
	return p, ios, nil
}

// ModuleInputs lists the float tensors a module's node reads from other modules (weights, constants, shape
// computations and the graph input left out: the planes are available as such).
func (n *Network) ModuleInputs(m Module) []string {
	ix := onnxgraph.NewIndex(n.Proto.GetGraph())
	node := ix.Producer[m.Tensor]
	if node == nil {
		return nil
	}
	var out []string
	for _, in := range node.GetInput() {
		if in == "" {
			continue
		}
		if _, isConst := ix.Initializers[in]; isConst {
			continue
		}
		if j, ok := n.byName[in]; ok && n.Modules[j].DType == "float32" {
			out = append(out, in)
		}
	}
	return out
}
