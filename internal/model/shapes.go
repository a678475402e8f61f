package model

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/model/shape"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// dtypeName names an element type the way users read it.
func dtypeName(t pb.TensorProto_DataType) string {
	switch t {
	case pb.TensorProto_FLOAT:
		return "float32"
	case pb.TensorProto_FLOAT16:
		return "float16"
	case pb.TensorProto_DOUBLE:
		return "float64"
	case pb.TensorProto_INT64:
		return "int64"
	case pb.TensorProto_INT32:
		return "int32"
	case pb.TensorProto_BOOL:
		return "bool"
	}
	return fmt.Sprintf("type%d", int32(t))
}

// elemOrGuess returns elem, or, when inference has no rule for node's op, its first typed input's element
// type: most ops keep their input's type, and a listing that says float32 lets such a tensor be hooked
// (ResolveShapes replaces the guess with what ONNX Runtime reports).
func elemOrGuess(elem pb.TensorProto_DataType, node *pb.NodeProto, shapes *shape.Inference) pb.TensorProto_DataType {
	for _, in := range node.GetInput() {
		if elem != 0 {
			break
		}
		if in != "" {
			elem = shapes.Get(in).Elem
		}
	}
	if elem == 0 {
		return pb.TensorProto_FLOAT
	}
	return elem
}

// ShapesKnown reports whether static inference found every module's shape.
func (n *Network) ShapesKnown() bool {
	for _, m := range n.Modules {
		if m.Shape == nil {
			return false
		}
	}
	return true
}

// ResolveShapes fills the module shapes static inference left unknown by running ONNX Runtime once on a
// batch of 1 with every node output exposed. This is not a second inference: package shape has a rule for
// every op of lc0's nets (a test runs it over all reference nets and the demo net with no unknown left), so
// for those this returns at once. It stays for foreign ONNX files with ops that have no rule (Resize,
// Einsum, contrib ops), whose modules would otherwise be listed without a shape.
func (n *Network) ResolveShapes(r *SessionCache) error {
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

// runtimeShapes asks ONNX Runtime for the batch-1 shape of every node output.
func (n *Network) runtimeShapes(r *SessionCache) (map[string]outputMeta, error) {
	return n.runtimeShapesAt(r, 1)
}

// runtimeShapesAt asks ONNX Runtime for the shape of every node output for a batch of the given size. The
// extra outputs carry no type, so ONNX Runtime infers it rather than trusting a guess of ours.
func (n *Network) runtimeShapesAt(r *SessionCache, batch int) (map[string]outputMeta, error) {
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
	shapes, err := r.outputMetas(p, map[string]Tensor{n.Input: {Shape: []int64{int64(batch), Planes, 8, 8}, Data: make([]float32, batch*Planes*64)}})
	if err != nil {
		return nil, fmt.Errorf("model: module shapes of %s: %w", n.Path, err)
	}
	return shapes, nil
}
