package shape

import (
	"fmt"
	"testing"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// bytesReader hands out fuzz bytes as small choices, zeros once they run out.
type bytesReader struct {
	b []byte
	i int
}

func (r *bytesReader) next() int {
	if r.i >= len(r.b) {
		return 0
	}
	r.i++
	return int(r.b[r.i-1])
}

// small returns a value in [-4, 11]: valid and invalid axes, sizes, strides and pads alike.
func (r *bytesReader) small() int64 { return int64(r.next()%16) - 4 }

func (r *bytesReader) smalls() []int64 {
	v := make([]int64, r.next()%6)
	for i := range v {
		v[i] = r.small()
	}
	return v
}

var fuzzAttrs = []string{"axis", "axes", "perm", "keepdims", "split", "strides", "pads", "dilations", "kernel_shape",
	"group", "start", "end", "to", "transA", "transB", "num_outputs", "output_padding", "output_shape", "allowzero",
	"noop_with_empty_axes", "stash_type"}

// fuzzGraph builds a graph of up to 8 nodes of ops that have rules, wired to earlier tensors (a symbolic
// input, small integer constants, float weights) with arbitrary attributes: a file Load could meet.
func fuzzGraph(data []byte) *pb.GraphProto {
	r := &bytesReader{b: data}
	ops := Ops()
	g := &pb.GraphProto{Input: []*pb.ValueInfoProto{onnxgraph.ValueInfo("X", pb.TensorProto_FLOAT, -1, 4, 6, 6)}}
	pool := []string{"X", ""}
	for i := range 3 {
		name := fmt.Sprintf("I%d", i)
		v := r.smalls()
		dims := []int64{int64(len(v))}
		if len(v) == 1 && r.next()%2 == 0 {
			dims = nil
		}
		g.Initializer = append(g.Initializer, onnxgraph.Int64Tensor(name, dims, v))
		pool = append(pool, name)
	}
	g.Initializer = append(g.Initializer, onnxgraph.Float32Tensor("W", []int64{3, 4, 3, 3}, make([]float32, 108)))
	pool = append(pool, "W")
	for k := range r.next()%8 + 1 {
		op := ops[r.next()%len(ops)]
		var in []string
		for range r.next()%4 + 1 {
			in = append(in, pool[r.next()%len(pool)])
		}
		var out []string
		for j := range r.next() % 4 {
			out = append(out, fmt.Sprintf("n%d_%d", k, j))
		}
		var attrs []*pb.AttributeProto
		for range r.next() % 4 {
			name := fuzzAttrs[r.next()%len(fuzzAttrs)]
			if r.next()%2 == 0 {
				attrs = append(attrs, onnxgraph.AttrInt(name, r.small()))
			} else {
				attrs = append(attrs, onnxgraph.AttrInts(name, r.smalls()...))
			}
		}
		if r.next()%4 == 0 {
			attrs = append(attrs, onnxgraph.AttrString("auto_pad", []string{"SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"}[r.next()%4]))
		}
		g.Node = append(g.Node, onnxgraph.Node(op, op, in, out, attrs...))
		pool = append(pool, out...)
	}
	return g
}

// FuzzInfer: inference never panics, whatever the attributes and wiring, and what it reports can be
// specialised and declared.
func FuzzInfer(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 1, 2, 3, 1, 0, 2, 7, 7, 0, 4, 17, 2, 0, 3, 2, 1, 5, 3, 2, 4, 5, 6})
	f.Add([]byte("conv reshape slice split concat gather squeeze unsqueeze"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := fuzzGraph(data)
		inf := Infer(g)
		for _, n := range g.GetNode() {
			for _, o := range n.GetOutput() {
				info := inf.Get(o)
				inf.Concrete(info, 3)
				info.ValueInfo(o)
				_ = info.String()
			}
		}
	})
}
