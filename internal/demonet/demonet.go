// Package demonet builds lczerolens's built-in demo network: a tiny network in lc0's ONNX layout and naming
// whose weights are set by hand so that its outputs, and their gradients, have closed forms. The value head
// scores material; the policy head favours capturing valuable pieces. It knows no chess beyond that and
// exists to run every command without third-party weights, and to test lenses against exact answers.
package demonet

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// Shape constants of lc0's interface.
const (
	nPlanes    = 112
	policySize = 1858
	channels   = 4 // our material, their material, our occupancy, their occupancy
)

// Closed-form constants: z = [K*m, C, -K*m], WDL = softmax(z), m the material balance.
const (
	K = 0.25 // value per pawn of material balance
	C = 1.0  // draw logit
	// CentralityWeight scales the policy's tie-break bias toward central destination squares.
	CentralityWeight = 0.01
)

// PieceValues are the material values of pawn, knight, bishop, rook, queen and king, in lc0's plane order.
var PieceValues = [6]float64{1, 3, 3, 5, 9, 0}

// bias keeps every ReLU strictly positive on valid planes, so the network is linear where it is evaluated
// and its gradients are the analytic ones; later layers subtract it again.
const bias = 1.0

// Build returns the demo network.
func Build() (*pb.ModelProto, error) {
	dest, err := destinations()
	if err != nil {
		return nil, err
	}
	var nodes []*pb.NodeProto
	var inits []*pb.TensorProto
	pad := onnxgraph.AttrInts("pads", 1, 1, 1, 1)
	conv3 := func(name, in string, w []float32, b []float32, cin int) {
		nodes = append(nodes, onnxgraph.Node("Conv", name, []string{in, name + "/w/kernel", name + "/w/bias"}, []string{name},
			onnxgraph.AttrInts("kernel_shape", 3, 3), pad, onnxgraph.AttrInts("strides", 1, 1), onnxgraph.AttrInts("dilations", 1, 1)))
		inits = append(inits,
			onnxgraph.Float32Tensor(name+"/w/kernel", []int64{int64(len(b)), int64(cin), 3, 3}, w),
			onnxgraph.Float32Tensor(name+"/w/bias", []int64{int64(len(b))}, b))
	}
	conv1 := func(name, in string, w []float32, b []float32, cin int) {
		nodes = append(nodes, onnxgraph.Node("Conv", name, []string{in, name + "/w/kernel", name + "/w/bias"}, []string{name},
			onnxgraph.AttrInts("kernel_shape", 1, 1)))
		inits = append(inits,
			onnxgraph.Float32Tensor(name+"/w/kernel", []int64{int64(len(b)), int64(cin), 1, 1}, w),
			onnxgraph.Float32Tensor(name+"/w/bias", []int64{int64(len(b))}, b))
	}
	// centre tap of a 3x3 kernel: weight[o][i][1][1]
	centre := func(cout, cin int, f func(o, i int) float64) []float32 {
		w := make([]float32, cout*cin*9)
		for o := 0; o < cout; o++ {
			for i := 0; i < cin; i++ {
				w[(o*cin+i)*9+4] = float32(f(o, i))
			}
		}
		return w
	}
	node := func(op, name string, inputs []string, attrs ...*pb.AttributeProto) {
		nodes = append(nodes, onnxgraph.Node(op, name, inputs, []string{name}, attrs...))
	}
	identity := func(o, i int) float64 {
		if o == i {
			return 1
		}
		return 0
	}
	filled := func(n int, v float32) []float32 {
		b := make([]float32, n)
		for i := range b {
			b[i] = v
		}
		return b
	}

	// Body: channel maps + bias, then one lc0-named residual block that passes them through doubled.
	conv3("/inputconv", "/input/planes", centre(channels, nPlanes, func(o, i int) float64 {
		switch {
		case o == 0 && i < 6:
			return PieceValues[i]
		case o == 1 && i >= 6 && i < 12:
			return PieceValues[i-6]
		case o == 2 && i < 6, o == 3 && i >= 6 && i < 12:
			return 1
		}
		return 0
	}), filled(channels, bias), nPlanes)
	node("Relu", "/inputconv/relu", []string{"/inputconv"})
	conv3("/block0/conv1", "/inputconv/relu", centre(channels, channels, identity), filled(channels, bias), channels)
	node("Relu", "/block0/conv1/relu", []string{"/block0/conv1"})
	conv3("/block0/conv2", "/block0/conv1/relu", centre(channels, channels, identity), filled(channels, -bias), channels)
	node("Add", "/block0/conv2/mixin", []string{"/block0/conv2", "/inputconv/relu"})
	node("Relu", "/block0/conv2/relu", []string{"/block0/conv2/mixin"})
	body := "/block0/conv2/relu" // = 2*(map + bias) per channel

	// Value: per-square (material + bias) maps, summed per side, then z = [K*m, C, -K*m].
	conv1("/value/conv", body, []float32{0.5, 0, 0, 0, 0, 0.5, 0, 0}, []float32{0, 0}, channels)
	node("Relu", "/value/conv/relu", []string{"/value/conv"})
	inits = append(inits, onnxgraph.Int64Tensor("/const/value_shape", []int64{2}, []int64{-1, 128}))
	node("Reshape", "/value/reshape", []string{"/value/conv/relu", "/const/value_shape"})
	sum := make([]float32, 128*2)
	for s := 0; s < 64; s++ {
		sum[s*2+0] = 1      // our (material + bias) summed
		sum[(64+s)*2+1] = 1 // their (material + bias) summed
	}
	inits = append(inits,
		onnxgraph.Float32Tensor("/value/dense1/matmul/w", []int64{128, 2}, sum),
		onnxgraph.Float32Tensor("/value/dense1/add/w", []int64{2}, []float32{0, 0}),
		onnxgraph.Float32Tensor("/value/dense2/matmul/w", []int64{2, 3}, []float32{K, 0, -K, -K, 0, K}),
		onnxgraph.Float32Tensor("/value/dense2/add/w", []int64{3}, []float32{0, C, 0}))
	node("MatMul", "/value/dense1/matmul", []string{"/value/reshape", "/value/dense1/matmul/w"})
	node("Add", "/value/dense1/add", []string{"/value/dense1/matmul", "/value/dense1/add/w"})
	node("Relu", "/value/dense1/relu", []string{"/value/dense1/add"})
	node("MatMul", "/value/dense2/matmul", []string{"/value/dense1/relu", "/value/dense2/matmul/w"})
	node("Add", "/value/dense2/add", []string{"/value/dense2/matmul", "/value/dense2/add/w"})
	node("Softmax", "/output/wdl", []string{"/value/dense2/add"}, onnxgraph.AttrInt("axis", 1))

	// Policy: their material map, read at each move's destination square, plus a centrality tie-break.
	conv1("/policy/conv1", body, []float32{0, 0.5, 0, 0}, []float32{-bias}, channels)
	inits = append(inits, onnxgraph.Int64Tensor("/const/policy_shape", []int64{2}, []int64{-1, 64}))
	node("Reshape", "/policy/flatten", []string{"/policy/conv1", "/const/policy_shape"})
	gather := make([]float32, 64*policySize)
	pbias := make([]float32, policySize)
	for i, s := range dest {
		gather[s*policySize+i] = 1
		pbias[i] = float32(CentralityWeight * centrality(s))
	}
	inits = append(inits,
		onnxgraph.Float32Tensor("/policy/matmul/w", []int64{64, policySize}, gather),
		onnxgraph.Float32Tensor("/policy/add/w", []int64{policySize}, pbias))
	node("MatMul", "/policy/matmul", []string{"/policy/flatten", "/policy/matmul/w"})
	node("Add", "/output/policy", []string{"/policy/matmul", "/policy/add/w"})

	g := &pb.GraphProto{
		Name:        proto.String("lczerolens-demo"),
		Node:        nodes,
		Initializer: inits,
		Input:       []*pb.ValueInfoProto{onnxgraph.ValueInfo("/input/planes", pb.TensorProto_FLOAT, -1, nPlanes, 8, 8)},
		Output: []*pb.ValueInfoProto{
			onnxgraph.ValueInfo("/output/policy", pb.TensorProto_FLOAT, -1, policySize),
			onnxgraph.ValueInfo("/output/wdl", pb.TensorProto_FLOAT, -1, 3),
		},
	}
	m := onnxgraph.NewModel(g, 17)
	m.DocString = proto.String("lczerolens demo network: value = softmax(K*m, C, -K*m) of the material balance m; " +
		"policy logit = value of the captured piece + 0.01*centrality of the destination. Not a chess engine.")
	return m, nil
}

// Bytes returns the serialized demo network (deterministic: equal for equal Build output).
func Bytes() ([]byte, error) {
	m, err := Build()
	if err != nil {
		return nil, err
	}
	return onnxgraph.Marshal(m)
}

// destinations maps each policy index to its destination square (a1 = 0) in the mover's frame.
func destinations() ([]int, error) {
	names := board.PolicyNames()
	if len(names) != policySize {
		return nil, fmt.Errorf("demonet: %d policy names, want %d", len(names), policySize)
	}
	out := make([]int, len(names))
	for i, n := range names {
		if len(n) < 4 || n[2] < 'a' || n[2] > 'h' || n[3] < '1' || n[3] > '8' {
			return nil, fmt.Errorf("demonet: policy name %d %q: no destination square", i, n)
		}
		out[i] = int(n[3]-'1')*8 + int(n[2]-'a')
	}
	return out, nil
}

// centrality is 6 on the four centre squares, falling by one per step toward the edge, 0 in the corners.
func centrality(sq int) float64 {
	f, r := float64(sq%8), float64(sq/8)
	return 6 - (math.Abs(2*f-7)+math.Abs(2*r-7)-2)/2
}

// Material returns the balance m = sum over squares and piece types of value * (our plane - their plane),
// read from planes 0..11 (the current position) of one position's 112x8x8 planes.
func Material(planes []float32) float64 {
	var m float64
	for j, v := range PieceValues {
		for s := 0; s < 64; s++ {
			m += v * (float64(planes[j*64+s]) - float64(planes[(6+j)*64+s]))
		}
	}
	return m
}

// Value is the closed form of /output/wdl: softmax(K*m, C, -K*m) with m = Material(planes).
func Value(planes []float32) (w, d, l float64) {
	m := Material(planes)
	z := [3]float64{K * m, C, -K * m}
	top := math.Max(z[0], math.Max(z[1], z[2]))
	e := [3]float64{math.Exp(z[0] - top), math.Exp(z[1] - top), math.Exp(z[2] - top)}
	s := e[0] + e[1] + e[2]
	return e[0] / s, e[1] / s, e[2] / s
}

// ForceValueGrad is the gradient of W - L with respect to the 112x64 input planes:
// K*(W+L-(W-L)^2) times +v_j on our piece planes j = 0..5, -v_j on their planes 6+j, 0 elsewhere.
func ForceValueGrad(planes []float32) []float64 {
	w, _, l := Value(planes)
	g := K * (w + l - (w-l)*(w-l))
	out := make([]float64, nPlanes*64)
	for j, v := range PieceValues {
		for s := 0; s < 64; s++ {
			out[j*64+s] = g * v
			out[(6+j)*64+s] = -g * v
		}
	}
	return out
}

// PolicyLogits is the closed form of /output/policy: for move i, the value of the opponent piece on its
// destination square (planes 6..11) plus CentralityWeight times the square's centrality.
func PolicyLogits(planes []float32) []float64 {
	dest, err := destinations()
	if err != nil {
		return nil
	}
	out := make([]float64, policySize)
	for i, s := range dest {
		var their float64
		for j, v := range PieceValues {
			their += v * float64(planes[(6+j)*64+s])
		}
		out[i] = their + CentralityWeight*centrality(s)
	}
	return out
}
