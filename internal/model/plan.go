package model

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// Plan is a graph prepared for one set of needs (which tensors come out), ready for SessionCache.Run.
type Plan struct {
	Model   *pb.ModelProto
	Inputs  []string // graph inputs, in graph order (initializers excluded)
	Outputs []string // graph outputs, in graph order
	Key     string   // sha256 of the deterministic serialization; sessions are cached by it

	raw []byte
}

// NewPlan prepares a graph rewritten elsewhere (e.g. with a backward graph appended). The plan owns m: do
// not change it afterwards, since its serialization is taken now.
func NewPlan(m *pb.ModelProto) (*Plan, error) {
	if m.GetGraph() == nil {
		return nil, errors.New("model: new plan: model has no graph")
	}
	raw, err := onnxgraph.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("model: new plan: %w", err)
	}
	sum := sha256.Sum256(raw)
	p := &Plan{Model: m, Key: hex.EncodeToString(sum[:]), raw: raw}
	inits := map[string]bool{}
	for _, t := range m.GetGraph().GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, in := range m.GetGraph().GetInput() {
		if !inits[in.GetName()] {
			p.Inputs = append(p.Inputs, in.GetName())
		}
	}
	for _, o := range m.GetGraph().GetOutput() {
		p.Outputs = append(p.Outputs, o.GetName())
	}
	if len(p.Inputs) == 0 || len(p.Outputs) == 0 {
		return nil, fmt.Errorf("model: new plan: graph has %d inputs and %d outputs, want at least one of each", len(p.Inputs), len(p.Outputs))
	}
	return p, nil
}

func (p *Plan) hasOutput(name string) bool { return contains(p.Outputs, name) }

// HookPlan returns the network's graph with the given tensors (tensor or module names of node outputs)
// added as graph outputs after the heads, in the order asked. Tensors that already are outputs are not
// repeated. Plans are cached per list of tensors.
func (n *Network) HookPlan(tensors []string) (*Plan, error) {
	resolved := make([]string, 0, len(tensors))
	seen := map[string]bool{}
	for _, t := range tensors {
		i, ok := n.byName[t]
		if !ok {
			return nil, fmt.Errorf("model: hook %q: no such module; list them with `lczerolens model modules --model %s`", t, n.Path)
		}
		m := n.Modules[i]
		if m.DType != "float32" {
			return nil, fmt.Errorf("model: hook %q: a %s tensor; only float32 tensors can be hooked", t, m.DType)
		}
		if !seen[m.Tensor] {
			seen[m.Tensor] = true
			resolved = append(resolved, m.Tensor)
		}
	}
	key := strings.Join(resolved, "\x00")
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.plans[key]; ok {
		return p, nil
	}
	m := onnxgraph.Clone(n.Proto)
	g := m.GetGraph()
	outs := map[string]bool{}
	for _, o := range g.GetOutput() {
		outs[o.GetName()] = true
	}
	for _, t := range resolved {
		if !outs[t] {
			g.Output = append(g.Output, onnxgraph.UntypedOutput(t, pb.TensorProto_FLOAT))
		}
	}
	p, err := NewPlan(m)
	if err != nil {
		return nil, fmt.Errorf("model: hook plan: %w", err)
	}
	n.plans[key] = p
	return p, nil
}
