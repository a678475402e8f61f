package autograd

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/lczerolens/lczerolens/internal/model/shape"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// contrib is one contribution to a tensor's gradient. A partial one has a shape that broadcasts to the
// tensor's (e.g. the [N,C,1,1] gradient of a spatial mean): it is only expanded when nothing full-sized is
// there to add it to, which saves materialising it.
type contrib struct {
	name    string
	partial bool
}

func full(name string) contrib { return contrib{name: name} }

// builder emits the backward nodes and tracks gradient contributions.
type builder struct {
	p     *plan
	opt   options
	used  map[string]bool // tensor and node names in use
	nodes []*pb.NodeProto
	inits []*pb.TensorProto
	cache map[string]string // memoised constants, shapes and weight rewrites
	// reshapeSrc maps the output of each emitted Reshape to its data input.
	reshapeSrc map[string]string
	grads      map[string][]contrib
	done       map[string]string // tensor -> its summed gradient
	cur        *pb.NodeProto     // forward node whose rule is running, for names
	seq        int
}

func newBuilder(p *plan, opt options) *builder {
	b := &builder{p: p, opt: opt, used: map[string]bool{}, cache: map[string]string{},
		grads: map[string][]contrib{}, done: map[string]string{}, reshapeSrc: map[string]string{}}
	for _, v := range p.g.GetInput() {
		b.used[v.GetName()] = true
	}
	for _, v := range p.g.GetOutput() {
		b.used[v.GetName()] = true
	}
	for _, t := range p.g.GetInitializer() {
		b.used[t.GetName()] = true
	}
	for _, n := range p.nodes {
		b.used["node:"+n.GetName()] = true
		for _, o := range n.GetOutput() {
			b.used[o] = true
		}
	}
	return b
}

func (b *builder) uniqueName(base string) string {
	name := base
	for i := 1; b.used[name]; i++ {
		name = base + "#" + strconv.Itoa(i)
	}
	b.used[name] = true
	return name
}

func (b *builder) uniqueNode(base string) string {
	name := base
	for i := 1; b.used["node:"+name]; i++ {
		name = base + "#" + strconv.Itoa(i)
	}
	b.used["node:"+name] = true
	return name
}

// hint names new tensors after the forward node being differentiated, so the backward graph reads like the
// forward one ("/grad/block0/conv1/Conv").
func (b *builder) hint(op string) string {
	base := "/grad"
	if b.cur != nil {
		l := nodeLabel(b.cur)
		if !strings.HasPrefix(l, "/") {
			l = "/" + l
		}
		base += l
	}
	return base + "/" + op
}

func (b *builder) emit(n *pb.NodeProto) { b.nodes = append(b.nodes, n) }

// op emits a single-output node and returns its output name.
func (b *builder) op(op string, inputs []string, attrs ...*pb.AttributeProto) string {
	return b.opN(op, inputs, 1, attrs...)[0]
}

func (b *builder) opN(op string, inputs []string, nout int, attrs ...*pb.AttributeProto) []string {
	if op == "Reshape" {
		// Reshape of a Reshape is a Reshape of its source. Besides saving a node this sidesteps an ORT
		// optimizer bug (contiguous-reshape fusion fails when the first shape is computed at run time).
		if src, ok := b.reshapeSrc[inputs[0]]; ok {
			inputs = []string{src, inputs[1]}
		}
	}
	h := b.hint(op)
	outs := make([]string, nout)
	for i := range outs {
		outs[i] = b.uniqueName(h)
	}
	b.emit(onnxgraph.Node(op, b.uniqueNode(h), inputs, outs, attrs...))
	if op == "Reshape" {
		b.reshapeSrc[outs[0]] = inputs[0]
	}
	return outs
}

func (b *builder) addInit(t *pb.TensorProto) string {
	b.inits = append(b.inits, t)
	return t.GetName()
}

// ints returns a constant 1-D INT64 tensor.
func (b *builder) ints(v ...int64) string {
	key := fmt.Sprint("i64", v)
	if n, ok := b.cache[key]; ok {
		return n
	}
	name := b.uniqueName("/grad/const/i64")
	b.cache[key] = b.addInit(onnxgraph.Int64Tensor(name, []int64{int64(len(v))}, v))
	return b.cache[key]
}

// scalar returns a constant scalar of element type elem.
func (b *builder) scalar(elem pb.TensorProto_DataType, v float64) string {
	key := fmt.Sprint("s", elem, v)
	if n, ok := b.cache[key]; ok {
		return n
	}
	name := b.uniqueName("/grad/const/" + strconv.FormatFloat(v, 'g', 6, 64))
	t, err := onnxgraph.FloatTensor(name, elemOrFloat(elem), nil, []float64{v})
	if err != nil { // elemOrFloat only returns FLOAT or DOUBLE
		panic(err)
	}
	b.cache[key] = b.addInit(t)
	return b.cache[key]
}

func elemOrFloat(e pb.TensorProto_DataType) pb.TensorProto_DataType {
	if e == pb.TensorProto_DOUBLE {
		return e
	}
	return pb.TensorProto_FLOAT
}

func (b *builder) info(name string) *shape.Info { return b.p.inf.Get(name) }

func (b *builder) elem(name string) pb.TensorProto_DataType { return elemOrFloat(b.info(name).Elem) }

func (b *builder) addGrad(t string, c contrib) { b.grads[t] = append(b.grads[t], c) }

// total sums t's gradient contributions ("" when there are none). Called once all of t's consumers have been
// differentiated, which reverse topological order guarantees.
func (b *builder) total(t string) string {
	if g, ok := b.done[t]; ok {
		return g
	}
	cs := b.grads[t]
	var fulls, parts []string
	for _, c := range cs {
		if c.partial {
			parts = append(parts, c.name)
		} else {
			fulls = append(fulls, c.name)
		}
	}
	all := append(fulls, parts...)
	var g string
	switch len(all) {
	case 0:
	case 1:
		g = all[0]
	case 2:
		g = b.op("Add", all)
	default:
		g = b.op("Sum", all)
	}
	if len(fulls) == 0 && g != "" {
		g = b.op("Expand", []string{g, b.shapeOf(t)})
	}
	b.done[t] = g
	return g
}

// shapeOf returns a tensor holding t's exact shape: a constant when inference knows it, else Shape(t).
func (b *builder) shapeOf(t string) string {
	if ti := b.info(t); ti.Static() && !b.opt.naiveBroadcast {
		return b.ints(ti.Ints()...)
	}
	key := "shape:" + t
	if n, ok := b.cache[key]; ok {
		return n
	}
	b.cache[key] = b.op("Shape", []string{t})
	return b.cache[key]
}

// reshapeTo reshapes x to t's shape, using a constant target (with one -1) when inference allows.
func (b *builder) reshapeTo(x, t string) string {
	ti := b.info(t)
	if ti.Ranked && !b.opt.naiveBroadcast {
		unknown := 0
		v := make([]int64, len(ti.Dims))
		for i, d := range ti.Dims {
			if d.IsKnown() {
				v[i] = d.C
				if d.C == 0 {
					unknown = 2 // 0 would mean 'copy' to Reshape
				}
			} else {
				v[i] = -1
				unknown++
			}
		}
		if unknown <= 1 {
			return b.op("Reshape", []string{x, b.ints(v...)})
		}
	}
	return b.op("Reshape", []string{x, b.shapeOf(t)})
}

// zerosLike returns zeros of t's shape and type.
func (b *builder) zerosLike(t string) string {
	v, err := onnxgraph.FloatTensor("value", b.elem(t), []int64{1}, []float64{0})
	if err != nil {
		panic(err)
	}
	return b.op("ConstantOfShape", []string{b.shapeOf(t)}, onnxgraph.AttrTensor("value", v))
}

// unb reduces g, whose shape is gd, to the shape of x, which broadcast to gd in the forward op. Static shapes
// give at most one ReduceSum (+ a free Reshape when ranks differ); otherwise the reduced axes are found at run
// time from the two shapes.
func (b *builder) unb(g string, gd *shape.Info, x string) string {
	xd := b.info(x)
	if gd.Ranked && xd.Ranked && !b.opt.naiveBroadcast {
		lead := len(gd.Dims) - len(xd.Dims)
		if lead >= 0 {
			var axes []int64
			for i := range lead {
				axes = append(axes, int64(i))
			}
			ok := true
			for i, d := range xd.Dims {
				o := gd.Dims[lead+i]
				switch {
				case d == o:
				case d.IsOne():
					axes = append(axes, int64(lead+i))
				default:
					ok = false
				}
			}
			if ok {
				if len(axes) == 0 {
					return g
				}
				r := b.op("ReduceSum", []string{g, b.ints(axes...)}, onnxgraph.AttrInt("keepdims", 1))
				if lead > 0 {
					r = b.reshapeTo(r, x)
				}
				return r
			}
		}
	}
	return b.unbDynamic(g, x)
}

// unbDynamic is unb with nothing known: pad x's shape with leading ones to g's rank, reduce (keepdims) over the
// axes where the two differ, and reshape to x's shape.
func (b *builder) unbDynamic(g, x string) string {
	sx := b.op("Shape", []string{x})
	sg := b.op("Shape", []string{g})
	diff := b.op("Sub", []string{b.op("Shape", []string{sg}), b.op("Shape", []string{sx})})
	ones := b.op("Expand", []string{b.ints(1), diff})
	padded := b.op("Concat", []string{ones, sx}, onnxgraph.AttrInt("axis", 0))
	mask := b.op("Not", []string{b.op("Equal", []string{padded, sg})})
	axes := b.op("Reshape", []string{b.op("NonZero", []string{mask}), b.ints(-1)})
	r := b.op("ReduceSum", []string{g, axes}, onnxgraph.AttrInt("keepdims", 1), onnxgraph.AttrInt("noop_with_empty_axes", 1))
	return b.op("Reshape", []string{r, sx})
}

// reduce emits a Reduce* node, passing axes the way the model's opset wants (attribute before 18, input after;
// ReduceSum switched at 13).
func (b *builder) reduce(op, x string, axes []int64, keepdims bool) string {
	k := int64(0)
	if keepdims {
		k = 1
	}
	if op == "ReduceSum" || b.p.opset >= 18 {
		return b.op(op, []string{x, b.ints(axes...)}, onnxgraph.AttrInt("keepdims", k))
	}
	return b.op(op, []string{x}, onnxgraph.AttrInts("axes", axes...), onnxgraph.AttrInt("keepdims", k))
}

// transposedInit returns the name of an initializer holding the 2-D initializer w transposed.
func (b *builder) transposedInit(w *pb.TensorProto) (string, error) {
	key := "T:" + w.GetName()
	if n, ok := b.cache[key]; ok {
		return n, nil
	}
	v, err := onnxgraph.Float64s(w)
	if err != nil {
		return "", err
	}
	r, c := w.GetDims()[0], w.GetDims()[1]
	t := make([]float64, len(v))
	for i := range r {
		for j := range c {
			t[j*r+i] = v[i*c+j]
		}
	}
	tt, err := onnxgraph.FloatTensor(b.uniqueName(w.GetName()+"/T"), elemOrFloat(pb.TensorProto_DataType(w.GetDataType())), []int64{c, r}, t)
	if err != nil {
		return "", err
	}
	b.cache[key] = b.addInit(tt)
	return b.cache[key], nil
}

// constInit returns the initializer (or Constant value) called name, if it is one and not a graph input.
func (b *builder) constInit(name string) *pb.TensorProto {
	if b.p.inputs[name] {
		return nil
	}
	return b.p.ix.Initializers[name]
}

// constScalar returns the value of a constant one-element tensor.
func (b *builder) constScalar(name string) (float64, bool) {
	t := b.constInit(name)
	if t == nil || onnxgraph.NumElements(t.GetDims()) != 1 {
		return 0, false
	}
	if v, err := onnxgraph.Float64s(t); err == nil {
		return v[0], true
	}
	if v, err := onnxgraph.Int64s(t); err == nil {
		return float64(v[0]), true
	}
	return 0, false
}

// count returns a scalar of elem type holding numel(x)/numel(y), statically when possible.
func (b *builder) count(x, y string, elem pb.TensorProto_DataType) string {
	xi, yi := b.info(x), b.info(y)
	if xi.Ranked && yi.Ranked {
		px, py := b.p.inf.Prod(xi.Dims), b.p.inf.Prod(yi.Dims)
		if q := b.p.inf.Div(px, py); q.IsKnown() && q.C > 0 {
			return b.scalar(elem, float64(q.C))
		}
	}
	q := b.op("Div", []string{b.op("Size", []string{x}), b.op("Size", []string{y})})
	return b.op("Cast", []string{q}, onnxgraph.AttrInt("to", int64(elemOrFloat(elem))))
}

const int64Min = math.MinInt64
