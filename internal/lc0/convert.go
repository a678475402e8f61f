package lc0

import (
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/lc0/pblczero"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// Tensor names of the converted graph (those of lc0's leela2onnx).
const (
	InputName  = "/input/planes"
	PolicyName = "/output/policy"
	WDLName    = "/output/wdl"
	ValueName  = "/output/value"
	MLHName    = "/output/mlh"
)

// Opset is the ONNX opset of converted graphs (lc0's default).
const Opset = 17

// Options choose what Convert builds.
type Options struct {
	// PolicyHead and ValueHead select the heads of multi-head nets by lc0's names (Net.HeadNames);
	// "" means "vanilla" and "winner", the only heads of single-head nets.
	PolicyHead, ValueHead string
}

type act = pblczero.NetworkFormat_ActivationFunction

// Convert builds the ONNX graph lc0's converter builds for the net: float32, dynamic batch, input
// /input/planes [batch,112,8,8], outputs /output/policy (raw logits), /output/wdl (softmaxed) or
// /output/value (tanh), and /output/mlh when the net has a moves-left head. A file that already carries
// an ONNX model returns that model.
func Convert(n *Net, opts Options) (*pb.ModelProto, error) {
	if n == nil || n.Proto == nil {
		return nil, fmt.Errorf("lc0: convert: no net")
	}
	if opts.PolicyHead == "" {
		opts.PolicyHead = "vanilla"
	}
	if opts.ValueHead == "" {
		opts.ValueHead = "winner"
	}
	src := n.Proto
	if src.GetOnnxModel() != nil && n.format.GetNetwork() == pblczero.NetworkFormat_NETWORK_ONNX {
		m, err := onnxgraph.Unmarshal(src.GetOnnxModel().GetModel())
		if err != nil {
			return nil, fmt.Errorf("lc0: convert: embedded onnx model: %w", err)
		}
		return m, nil
	}
	if src.GetWeights() == nil {
		return nil, fmt.Errorf("lc0: convert: the file has no weights: %w", ErrUnsupported)
	}
	if src.GetOnnxModel() != nil {
		return nil, fmt.Errorf("lc0: convert: the file has both weights and an onnx model: %w", ErrUnsupported)
	}
	if err := checkFormat(n.format); err != nil {
		return nil, fmt.Errorf("lc0: convert: %w", err)
	}
	c := &converter{n: n, f: n.format, w: src.GetWeights(), opts: opts, have: map[string]bool{}}
	c.defAct = pblczero.NetworkFormat_ACTIVATION_RELU
	if c.f.GetDefaultActivation() == pblczero.NetworkFormat_DEFAULT_ACTIVATION_MISH {
		c.defAct = pblczero.NetworkFormat_ACTIVATION_MISH
	}
	c.defEps = 1e-6
	if c.f.GetInputEmbedding() == pblczero.NetworkFormat_INPUT_EMBEDDING_PE_DENSE {
		c.defEps = 1e-3
	}
	c.filters = layerSize(c.w.GetInput().GetWeights()) / 112 / 9
	c.build()
	if c.err != nil {
		return nil, fmt.Errorf("lc0: convert: %w", c.err)
	}
	g := &pb.GraphProto{
		Name:        proto.String("org.lczero/converted"),
		Node:        c.nodes,
		Initializer: c.inits,
		Input:       []*pb.ValueInfoProto{onnxgraph.ValueInfo(InputName, pb.TensorProto_FLOAT, -1, 112, 8, 8)},
		Output:      c.outputs,
	}
	m := onnxgraph.NewModel(g, Opset)
	m.Domain = proto.String("org.lczero.models.*")
	m.DocString = proto.String("converted from lc0 weights by lczerolens, graph as lc0 leela2onnx builds it")
	return m, nil
}

// checkFormat accepts the formats lc0's converter builds; the error names every architecture field.
func checkFormat(f *pblczero.NetworkFormat) error {
	var bad string
	switch f.GetNetwork() {
	case pblczero.NetworkFormat_NETWORK_CLASSICAL_WITH_HEADFORMAT, pblczero.NetworkFormat_NETWORK_SE_WITH_HEADFORMAT,
		pblczero.NetworkFormat_NETWORK_ATTENTIONBODY_WITH_HEADFORMAT, pblczero.NetworkFormat_NETWORK_ATTENTIONBODY_WITH_MULTIHEADFORMAT:
	default:
		bad = "network " + f.GetNetwork().String()
	}
	switch f.GetPolicy() {
	case pblczero.NetworkFormat_POLICY_CLASSICAL, pblczero.NetworkFormat_POLICY_CONVOLUTION, pblczero.NetworkFormat_POLICY_ATTENTION:
	default:
		bad = "policy " + f.GetPolicy().String()
	}
	switch f.GetValue() {
	case pblczero.NetworkFormat_VALUE_CLASSICAL, pblczero.NetworkFormat_VALUE_WDL:
	default:
		bad = "value " + f.GetValue().String()
	}
	switch f.GetInputEmbedding() {
	case pblczero.NetworkFormat_INPUT_EMBEDDING_NONE, pblczero.NetworkFormat_INPUT_EMBEDDING_PE_MAP, pblczero.NetworkFormat_INPUT_EMBEDDING_PE_DENSE:
	default:
		bad = "input_embedding " + f.GetInputEmbedding().String()
	}
	if bad == "" {
		return nil
	}
	return fmt.Errorf("%s is not supported (network=%s policy=%s value=%s moves_left=%s default_activation=%s input_embedding=%s): %w",
		bad, f.GetNetwork(), f.GetPolicy(), f.GetValue(), f.GetMovesLeft(), f.GetDefaultActivation(), f.GetInputEmbedding(), ErrUnsupported)
}

// converter builds the graph node by node in lc0's order; the first error sticks and stops nothing, so the
// building code reads like lc0's and Convert reports the error at the end.
type converter struct {
	n       *Net
	f       *pblczero.NetworkFormat
	w       *pblczero.Weights
	opts    Options
	defAct  act
	defEps  float32
	filters int

	nodes   []*pb.NodeProto
	inits   []*pb.TensorProto
	have    map[string]bool
	outputs []*pb.ValueInfoProto
	err     error
}

func (c *converter) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// node appends a node whose single output is named like the node, as lc0 names them.
func (c *converter) node(op, name string, inputs []string, attrs ...*pb.AttributeProto) string {
	c.nodes = append(c.nodes, onnxgraph.Node(op, name, inputs, []string{name}, attrs...))
	return name
}

// init adds an initializer once; lc0 shares some (shape constants) between nodes.
func (c *converter) init(t *pb.TensorProto) string {
	if !c.have[t.GetName()] {
		c.have[t.GetName()] = true
		c.inits = append(c.inits, t)
	}
	return t.GetName()
}

func (c *converter) i64(name string, vals ...int64) string {
	return c.init(onnxgraph.Int64Tensor(name, []int64{int64(len(vals))}, vals))
}

func (c *converter) i32(name string, vals []int32) string {
	return c.init(onnxgraph.Int32Tensor(name, []int64{int64(len(vals))}, vals))
}

func (c *converter) layer(l *pblczero.Weights_Layer, what string) []float32 {
	v, err := decodeLayer(l)
	if err != nil {
		c.fail(fmt.Errorf("%s: %w", what, err))
	}
	return v
}

// weight checks a weight's size and stores it as lc0 does: with transpose, v holds the matrix as
// [dims[1]][dims[0]] (lc0's row-major [out][in]) and the initializer is [dims[0]][dims[1]].
func (c *converter) weight(name string, v []float32, transpose bool, dims ...int) *pb.TensorProto {
	want := 1
	d64 := make([]int64, len(dims))
	for i, d := range dims {
		// Sizes come from other layers of the file; cap the product so a hostile file cannot overflow it.
		want = min(want*max(d, 0), math.MaxInt32)
		d64[i] = int64(d)
	}
	if len(v) != want || want == 0 {
		c.fail(fmt.Errorf("%s: %d values, want %d %v: %w", name, len(v), want, dims, ErrMalformed))
		return onnxgraph.Float32Tensor(name, d64, nil) // never used: the conversion fails
	}
	if transpose && len(dims) == 2 {
		rows, cols := dims[0], dims[1]
		t := make([]float32, len(v))
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				t[i*cols+j] = v[j*rows+i]
			}
		}
		v = t
	}
	return onnxgraph.Float32Tensor(name, d64, v)
}

// Ops with a constant second input name it after the node (name + "/w"), as lc0's builder does.

func (c *converter) matmulW(name, in string, l *pblczero.Weights_Layer, dims ...int) string {
	return c.node("MatMul", name, []string{in, c.init(c.weight(name+"/w", c.layer(l, name), true, dims...))})
}

func (c *converter) addW(name, in string, l *pblczero.Weights_Layer, size int) string {
	return c.node("Add", name, []string{in, c.init(c.weight(name+"/w", c.layer(l, name), false, size))})
}

func (c *converter) mulScalar(name, in string, v float32) string {
	return c.node("Mul", name, []string{in, c.init(onnxgraph.Float32Tensor(name+"/w", []int64{1}, []float32{v}))})
}

func (c *converter) reshape(name, in, shape string) string {
	return c.node("Reshape", name, []string{in, shape})
}

func (c *converter) transpose(name, in string, perm ...int64) string {
	return c.node("Transpose", name, []string{in}, onnxgraph.AttrInts("perm", perm...))
}

func (c *converter) slice(name, in string, starts, ends []int32) string {
	return c.node("Slice", name, []string{in, c.i32(name+"/starts", starts), c.i32(name+"/ends", ends)})
}

func (c *converter) layerNorm(name, in string, gammas, betas *pblczero.Weights_Layer, size int, eps float32) string {
	s := c.init(c.weight(name+"/w/scale", c.layer(gammas, name+" gammas"), false, size))
	b := c.init(c.weight(name+"/w/bias", c.layer(betas, name+" betas"), false, size))
	return c.node("LayerNormalization", name, []string{in, s, b}, onnxgraph.AttrInt("axis", 1), onnxgraph.AttrFloat("epsilon", eps))
}

// activation applies lc0's activation nodes, named under name.
func (c *converter) activation(in, name string, a act) string {
	switch a {
	case pblczero.NetworkFormat_ACTIVATION_RELU:
		return c.node("Relu", name+"/relu", []string{in})
	case pblczero.NetworkFormat_ACTIVATION_MISH:
		name += "/mish"
		t := c.node("Softplus", name+"/softplus", []string{in})
		t = c.node("Tanh", name+"/tanh", []string{t})
		return c.node("Mul", name, []string{t, in})
	case pblczero.NetworkFormat_ACTIVATION_SELU:
		return c.node("Selu", name+"/selu/selu", []string{in})
	case pblczero.NetworkFormat_ACTIVATION_SWISH:
		s := c.node("Sigmoid", name+"/swish/sigmoid", []string{in})
		return c.node("Mul", name+"/swish", []string{s, in})
	case pblczero.NetworkFormat_ACTIVATION_RELU_2:
		r := c.node("Relu", name+"/sqrrelu/relu", []string{in})
		return c.node("Mul", name+"/sqrrelu/sqr", []string{r, r})
	case pblczero.NetworkFormat_ACTIVATION_NONE:
		return in
	}
	c.fail(fmt.Errorf("%s: activation %s: %w", name, a, ErrUnsupported))
	return in
}

// conv builds a convolution with batch norm folded in; k is the kernel size (3 or 1).
func (c *converter) conv(name, in string, cb *pblczero.Weights_ConvBlock, inC, outC, k int) string {
	w, b, err := foldConv(cb)
	if err != nil {
		c.fail(fmt.Errorf("%s: %w", name, err))
	}
	kernel := c.init(c.weight(name+"/w/kernel", w, false, outC, inC, k, k))
	bias := c.init(c.weight(name+"/w/bias", b, false, outC))
	p := int64(k-1) / 2
	return c.node("Conv", name, []string{in, kernel, bias}, onnxgraph.AttrInts("pads", p, p, p, p), onnxgraph.AttrInts("kernel_shape", int64(k), int64(k)))
}

// convBlock is lc0's MakeConvBlock: convolution, optional SE unit, optional residual add, activation.
func (c *converter) convBlock(name, in string, cb *pblczero.Weights_ConvBlock, inC, outC, k int, se *pblczero.Weights_SEunit, mixin string, activation bool) string {
	flow := c.conv(name, in, cb, inC, outC, k)
	if se != nil {
		flow = c.squeezeExcite(name+"/se", flow, se)
	}
	if mixin != "" {
		flow = c.node("Add", name+"/mixin", []string{flow, mixin})
	}
	if activation {
		flow = c.activation(flow, name, c.defAct)
	}
	return flow
}

func (c *converter) squeezeExcite(name, in string, se *pblczero.Weights_SEunit) string {
	f := c.filters
	seF := layerSize(se.GetB1())
	shape := c.i64("/const/se_reshape", -1, int64(2*f), 1, 1)
	flow := c.node("ReduceMean", name+"/reduce_mean", []string{in}, onnxgraph.AttrInts("axes", 2, 3), onnxgraph.AttrInt("keepdims", 0))
	flow = c.matmulW(name+"/matmul1", flow, se.GetW1(), f, seF)
	flow = c.addW(name+"/add1", flow, se.GetB1(), seF)
	flow = c.activation(flow, name, c.defAct)
	flow = c.matmulW(name+"/matmul2", flow, se.GetW2(), seF, 2*f)
	flow = c.addW(name+"/add2", flow, se.GetB2(), 2*f)
	flow = c.reshape(name+"/reshape", flow, shape)
	out1, out2 := name+"/split/out1", name+"/split/out2"
	c.nodes = append(c.nodes, onnxgraph.Node("Split", name+"/split", []string{flow}, []string{out1, out2}, onnxgraph.AttrInt("axis", 1)))
	flow = c.node("Sigmoid", name+"/sigmoid", []string{out1})
	flow = c.node("Mul", name+"/mul", []string{flow, in})
	return c.node("Add", name+"/add3", []string{flow, out2})
}

func (c *converter) build() {
	flow := InputName
	res := c.w.GetResidual()
	enc := c.w.GetEncoder()
	if len(res) == 0 && len(enc) == 0 {
		c.fail(fmt.Errorf("no residual blocks and no encoder layers: %w", ErrUnsupported))
		return
	}
	if len(res) > 0 {
		if c.filters == 0 {
			c.fail(fmt.Errorf("input convolution has no weights: %w", ErrMalformed))
			return
		}
		flow = c.convBlock("/inputconv", flow, c.w.GetInput(), 112, c.filters, 3, nil, "", true)
	}
	for i, r := range res {
		name := "/block" + strconv.Itoa(i)
		in := flow
		flow = c.convBlock(name+"/conv1", in, r.GetConv1(), c.filters, c.filters, 3, nil, "", true)
		flow = c.convBlock(name+"/conv2", flow, r.GetConv2(), c.filters, c.filters, 3, r.GetSe(), in, true)
	}
	if len(enc) > 0 {
		flow = c.attentionBody(flow)
	}
	if c.err != nil {
		return
	}
	c.policyHead(flow)
	c.valueHead(flow)
	c.movesLeftHead(flow)
}

func (c *converter) output(name string, dims ...int64) {
	c.outputs = append(c.outputs, onnxgraph.ValueInfo(name, pb.TensorProto_FLOAT, dims...))
}

// alpha is lc0's residual scaling of attention bodies, (2 * encoders)^-1/4 in float32.
func alpha(encoders int) float32 {
	return float32(math.Pow(float64(float32(2*encoders)), -0.25))
}

func (c *converter) attentionBody(in string) string {
	w := c.w
	if w.GetSmolgenW() != nil {
		sw := c.layer(w.GetSmolgenW(), "smolgen_w")
		c.init(c.weight("/const/smolgen_w", sw, true, len(sw)/4096, 4096))
	}
	emb := c.f.GetInputEmbedding()
	flow := c.transpose("/attn_body/transpose", in, 0, 2, 3, 1)
	var first int
	switch {
	case len(w.GetResidual()) > 0:
		flow = c.reshape("/attn_body/reshape", flow, c.i64("/const/att_body_shape", -1, int64(c.filters)))
		first = c.filters
	case emb == pblczero.NetworkFormat_INPUT_EMBEDDING_PE_MAP:
		flow = c.reshape("/attn_body/reshape", flow, c.i64("/const/att_body_shape", -1, 64, 112))
		pad := c.node("Shape", "/attn_body/shape", []string{flow})
		pad = c.slice("/attn_body/batch", pad, []int32{0}, []int32{1})
		pad = c.node("Concat", "/attn_body/pos_encoding_shape", []string{pad, c.i64("/const/pos_encoding_shape", 64, 64)}, onnxgraph.AttrInt("axis", 0))
		pe := c.init(onnxgraph.Float32Tensor("/const/pos_encoding", []int64{1, 64, 64}, posEncoding()))
		pad = c.node("Expand", "/attn_body/expand", []string{pe, pad})
		flow = c.node("Concat", "/attn_body/padded_input", []string{flow, pad}, onnxgraph.AttrInt("axis", 2))
		flow = c.reshape("/attn_body/reshape2", flow, c.i64("/const/att_body_shape2", -1, 176))
		first = 176
	case emb == pblczero.NetworkFormat_INPUT_EMBEDDING_PE_DENSE:
		dense := layerSize(w.GetIpEmbPreprocB()) / 64
		flow = c.reshape("/attn_body/reshape", flow, c.i64("/const/att_body_shape", -1, 64, 112))
		pos := c.slice("/attn_body/embedding/slice", flow, []int32{0, 0, 0}, []int32{math.MaxInt32, 64, 12})
		pos = c.reshape("/attn_body/embedding/reshape", pos, c.i64("/const/pos_info_shape", -1, 64*12))
		pos = c.matmulW("/attn_body/embedding/preprocess/matmul", pos, w.GetIpEmbPreprocW(), 64*12, 64*dense)
		pos = c.addW("/attn_body/embedding/preprocess/add", pos, w.GetIpEmbPreprocB(), 64*dense)
		pos = c.reshape("/attn_body/embedding/preprocess/reshape", pos, c.i64("/const/pos_info_processed_shape", -1, 64, int64(dense)))
		flow = c.node("Concat", "/attn_body/embedding/concat", []string{flow, pos}, onnxgraph.AttrInt("axis", 2))
		flow = c.reshape("/attn_body/embedding/out/reshape", flow, c.i64("/const/embedding/out_shape", -1, int64(112+dense)))
		first = 112 + dense
	default:
		c.fail(fmt.Errorf("attention body without input embedding (input_embedding=%s): %w", emb, ErrUnsupported))
		return flow
	}
	size := layerSize(w.GetIpEmbB())
	flow = c.matmulW("/attn_body/matmul", flow, w.GetIpEmbW(), first, size)
	flow = c.addW("/attn_body/add", flow, w.GetIpEmbB(), size)
	flow = c.activation(flow, "/attn_body", c.defAct)
	if emb == pblczero.NetworkFormat_INPUT_EMBEDDING_PE_DENSE {
		flow = c.layerNorm("/attn_body/ln", flow, w.GetIpEmbLnGammas(), w.GetIpEmbLnBetas(), size, 1e-3)
	}
	if present(w.GetIpMultGate()) || present(w.GetIpAddGate()) {
		flow = c.reshape("/attn_body/ma_gating/rehape", flow, c.i64("/const/ma_gating/shape1", -1, 64, int64(size)))
		if present(w.GetIpMultGate()) {
			g := c.init(c.weight("/ip_mul_gate/w", c.layer(w.GetIpMultGate(), "ip_mult_gate"), true, 64, size))
			flow = c.node("Mul", "/ip_mul_gate", []string{flow, g})
		}
		if present(w.GetIpAddGate()) {
			g := c.init(c.weight("/ip_add_gate/w", c.layer(w.GetIpAddGate(), "ip_add_gate"), true, 64, size))
			flow = c.node("Add", "/ip_add_gate", []string{flow, g})
		}
	}
	flow = c.reshape("/attn_body/rehape", flow, c.i64("/const/ma_gating/shape2", -1, int64(size)))
	a := alpha(len(w.GetEncoder()))
	if emb == pblczero.NetworkFormat_INPUT_EMBEDDING_PE_DENSE {
		ffnAct := c.defAct
		if fa := c.f.GetFfnActivation(); fa != pblczero.NetworkFormat_ACTIVATION_DEFAULT {
			ffnAct = fa
		}
		flow = c.ffn("/attn_body", flow, w.GetIpEmbFfn(), size, ffnAct, a)
		flow = c.layerNorm("/attn_body/ln2", flow, w.GetIpEmbFfnLnGammas(), w.GetIpEmbFfnLnBetas(), size, 1e-3)
	}
	for i, e := range w.GetEncoder() {
		flow = c.encoder("/encoder"+strconv.Itoa(i), flow, e, size, int(w.GetHeadcount()), c.defAct, a)
	}
	return flow
}

func (c *converter) ffn(name, in string, f *pblczero.Weights_FFN, size int, a act, alpha float32) string {
	dff := layerSize(f.GetDense1B())
	flow := c.matmulW(name+"/ffn/dense1/w", in, f.GetDense1W(), size, dff)
	flow = c.addW(name+"/ffn/dense1/b", flow, f.GetDense1B(), dff)
	flow = c.activation(flow, name+"/ffn/dense1", a)
	flow = c.matmulW(name+"/ffn/dense2/w", flow, f.GetDense2W(), dff, size)
	flow = c.addW(name+"/ffn/dense2/b", flow, f.GetDense2B(), size)
	if alpha != 1 {
		flow = c.mulScalar(name+"/ffn/alpha", flow, alpha)
	}
	return c.node("Add", name+"/ffn/skip", []string{flow, in})
}

// encoder is one transformer layer (lc0's MakeEncoderLayer): attention with optional smolgen biases, skip
// connection and layer norm, then the feed-forward network.
func (c *converter) encoder(name, in string, e *pblczero.Weights_EncoderLayer, size, heads int, a act, alpha float32) string {
	mha := e.GetMha()
	if mha.GetRpeQ() != nil || mha.GetRpeK() != nil || mha.GetRpeV() != nil {
		c.fail(fmt.Errorf("%s: relative position encodings (rpe_q/rpe_k/rpe_v): %w", name, ErrUnsupported))
		return in
	}
	dModel := layerSize(mha.GetQB())
	if heads <= 0 || dModel%heads != 0 {
		c.fail(fmt.Errorf("%s: %d attention heads for d_model %d: %w", name, heads, dModel, ErrMalformed))
		return in
	}
	depth := dModel / heads
	shape := c.i64("/const"+name+"/mha/shape", -1, 64, int64(heads), int64(depth))
	proj := func(x string, wl, bl *pblczero.Weights_Layer, perm ...int64) string {
		flow := c.matmulW(name+"/mha/"+x+"/w", in, wl, size, dModel)
		flow = c.addW(name+"/mha/"+x+"/b", flow, bl, dModel)
		flow = c.reshape(name+"/mha/"+x+"/reshape", flow, shape)
		return c.transpose(name+"/mha/"+x+"/transpose", flow, perm...)
	}
	q := proj("Q", mha.GetQW(), mha.GetQB(), 0, 2, 1, 3)
	k := proj("K", mha.GetKW(), mha.GetKB(), 0, 2, 3, 1)
	v := proj("V", mha.GetVW(), mha.GetVB(), 0, 2, 1, 3)
	flow := c.node("MatMul", name+"/mha/QK/matmul", []string{q, k})
	flow = c.mulScalar(name+"/mha/QK/scale", flow, 1/float32(math.Sqrt(float64(depth))))
	if mha.GetSmolgen() != nil {
		sm := c.smolgen(name, in, mha.GetSmolgen(), size, heads)
		flow = c.node("Add", name+"/smolgen_weights", []string{flow, sm})
	}
	flow = c.node("Softmax", name+"/mha/QK/softmax", []string{flow}, onnxgraph.AttrInt("axis", 3))
	flow = c.node("MatMul", name+"/mha/QKV/matmul", []string{flow, v})
	if heads > 1 {
		flow = c.transpose(name+"/mha/out/transpose", flow, 0, 2, 1, 3)
	}
	flow = c.reshape(name+"/mha/out/reshape", flow, c.i64("/const"+name+"/mha/out/shape", -1, int64(dModel)))
	flow = c.matmulW(name+"/mha/out/dense/w", flow, mha.GetDenseW(), dModel, size)
	flow = c.addW(name+"/mha/out/dense/b", flow, mha.GetDenseB(), size)
	if alpha != 1 {
		flow = c.mulScalar(name+"/alpha*input", flow, alpha)
	}
	flow = c.node("Add", name+"/mha/out/skip", []string{flow, in})
	flow = c.layerNorm(name+"/ln1", flow, e.GetLn1Gammas(), e.GetLn1Betas(), size, c.defEps)
	ffnAct := a
	if fa := c.f.GetFfnActivation(); fa != pblczero.NetworkFormat_ACTIVATION_DEFAULT {
		ffnAct = fa
	}
	flow = c.ffn(name, flow, e.GetFfn(), size, ffnAct, alpha)
	return c.layerNorm(name+"/ln2", flow, e.GetLn2Gammas(), e.GetLn2Betas(), size, c.defEps)
}

// smolgen builds the per-position attention biases [batch, heads, 64, 64] from the encoder input.
func (c *converter) smolgen(name, in string, s *pblczero.Weights_Smolgen, size, heads int) string {
	a := c.f.GetSmolgenActivation()
	if a == pblczero.NetworkFormat_ACTIVATION_DEFAULT {
		a = c.defAct
	}
	if c.w.GetSmolgenW() == nil {
		c.fail(fmt.Errorf("%s: smolgen layer without the shared smolgen_w: %w", name, ErrMalformed))
		return in
	}
	hidden := layerSize(s.GetCompress()) / max(size, 1)
	hiddenSz := layerSize(s.GetDense1B())
	gen := layerSize(s.GetDense2B()) / heads
	flow := c.matmulW(name+"/smolgen/compress", in, s.GetCompress(), size, hidden)
	flow = c.reshape(name+"/smolgen/compress/reshape", flow, c.i64("/const"+name+"/smolgen/compress/shape", -1, int64(64*hidden)))
	flow = c.matmulW(name+"/smolgen/dense1/w", flow, s.GetDense1W(), 64*hidden, hiddenSz)
	flow = c.addW(name+"/smolgen/dense1/b", flow, s.GetDense1B(), hiddenSz)
	flow = c.activation(flow, name+"/smolgen/dense1", a)
	flow = c.layerNorm(name+"/smolgen/ln1", flow, s.GetLn1Gammas(), s.GetLn1Betas(), hiddenSz, 1e-3)
	flow = c.matmulW(name+"/smolgen/dense2/w", flow, s.GetDense2W(), hiddenSz, gen*heads)
	flow = c.addW(name+"/smolgen/dense2/b", flow, s.GetDense2B(), gen*heads)
	flow = c.activation(flow, name+"/smolgen/dense2", a)
	flow = c.layerNorm(name+"/smolgen/ln2", flow, s.GetLn2Gammas(), s.GetLn2Betas(), gen*heads, 1e-3)
	flow = c.reshape(name+"/smolgen/gen_from/reshape", flow, c.i64("/const"+name+"/smolgen/gen_from/shape", -1, int64(heads), int64(gen)))
	flow = c.node("MatMul", name+"/smolgen/smol_weight_gen", []string{flow, "/const/smolgen_w"})
	return c.reshape(name+"/smolgen/out/reshape", flow, c.i64("/const"+name+"/smolgen/out/shape", -1, int64(heads), 64, 64))
}

func (c *converter) policyHead(in string) {
	_, heads, err := c.n.policyHeads()
	if err != nil {
		c.fail(err)
		return
	}
	h, ok := heads[c.opts.PolicyHead]
	if !ok {
		names, _ := c.n.HeadNames()
		c.fail(fmt.Errorf("policy head %q does not exist in this net (heads: %v): %w", c.opts.PolicyHead, names, ErrUnsupported))
		return
	}
	encoders := len(c.w.GetEncoder())
	switch {
	case c.f.GetPolicy() == pblczero.NetworkFormat_POLICY_ATTENTION:
		c.attentionPolicy(in, h)
	case !present(h.policy.GetWeights()):
		c.fail(fmt.Errorf("policy head %q is empty: %w", c.opts.PolicyHead, ErrMalformed))
		return
	case encoders > 0:
		c.fail(fmt.Errorf("convolution or classical policy with an attention body: %w", ErrUnsupported))
		return
	case present(h.policy1.GetWeights()):
		flow := c.convBlock("/policy/conv1", in, h.policy1, c.filters, c.filters, 3, nil, "", true)
		flow = c.convBlock("/policy/conv2", flow, h.policy, c.filters, 80, 3, nil, "", false)
		flow = c.reshape("/policy/flatten", flow, c.i64("/const/policy_shape", -1, 80*64))
		c.node("Gather", PolicyName, []string{flow, c.i32("/const/mapping_table", convPolicyMap())}, onnxgraph.AttrInt("axis", 1))
	default:
		ch := convOutputs(h.policy)
		flow := c.convBlock("/policy/conv", in, h.policy, c.filters, ch, 1, nil, "", true)
		flow = c.reshape("/policy/reshape", flow, c.i64("/const/policy_shape", -1, int64(ch*64)))
		flow = c.matmulW("/policy/dense/matmul", flow, h.ipPolW, ch*64, 1858)
		c.addW(PolicyName, flow, h.ipPolB, 1858)
	}
	c.output(PolicyName, -1, 1858)
}

func (c *converter) attentionPolicy(in string, h policyHead) {
	if !present(h.ip2B) {
		c.fail(fmt.Errorf("policy head %q is empty: %w", c.opts.PolicyHead, ErrMalformed))
		return
	}
	encoders := len(c.w.GetEncoder())
	embSize := c.filters
	if encoders > 0 {
		embSize = layerSize(c.w.GetIpEmbB())
	}
	polEmb := layerSize(h.ipPolB)
	dModel := layerSize(h.ip2B)
	a := act(pblczero.NetworkFormat_ACTIVATION_SELU)
	if c.f.GetNetwork() >= pblczero.NetworkFormat_NETWORK_ATTENTIONBODY_WITH_HEADFORMAT {
		a = c.defAct
	}
	flow := in
	if encoders == 0 {
		flow = c.transpose("/policy/dense1/transpose", flow, 0, 2, 3, 1)
		flow = c.reshape("/policy/dense1/reshape", flow, c.i64("/const/policy_shape", -1, int64(c.filters)))
	}
	flow = c.matmulW("/policy/dense1/matmul", flow, h.ipPolW, embSize, polEmb)
	flow = c.addW("/policy/dense1/add", flow, h.ipPolB, polEmb)
	flow = c.activation(flow, "/policy/dense1", a)
	for i, e := range h.encoders {
		flow = c.encoder("/policy/enc_layer_"+strconv.Itoa(i), flow, e, polEmb, h.headcount, a, 1)
	}
	encOut := flow
	flow = c.matmulW("/policy/Q/matmul", encOut, h.ip2W, polEmb, dModel)
	flow = c.addW("/policy/Q/add", flow, h.ip2B, dModel)
	qk := c.i64("/const/QK_shape", -1, 64, int64(dModel))
	q := c.reshape("/policy/Q/reshape", flow, qk)
	flow = c.matmulW("/policy/K/matmul", encOut, h.ip3W, polEmb, dModel)
	flow = c.addW("/policy/K/add", flow, h.ip3B, dModel)
	k := c.reshape("/policy/K/reshape", flow, qk)
	flow = c.transpose("/policy/K/transpose", k, 0, 2, 1)
	flow = c.node("MatMul", "/policy/matmul", []string{q, flow})
	flow = c.mulScalar("/policy/scale", flow, 1/float32(math.Sqrt(float64(dModel))))
	// Promotion logits: the keys of the last rank through ip4 give a per-piece offset added to the plain
	// 7th-to-8th-rank move logit (knight promotions keep the plain logit).
	prom := c.slice("policy/promotion/slice", k, []int32{0, 56, 0}, []int32{math.MaxInt32, 64, int32(dModel)})
	prom = c.matmulW("/policy/promotion/matmul", prom, h.ip4W, dModel, 4)
	prom = c.transpose("/policy/promotion/transpose", prom, 0, 2, 1)
	out1, out2 := "/policy/promotion/split/out1", "/policy/promotion/split/out2"
	c.nodes = append(c.nodes, onnxgraph.Node("Split", "/policy/promotion/split",
		[]string{prom, c.i64("/policy/promotion/split/split", 3, 1)}, []string{out1, out2}, onnxgraph.AttrInt("axis", 1)))
	prom = c.node("Add", "/policy/promotion/add", []string{out1, out2})
	prom = c.transpose("/policy/promotion/transpose2", prom, 0, 2, 1)
	prom = c.reshape("/policy/promotion/reshape", prom, c.i64("/const/policy_promotion_shape", -1, 1, 24))
	sl := c.slice("policy/promotion/slice2", flow, []int32{0, 48, 56}, []int32{math.MaxInt32, 56, 64})
	sl = c.reshape("/policy/promotion/reshape2", sl, c.i64("/const/policy_promotion_shape2", -1, 64, 1))
	sl = c.node("Concat", "/policy/promotion/concat", []string{sl, sl, sl}, onnxgraph.AttrInt("axis", 2))
	sl = c.reshape("/policy/promotion/reshape3", sl, c.i64("/const/policy_promotion_shape3", -1, 8, 24))
	prom = c.node("Add", "/policy/promotion/add2", []string{sl, prom})
	prom = c.reshape("/policy/promotion/reshape4", prom, c.i64("/const/policy_promotion_shape4", -1, 3, 64))
	flow = c.node("Concat", "/policy/concat", []string{flow, prom}, onnxgraph.AttrInt("axis", 1))
	flow = c.reshape("/policy/reshape", flow, c.i64("/const/policy_out_shape", -1, 67*64))
	c.node("Gather", PolicyName, []string{flow, c.i32("/const/mapping_table", attnPolicyMap())}, onnxgraph.AttrInt("axis", 1))
}

func (c *converter) valueHead(in string) {
	_, heads, err := c.n.valueHeads()
	if err != nil {
		c.fail(err)
		return
	}
	h, ok := heads[c.opts.ValueHead]
	if !ok {
		_, names := c.n.HeadNames()
		c.fail(fmt.Errorf("value head %q does not exist in this net (heads: %v): %w", c.opts.ValueHead, names, ErrUnsupported))
		return
	}
	if !present(h.ip1B) {
		c.fail(fmt.Errorf("value head %q is empty: %w", c.opts.ValueHead, ErrMalformed))
		return
	}
	var flow string
	var ch int
	if len(c.w.GetEncoder()) > 0 {
		ch = layerSize(h.ipB)
		size := layerSize(c.w.GetIpEmbB())
		flow = c.matmulW("/value/embed/matmul", in, h.ipW, size, ch)
		flow = c.addW("/value/embed/add", flow, h.ipB, ch)
		flow = c.activation(flow, "/value/embed", c.defAct)
	} else {
		ch = convOutputs(h.value)
		flow = c.convBlock("/value/conv", in, h.value, c.filters, ch, 1, nil, "", true)
	}
	fc1 := layerSize(h.ip1B)
	flow = c.reshape("/value/reshape", flow, c.i64("/const/value_shape", -1, int64(ch*64)))
	flow = c.matmulW("/value/dense1/matmul", flow, h.ip1W, ch*64, fc1)
	flow = c.addW("/value/dense1/add", flow, h.ip1B, fc1)
	flow = c.activation(flow, "/value/dense1", c.defAct)
	if c.f.GetValue() == pblczero.NetworkFormat_VALUE_WDL {
		flow = c.matmulW("/value/dense2/matmul", flow, h.ip2W, fc1, 3)
		flow = c.addW("/value/dense2/add", flow, h.ip2B, 3)
		c.node("Softmax", WDLName, []string{flow}, onnxgraph.AttrInt("axis", 1))
		c.output(WDLName, -1, 3)
		return
	}
	flow = c.matmulW("/value/dense2/matmul", flow, h.ip2W, fc1, 1)
	flow = c.addW("/value/dense2/add", flow, h.ip2B, 1)
	c.node("Tanh", ValueName, []string{flow})
	c.output(ValueName, -1, 1)
}

func (c *converter) movesLeftHead(in string) {
	if c.f.GetMovesLeft() != pblczero.NetworkFormat_MOVES_LEFT_V1 {
		return
	}
	w := c.w
	var flow string
	var ch int
	if len(w.GetEncoder()) > 0 {
		ch = layerSize(w.GetIpMovB())
		size := layerSize(w.GetIpEmbB())
		flow = c.matmulW("/mlh/embed/matmul", in, w.GetIpMovW(), size, ch)
		flow = c.addW("/mlh/embed/add", flow, w.GetIpMovB(), ch)
		flow = c.activation(flow, "/mlh/embed", c.defAct)
	} else {
		ch = convOutputs(w.GetMovesLeft())
		flow = c.convBlock("/mlh/conv", in, w.GetMovesLeft(), c.filters, ch, 1, nil, "", true)
	}
	fc1 := layerSize(w.GetIp1MovB())
	flow = c.reshape("/mlh/reshape", flow, c.i64("/const/mlh_shape", -1, int64(ch*64)))
	flow = c.matmulW("/mlh/dense1/matmul", flow, w.GetIp1MovW(), ch*64, fc1)
	flow = c.addW("/mlh/dense1/add", flow, w.GetIp1MovB(), fc1)
	flow = c.activation(flow, "/mlh/dense1", c.defAct)
	flow = c.matmulW("/mlh/dense2/matmul", flow, w.GetIp2MovW(), fc1, 1)
	flow = c.addW("/mlh/dense2/add", flow, w.GetIp2MovB(), 1)
	c.node("Relu", MLHName, []string{flow})
	c.output(MLHName, -1, 1)
}

// convOutputs is a convolution block's output channel count: its biases, else its batch-norm means.
func convOutputs(cb *pblczero.Weights_ConvBlock) int {
	if n := layerSize(cb.GetBiases()); n > 0 {
		return n
	}
	return layerSize(cb.GetBnMeans())
}
