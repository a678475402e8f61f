package model

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// ShapesKnown reports whether static inference found every module's shape.
func (n *Network) ShapesKnown() bool {
	for _, m := range n.Modules {
		if m.Shape == nil {
			return false
		}
	}
	return true
}

// ResolveShapes fills the module shapes static inference left unknown (ops it does not model) by running
// ONNX Runtime once on a batch of 1 with every node output exposed.
func (n *Network) ResolveShapes(r *Runtime) error {
	if n.ShapesKnown() {
		return nil
	}
	shapes, err := n.runtimeShapes(r)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, m := range n.Modules {
		if m.Shape == nil {
			if s, ok := shapes[m.Tensor]; ok {
				n.Modules[i].Shape, n.Modules[i].DType = s.shape, s.dtype
			}
		}
	}
	return nil
}

// runtimeShapes asks ONNX Runtime for the batch-1 shape of every node output. The extra outputs carry no
// type, so ONNX Runtime infers it rather than trusting a guess of ours.
func (n *Network) runtimeShapes(r *Runtime) (map[string]outputMeta, error) {
	m := onnxgraph.Clone(n.Proto)
	g := m.GetGraph()
	outs := map[string]bool{}
	for _, o := range g.GetOutput() {
		outs[o.GetName()] = true
	}
	for _, mod := range n.Modules {
		if !outs[mod.Tensor] {
			g.Output = append(g.Output, &pb.ValueInfoProto{Name: proto.String(mod.Tensor)})
		}
	}
	p, err := NewPlan(m)
	if err != nil {
		return nil, err
	}
	shapes, err := r.outputMetas(p, map[string]Tensor{n.Input: {Shape: []int64{1, Planes, 8, 8}, Data: make([]float32, Planes*64)}})
	if err != nil {
		return nil, fmt.Errorf("model: module shapes of %s: %w", n.Path, err)
	}
	return shapes, nil
}
