package model

import (
	"fmt"
	"strings"
	"sync"

	"github.com/lczerolens/lczerolens/internal/model/autograd"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
)

// GradientIO names the extra inputs and outputs of a gradient plan.
type GradientIO struct {
	SeedInputs map[string]string // seeded tensor -> graph input holding its cotangent
	Grads      map[string]string // tensor differentiated w.r.t. -> graph output holding the gradient
}

// gradCache memoises gradient plans per network, since building a backward graph costs milliseconds and
// a session compile far more.
var gradCache sync.Map // key string -> *gradEntry

type gradEntry struct {
	plan *Plan
	io   *GradientIO
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

// CheckGradient reports whether gradients of seeds w.r.t. wrt can be built for n, naming the first op on
// the way that has no gradient rule.
func CheckGradient(n *Network, seeds, wrt []string) error {
	w, err := n.resolveTensors(wrt)
	if err != nil {
		return err
	}
	return autograd.Check(n.Proto, autograd.Spec{Seeds: seeds, Wrt: w})
}

// GradientPlan prepares one graph that returns the heads, the hooked tensors, and the gradient of
// sum_k <seed_k, tensor_k> w.r.t. each tensor of wrt (the model input or modules). Seeds are fed per run.
func GradientPlan(n *Network, hooks, seeds, wrt []string) (*Plan, *GradientIO, error) {
	h, err := n.resolveTensors(hooks)
	if err != nil {
		return nil, nil, err
	}
	w, err := n.resolveTensors(wrt)
	if err != nil {
		return nil, nil, err
	}
	key := n.SHA256 + "\x01" + strings.Join(h, "\x00") + "\x01" + strings.Join(seeds, "\x00") + "\x01" + strings.Join(w, "\x00")
	if e, ok := gradCache.Load(key); ok {
		ge := e.(*gradEntry)
		return ge.plan, ge.io, nil
	}
	hp, err := n.HookPlan(h)
	if err != nil {
		return nil, nil, err
	}
	m, res, err := autograd.Build(onnxgraph.Clone(hp.Model), autograd.Spec{Seeds: seeds, Wrt: w})
	if err != nil {
		return nil, nil, fmt.Errorf("model: gradient plan for %s: %w", n.Path, err)
	}
	p, err := NewPlan(m)
	if err != nil {
		return nil, nil, err
	}
	gio := &GradientIO{SeedInputs: res.SeedInputs, Grads: res.Grads}
	gradCache.Store(key, &gradEntry{plan: p, io: gio})
	return p, gio, nil
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
