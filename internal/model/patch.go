package model

import (
	"fmt"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// PatchPlan returns the network's graph cut at one module: its tensor is no longer computed but read from a
// new graph input of the same name (returned as input), so a run can feed any activation there (activation
// patching) while everything else, the planes input included, stays as it was. Nodes left with no use once
// the module's producer is gone are dropped. Plans are cached per module.
func (n *Network) PatchPlan(tensor string) (p *Plan, input string, err error) {
	i, ok := n.byName[tensor]
	if !ok {
		return nil, "", fmt.Errorf("model: patch %q: no such module; list them with `lczerolens model modules --model %s`", tensor, n.Path)
	}
	m := n.Modules[i]
	if m.DType != "float32" {
		return nil, "", fmt.Errorf("model: patch %q: a %s tensor; only float32 tensors can be patched", tensor, m.DType)
	}
	key := "\x01patch\x00" + m.Tensor // cannot clash with a hook plan's key, whose names never start with \x01
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.plans[key]; ok {
		return p, m.Tensor, nil
	}
	mp := onnxgraph.Clone(n.Proto)
	g := mp.GetGraph()
	for _, o := range g.GetOutput() {
		if o.GetName() == m.Tensor {
			return nil, "", fmt.Errorf("model: patch %q: a network output; patch a module before the heads", tensor)
		}
	}
	var nodes []*pb.NodeProto
	for _, node := range g.GetNode() {
		cut := false
		for k, o := range node.GetOutput() {
			if o != m.Tensor {
				continue
			}
			if len(node.GetOutput()) == 1 {
				cut = true
			} else {
				// A multi-output node keeps its other outputs; this one becomes an unused name.
				node.Output[k] = m.Tensor + "#unpatched"
			}
		}
		if !cut {
			nodes = append(nodes, node)
		}
	}
	g.Node = pruneDead(nodes, g.GetOutput())
	// The input is declared with the tensor's symbolic shape: fixed dims as numbers, the batch as the planes'
	// dim_param, batch multiples ([64*batch,C] in attention bodies) and unknowns left open.
	g.Input = append(g.Input, n.shapes.Get(m.Tensor).ValueInfo(m.Tensor))
	p, err = NewPlan(mp)
	if err != nil {
		return nil, "", fmt.Errorf("model: patch plan %s: %w", tensor, err)
	}
	n.plans[key] = p
	return p, m.Tensor, nil
}

// pruneDead drops nodes none of whose outputs is read by a kept node or is a graph output, until none is
// left: the part of the graph that only fed a cut tensor.
func pruneDead(nodes []*pb.NodeProto, outputs []*pb.ValueInfoProto) []*pb.NodeProto {
	for {
		used := map[string]bool{}
		for _, o := range outputs {
			used[o.GetName()] = true
		}
		for _, node := range nodes {
			for _, in := range node.GetInput() {
				used[in] = true
			}
		}
		kept := nodes[:0:0]
		for _, node := range nodes {
			live := false
			for _, o := range node.GetOutput() {
				if o != "" && used[o] {
					live = true
					break
				}
			}
			if live {
				kept = append(kept, node)
			}
		}
		if len(kept) == len(nodes) {
			return kept
		}
		nodes = kept
	}
}
