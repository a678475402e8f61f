package model

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/lczerolens/lczerolens/internal/lc0"
	"github.com/lczerolens/lczerolens/internal/model/shape"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// Plane geometry every lc0 network reads.
const (
	Planes     = 112
	PolicySize = 1858
)

// Standard lc0 tensor names (leela2onnx).
const (
	InputName  = "/input/planes"
	PolicyName = "/output/policy"
	WDLName    = "/output/wdl"
	ValueName  = "/output/value"
	MLHName    = "/output/mlh"
)

// Network is a loaded lc0 ONNX network: the graph, what its input and heads are called, and its modules.
type Network struct {
	Path   string // file path, or the name given to LoadBytes
	SHA256 string // of the file bytes (the weight file for converted nets)
	// GraphSHA256 identifies the computation (GraphHash): a weight file and its ONNX export share it.
	GraphSHA256 string
	Proto       *pb.ModelProto

	// InputFormat is lc0's input format number from a weight file (1 classical, 3-5 canonical, ...); 0 for
	// .onnx files, which do not record it.
	InputFormat int
	// Weights describes the lc0 weight file the network was converted from (as lc0's describenet does);
	// nil for .onnx files.
	Weights *lc0.Description

	Input   string // graph input holding the [batch,112,8,8] planes
	Heads   Heads
	Modules []Module // every node output, in graph order

	raw    []byte
	shapes *shape.Inference // every tensor's symbolic type and shape
	byName map[string]int   // module name and tensor name -> index in Modules
	mu     sync.Mutex
	plans  map[string]*Plan // by hooked tensors
	// backward holds backward plans (gradients, relevances) by hooks and passes.
	backward map[string]*backwardEntry
}

// Heads holds the output tensor names of the network's heads, "" where the net has no such head.
type Heads struct {
	Policy, WDL, Value, MLH string
}

// Module is one node output tensor, addressable by name in hooks and lenses.
type Module struct {
	Name   string  // tensor name without the leading "/", e.g. "block2/conv2/relu"
	Tensor string  // tensor name in the graph
	Op     string  // op type of the producing node
	Shape  []int64 // for a batch of 1; nil when static inference could not tell
	DType  string  // element type, e.g. "float32"
}

// Load reads an lc0 network from an .onnx file, or from an lc0 weight file (.pb, .pb.gz) converted as lc0's
// leela2onnx would.
func Load(path string) (*Network, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("model: load %s: no such file; pass the path of an lc0 network (.pb, .pb.gz or .onnx), or omit --model for the demo network", path)
		}
		return nil, fmt.Errorf("model: load %s: %w", path, err)
	}
	return LoadBytes(path, raw)
}

// LoadBytes parses an lc0 network from the bytes of an .onnx file or of an lc0 weight file (gzipped or not),
// which it converts; name is used in messages and as Path.
func LoadBytes(name string, raw []byte) (*Network, error) {
	if lc0.LooksLikeWeights(raw) {
		return loadWeights(name, raw)
	}
	m, err := onnxgraph.Unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("model: load %s: not an onnx model or lc0 weights file; pass an lc0 network (.pb, .pb.gz or .onnx)", name)
	}
	return newNetwork(name, raw, m, raw, 0)
}

// loadWeights converts an lc0 weight file; SHA256 stays that of the file, so it names the file the user gave.
func loadWeights(name string, raw []byte) (*Network, error) {
	w, err := lc0.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("model: load %s: %w", name, err)
	}
	m, err := lc0.Convert(w, lc0.Options{})
	if err != nil {
		return nil, fmt.Errorf("model: load %s: %w", name, err)
	}
	onnxRaw, err := onnxgraph.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("model: load %s: %w", name, err)
	}
	n, err := newNetwork(name, raw, m, onnxRaw, w.InputFormat())
	if err != nil {
		return nil, err
	}
	d := w.Describe()
	n.Weights = &d
	return n, nil
}

func newNetwork(name string, file []byte, m *pb.ModelProto, onnxRaw []byte, inputFormat int) (*Network, error) {
	sum := sha256.Sum256(file)
	n := &Network{Path: name, SHA256: hex.EncodeToString(sum[:]), GraphSHA256: GraphHash(m), Proto: m, InputFormat: inputFormat,
		raw: onnxRaw, plans: map[string]*Plan{}}
	if err := n.inspect(); err != nil {
		return nil, fmt.Errorf("model: load %s: not an lc0 network: %w", name, err)
	}
	return n, nil
}

// inspect finds the planes input and the heads, and lists the modules.
func (n *Network) inspect() error {
	g := n.Proto.GetGraph()
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	var inputs []string
	for _, in := range g.GetInput() {
		if inits[in.GetName()] {
			continue
		}
		inputs = append(inputs, in.GetName())
		if n.Input == "" && isPlanesInput(in) {
			n.Input = in.GetName()
		}
	}
	if n.Input == "" {
		var desc []string
		for _, in := range g.GetInput() {
			if !inits[in.GetName()] {
				desc = append(desc, in.GetName()+" "+shapeString(in))
			}
		}
		return fmt.Errorf("no float input of shape [batch,112,8,8] (inputs: %s)", strings.Join(desc, ", "))
	}
	if len(inputs) != 1 {
		return fmt.Errorf("%d graph inputs (%s), want only the planes", len(inputs), strings.Join(inputs, ", "))
	}
	n.shapes = shape.Infer(g)
	n.Heads = findHeads(g, n.shapes)
	if n.Heads.Policy == "" {
		var outs []string
		for _, o := range g.GetOutput() {
			outs = append(outs, o.GetName())
		}
		return fmt.Errorf("no policy output [batch,1858] (outputs: %s)", strings.Join(outs, ", "))
	}
	n.byName = map[string]int{}
	for _, node := range g.GetNode() {
		for _, o := range node.GetOutput() {
			if o == "" {
				continue
			}
			if _, dup := n.byName[o]; dup {
				return fmt.Errorf("tensor %q produced twice", o)
			}
			mod := Module{Name: strings.TrimPrefix(o, "/"), Tensor: o, Op: node.GetOpType()}
			t := n.shapes.Get(o)
			mod.DType = dtypeName(elemOrGuess(t.Elem, node, n.shapes))
			if s, ok := n.shapes.Concrete(t, 1); ok {
				mod.Shape = s
			}
			n.byName[o] = len(n.Modules)
			n.Modules = append(n.Modules, mod)
		}
	}
	for i, m := range n.Modules {
		if _, clash := n.byName[m.Name]; !clash {
			n.byName[m.Name] = i
		}
	}
	return nil
}

func isPlanesInput(v *pb.ValueInfoProto) bool {
	tt := v.GetType().GetTensorType()
	if tt == nil || pb.TensorProto_DataType(tt.GetElemType()) != pb.TensorProto_FLOAT {
		return false
	}
	dims := tt.GetShape().GetDim()
	if len(dims) != 4 {
		return false
	}
	for i, want := range []int64{Planes, 8, 8} {
		if dims[i+1].GetDimValue() != want {
			return false
		}
	}
	return true
}

// findHeads takes lc0's standard output names, else recognises heads by output shape and name.
func findHeads(g *pb.GraphProto, shapes *shape.Inference) Heads {
	var h Heads
	last := func(name string) int64 {
		if t := shapes.Get(name); t.Rank() == 2 && t.Dims[1].IsKnown() {
			return t.Dims[1].C
		}
		return -1
	}
	for _, o := range g.GetOutput() {
		name := o.GetName()
		lower := strings.ToLower(name)
		switch {
		case name == PolicyName, h.Policy == "" && strings.Contains(lower, "policy") && last(name) == PolicySize:
			h.Policy = name
		case name == WDLName, h.WDL == "" && strings.Contains(lower, "wdl") && last(name) == 3:
			h.WDL = name
		case name == ValueName, h.Value == "" && strings.Contains(lower, "value") && last(name) == 1:
			h.Value = name
		case name == MLHName, h.MLH == "" && (strings.Contains(lower, "mlh") || strings.Contains(lower, "moves_left")) && last(name) == 1:
			h.MLH = name
		}
	}
	return h
}

func shapeString(v *pb.ValueInfoProto) string {
	var parts []string
	for _, d := range v.GetType().GetTensorType().GetShape().GetDim() {
		if d.GetDimParam() != "" {
			parts = append(parts, d.GetDimParam())
		} else {
			parts = append(parts, strconv.FormatInt(d.GetDimValue(), 10))
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Module returns the module with the given module or tensor name.
func (n *Network) Module(name string) (Module, bool) {
	i, ok := n.byName[name]
	if !ok {
		return Module{}, false
	}
	return n.Modules[i], true
}

// Select returns the modules whose name matches the Go regular expression pattern, in graph order.
func (n *Network) Select(pattern string) ([]Module, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("model: select %q: invalid regular expression: %w", pattern, err)
	}
	var out []Module
	for _, m := range n.Modules {
		if re.MatchString(m.Name) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("model: select %q: no module matches; list them with `lczerolens model modules --model %s`", pattern, n.Path)
	}
	return out, nil
}

// IO describes one graph input or output; a batch dimension is -1.
type IO struct {
	Name  string
	Shape []int64
}

// Info summarises a network for `model info`.
type Info struct {
	Path, SHA256 string
	Producer     string
	IRVersion    int64
	Opset        int64
	Inputs       []IO
	Outputs      []IO
	Heads        Heads
	Body         string // "residual" (SE when SE is true) or "attention"
	SE           bool
	Blocks       int // residual blocks, or encoder layers for attention bodies
	Filters      int // residual filters, or embedding size for attention bodies
	Nodes        int
	OpCounts     map[string]int
	Params       int64 // initializer elements
}

var (
	blockRe   = regexp.MustCompile(`^/block(\d+)/`)
	encoderRe = regexp.MustCompile(`^/encoder(\d+)/`)
)

// Info inspects the graph: interface, heads, body size, op counts and parameter count.
func (n *Network) Info() Info {
	g := n.Proto.GetGraph()
	in := Info{
		Path: n.Path, SHA256: n.SHA256, Producer: n.Proto.GetProducerName(), IRVersion: n.Proto.GetIrVersion(),
		Opset: onnxgraph.OpsetVersion(n.Proto), Heads: n.Heads, Nodes: len(g.GetNode()), OpCounts: map[string]int{},
	}
	io := func(v *pb.ValueInfoProto) IO {
		var s []int64
		for _, d := range v.GetType().GetTensorType().GetShape().GetDim() {
			if d.GetDimParam() != "" || d.GetDimValue() <= 0 {
				s = append(s, -1)
			} else {
				s = append(s, d.GetDimValue())
			}
		}
		return IO{Name: v.GetName(), Shape: s}
	}
	inits := map[string]*pb.TensorProto{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = t
		in.Params += int64(onnxgraph.NumElements(t.GetDims()))
	}
	for _, v := range g.GetInput() {
		if inits[v.GetName()] == nil {
			in.Inputs = append(in.Inputs, io(v))
		}
	}
	for _, v := range g.GetOutput() {
		in.Outputs = append(in.Outputs, io(v))
	}
	blocks, encoders := map[int]bool{}, map[int]bool{}
	var embedding int
	for _, node := range g.GetNode() {
		in.OpCounts[node.GetOpType()]++
		name := node.GetName()
		if name == "" && len(node.GetOutput()) > 0 {
			name = node.GetOutput()[0]
		}
		if m := blockRe.FindStringSubmatch(name); m != nil {
			k, _ := strconv.Atoi(m[1])
			blocks[k] = true
			if strings.Contains(name, "/se/") {
				in.SE = true
			}
		}
		if m := encoderRe.FindStringSubmatch(name); m != nil {
			k, _ := strconv.Atoi(m[1])
			encoders[k] = true
		}
		switch {
		case name == "/inputconv" && node.GetOpType() == "Conv" && len(node.GetInput()) > 1:
			if w := inits[node.GetInput()[1]]; w != nil && len(w.GetDims()) > 0 {
				in.Filters = int(w.GetDims()[0])
			}
		case name == "/attn_body/matmul" && len(node.GetInput()) > 1:
			if w := inits[node.GetInput()[1]]; w != nil && len(w.GetDims()) == 2 {
				embedding = int(w.GetDims()[1])
			}
		}
	}
	switch {
	case len(encoders) > 0 && len(blocks) == 0:
		in.Body, in.Blocks, in.Filters = "attention", len(encoders), embedding
	case len(blocks) > 0 || in.Filters > 0:
		in.Body, in.Blocks = "residual", len(blocks)
	default:
		in.Body = "unknown"
	}
	return in
}

// OpCountList returns the op counts sorted by count (descending), then name.
func (i Info) OpCountList() []OpCount {
	var out []OpCount
	for op, c := range i.OpCounts {
		out = append(out, OpCount{op, c})
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Count != out[b].Count {
			return out[a].Count > out[b].Count
		}
		return out[a].Op < out[b].Op
	})
	return out
}

// OpCount is one op type and how many nodes use it.
type OpCount struct {
	Op    string
	Count int
}
