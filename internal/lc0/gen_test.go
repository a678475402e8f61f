package lc0

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/rand/v2"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/lczerolens/lczerolens/internal/lc0/pblczero"
	onnxpb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// This file writes lc0 weight files for tests: small random nets of the residual architectures (the real
// and synthetic nets in ../shared cover the rest), and layer encoders for re-encoding real nets.

// Exported for the external test package (lc0_test), which needs ONNX Runtime through internal/model.
var (
	GenNetForTest        = genNet
	EncodeLayerForTest   = encodeLayer
	DecodeLayerForTest   = decodeLayer
	ConvPolicyMapForTest = convPolicyMap
)

// GenSpec describes a generated net.
type GenSpec struct {
	Seed            uint64
	Blocks, Filters int
	SE              bool   // squeeze-and-excitation in every block
	BatchNorm       bool   // conv blocks carry batch norm (folded on conversion) instead of biases
	Policy          string // "convolution", "classical" or "attention"
	PolicyChannels  int    // classical head: channels of its 1x1 convolution
	WDL, MLH        bool
	Encoding        pblczero.Weights_Layer_Encoding
	InputFormat     pblczero.NetworkFormat_InputFormat
	Mish            bool

	// Attention body (Encoders > 0 replaces the residual tower): embedding size Filters, PE map or dense
	// embedding, optional smolgen and input gating.
	Encoders, Heads        int
	Dense, Smolgen, Gating bool
}

type gen struct {
	r   *rand.Rand
	enc pblczero.Weights_Layer_Encoding
}

func (g *gen) vals(n, fanIn int) []float32 {
	v := make([]float32, n)
	s := 1 / math.Sqrt(float64(max(fanIn, 1)))
	for i := range v {
		v[i] = float32(g.r.NormFloat64() * s)
	}
	return v
}

func (g *gen) layer(n, fanIn int) *pblczero.Weights_Layer {
	return encodeLayer(g.vals(n, fanIn), g.enc)
}

func (g *gen) conv(in, out, k int, bn bool) *pblczero.Weights_ConvBlock {
	cb := &pblczero.Weights_ConvBlock{Weights: g.layer(out*in*k*k, in*k*k)}
	if !bn {
		cb.Biases = g.layer(out, 4)
		return cb
	}
	means, stddivs, gammas, betas := g.vals(out, 4), make([]float32, out), make([]float32, out), g.vals(out, 4)
	for i := range stddivs {
		stddivs[i] = 0.5 + g.r.Float32()
		gammas[i] = 0.5 + g.r.Float32()
	}
	cb.BnMeans, cb.BnStddivs = encodeLayer(means, g.enc), encodeLayer(stddivs, g.enc)
	cb.BnGammas, cb.BnBetas = encodeLayer(gammas, g.enc), encodeLayer(betas, g.enc)
	return cb
}

// genNet builds a random net of the given shape.
func genNet(s GenSpec) *pblczero.Net {
	g := &gen{r: rand.New(rand.NewPCG(s.Seed, 0x1c0)), enc: s.Encoding}
	f := s.Filters
	w := &pblczero.Weights{}
	if s.Encoders > 0 {
		g.attentionBody(w, s)
	} else {
		w.Input = g.conv(112, f, 3, s.BatchNorm)
	}
	for range s.Blocks {
		r := &pblczero.Weights_Residual{Conv1: g.conv(f, f, 3, s.BatchNorm), Conv2: g.conv(f, f, 3, s.BatchNorm)}
		if s.SE {
			se := max(f/2, 1)
			r.Se = &pblczero.Weights_SEunit{W1: g.layer(se*f, f), B1: g.layer(se, 4), W2: g.layer(2*f*se, se), B2: g.layer(2*f, 4)}
		}
		w.Residual = append(w.Residual, r)
	}
	format := &pblczero.NetworkFormat{
		Input:   s.InputFormat.Enum(),
		Output:  pblczero.NetworkFormat_OUTPUT_CLASSICAL.Enum(),
		Network: pblczero.NetworkFormat_NETWORK_CLASSICAL_WITH_HEADFORMAT.Enum(),
		Value:   pblczero.NetworkFormat_VALUE_CLASSICAL.Enum(),
	}
	if s.InputFormat == 0 {
		format.Input = pblczero.NetworkFormat_INPUT_CLASSICAL_112_PLANE.Enum()
	}
	if s.SE {
		format.Network = pblczero.NetworkFormat_NETWORK_SE_WITH_HEADFORMAT.Enum()
	}
	if s.Encoders > 0 {
		format.Network = pblczero.NetworkFormat_NETWORK_ATTENTIONBODY_WITH_HEADFORMAT.Enum()
		format.InputEmbedding = pblczero.NetworkFormat_INPUT_EMBEDDING_PE_MAP.Enum()
		if s.Dense {
			format.InputEmbedding = pblczero.NetworkFormat_INPUT_EMBEDDING_PE_DENSE.Enum()
		}
		format.SmolgenActivation = pblczero.NetworkFormat_ACTIVATION_SWISH.Enum()
		format.FfnActivation = pblczero.NetworkFormat_ACTIVATION_RELU_2.Enum()
	}
	if s.Mish {
		format.DefaultActivation = pblczero.NetworkFormat_DEFAULT_ACTIVATION_MISH.Enum()
	}
	switch s.Policy {
	case "convolution":
		format.Policy = pblczero.NetworkFormat_POLICY_CONVOLUTION.Enum()
		w.Policy1 = g.conv(f, f, 3, s.BatchNorm)
		w.Policy = g.conv(f, 80, 3, false)
	case "classical":
		format.Policy = pblczero.NetworkFormat_POLICY_CLASSICAL.Enum()
		pc := s.PolicyChannels
		w.Policy = g.conv(f, pc, 1, s.BatchNorm)
		w.IpPolW = g.layer(1858*pc*64, pc*64)
		w.IpPolB = g.layer(1858, 4)
	case "attention":
		format.Policy = pblczero.NetworkFormat_POLICY_ATTENTION.Enum()
		emb, dm := 2*f, f
		w.IpPolW, w.IpPolB = g.layer(emb*f, f), g.layer(emb, 4)
		w.Ip2PolW, w.Ip2PolB = g.layer(dm*emb, emb), g.layer(dm, 4)
		w.Ip3PolW, w.Ip3PolB = g.layer(dm*emb, emb), g.layer(dm, 4)
		w.Ip4PolW = g.layer(4*dm, dm)
	}
	vc, fc1 := 2, 8
	if s.Encoders > 0 {
		w.IpValW, w.IpValB = g.layer(vc*f, f), g.layer(vc, 4)
	} else {
		w.Value = g.conv(f, vc, 1, s.BatchNorm)
	}
	w.Ip1ValW, w.Ip1ValB = g.layer(fc1*vc*64, vc*64), g.layer(fc1, 4)
	if s.WDL {
		format.Value = pblczero.NetworkFormat_VALUE_WDL.Enum()
		format.Output = pblczero.NetworkFormat_OUTPUT_WDL.Enum()
		w.Ip2ValW, w.Ip2ValB = g.layer(3*fc1, fc1), g.layer(3, 4)
	} else {
		w.Ip2ValW, w.Ip2ValB = g.layer(fc1, fc1), g.layer(1, 4)
	}
	if s.MLH {
		format.MovesLeft = pblczero.NetworkFormat_MOVES_LEFT_V1.Enum()
		if s.Encoders > 0 {
			w.IpMovW, w.IpMovB = g.layer(f, f), g.layer(1, 4)
		} else {
			w.MovesLeft = g.conv(f, 1, 1, s.BatchNorm)
		}
		w.Ip1MovW, w.Ip1MovB = g.layer(fc1*64, 64), g.layer(fc1, 4)
		w.Ip2MovW, w.Ip2MovB = g.layer(fc1, fc1), g.layer(1, 4)
	}
	return &pblczero.Net{
		Magic:          proto.Uint32(Magic),
		MinVersion:     &pblczero.EngineVersion{Major: proto.Uint32(0), Minor: proto.Uint32(33), Patch: proto.Uint32(0)},
		Format:         &pblczero.Format{NetworkFormat: format},
		TrainingParams: &pblczero.TrainingParams{TrainingSteps: proto.Uint32(1234), Lc0Params: proto.String("generated by lczerolens tests")},
		Weights:        w,
	}
}

func (g *gen) ffn(emb, dff int) *pblczero.Weights_FFN {
	return &pblczero.Weights_FFN{Dense1W: g.layer(dff*emb, emb), Dense1B: g.layer(dff, 4), Dense2W: g.layer(emb*dff, dff), Dense2B: g.layer(emb, 4)}
}

// attentionBody fills an attention body of s.Encoders layers with embedding size s.Filters.
func (g *gen) attentionBody(w *pblczero.Weights, s GenSpec) {
	emb, dff, heads := s.Filters, 2*s.Filters, max(s.Heads, 1)
	first := 176
	if s.Dense {
		const dense = 2
		first = 112 + dense
		w.IpEmbPreprocW, w.IpEmbPreprocB = g.layer(64*dense*768, 768), g.layer(64*dense, 4)
		w.IpEmbLnGammas, w.IpEmbLnBetas = g.layer(emb, 1), g.layer(emb, 4)
		w.IpEmbFfn = g.ffn(emb, dff)
		w.IpEmbFfnLnGammas, w.IpEmbFfnLnBetas = g.layer(emb, 1), g.layer(emb, 4)
	}
	w.IpEmbW, w.IpEmbB = g.layer(emb*first, first), g.layer(emb, 4)
	if s.Gating {
		w.IpMultGate, w.IpAddGate = g.layer(64*emb, 1), g.layer(64*emb, 4)
	}
	const hidden, hs, gen = 2, 4, 2
	if s.Smolgen {
		w.SmolgenW = g.layer(gen*4096, gen)
	}
	w.Headcount = proto.Uint32(uint32(heads))
	for range s.Encoders {
		mha := &pblczero.Weights_MHA{
			QW: g.layer(emb*emb, emb), QB: g.layer(emb, 4), KW: g.layer(emb*emb, emb), KB: g.layer(emb, 4),
			VW: g.layer(emb*emb, emb), VB: g.layer(emb, 4), DenseW: g.layer(emb*emb, emb), DenseB: g.layer(emb, 4),
		}
		if s.Smolgen {
			mha.Smolgen = &pblczero.Weights_Smolgen{
				Compress: g.layer(hidden*emb, emb), Dense1W: g.layer(hs*64*hidden, 64*hidden), Dense1B: g.layer(hs, 4),
				Ln1Gammas: g.layer(hs, 1), Ln1Betas: g.layer(hs, 4), Dense2W: g.layer(gen*heads*hs, hs),
				Dense2B: g.layer(gen*heads, 4), Ln2Gammas: g.layer(gen*heads, 1), Ln2Betas: g.layer(gen*heads, 4),
			}
		}
		w.Encoder = append(w.Encoder, &pblczero.Weights_EncoderLayer{
			Mha: mha, Ln1Gammas: g.layer(emb, 1), Ln1Betas: g.layer(emb, 4), Ffn: g.ffn(emb, dff),
			Ln2Gammas: g.layer(emb, 1), Ln2Betas: g.layer(emb, 4),
		})
	}
}

// encodeLayer stores values in a layer with the given encoding (round to nearest even for 16-bit floats).
func encodeLayer(v []float32, enc pblczero.Weights_Layer_Encoding) *pblczero.Weights_Layer {
	l := &pblczero.Weights_Layer{Encoding: enc.Enum()}
	switch enc {
	case pblczero.Weights_Layer_FLOAT32:
		l.Params = make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(l.Params[4*i:], math.Float32bits(x))
		}
		return l
	case pblczero.Weights_Layer_LINEAR16:
		lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
		for _, x := range v {
			lo, hi = min(lo, x), max(hi, x)
		}
		if hi <= lo {
			hi = lo + 1
		}
		l.MinVal, l.MaxVal = proto.Float32(lo), proto.Float32(hi)
	}
	l.Params = make([]byte, 2*len(v))
	for i, x := range v {
		var u uint16
		switch enc {
		case pblczero.Weights_Layer_LINEAR16:
			u = uint16(math.Round(float64(x-l.GetMinVal()) / float64(l.GetMaxVal()-l.GetMinVal()) * 65535))
		case pblczero.Weights_Layer_FLOAT16:
			u = toHalf(x)
		case pblczero.Weights_Layer_BFLOAT16:
			b := math.Float32bits(x)
			u = uint16((b + 0x7fff + (b>>16)&1) >> 16)
		}
		binary.LittleEndian.PutUint16(l.Params[2*i:], u)
	}
	return l
}

// toHalf converts to IEEE half precision, rounding to nearest even (finite, in-range inputs).
func toHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	x := math.Abs(float64(f))
	switch {
	case x >= 65520:
		return sign | 0x7c00
	case x < math.Ldexp(1, -25):
		return sign
	case x < math.Ldexp(1, -14): // subnormal: multiples of 2^-24
		return sign | uint16(math.RoundToEven(x*(1<<24)))
	}
	exp := int(b>>23&0xff) - 127
	mant := float64(b&0x7fffff) / (1 << 23) // fraction in [0,1)
	m := math.RoundToEven(mant * 1024)
	if m == 1024 {
		m, exp = 0, exp+1
	}
	if exp > 15 {
		return sign | 0x7c00
	}
	return sign | uint16(exp+15)<<10 | uint16(m)
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x1c0)) }

// exactFMA32 is a*b+c computed exactly and rounded once to float32.
func exactFMA32(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(200).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(200).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

func hasNode(nodes []*onnxpb.NodeProto, name string) bool {
	for _, n := range nodes {
		if n.GetName() == name {
			return true
		}
	}
	return false
}

// ReencodeForTest rewrites every non-empty layer under m in another encoding and returns how many it rewrote.
func ReencodeForTest(m proto.Message, enc pblczero.Weights_Layer_Encoding) int {
	n := 0
	var walk func(protoreflect.Message)
	walk = func(msg protoreflect.Message) {
		msg.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Message() == nil || fd.IsMap() {
				return true
			}
			visit := func(sub protoreflect.Message) {
				l, ok := sub.Interface().(*pblczero.Weights_Layer)
				if !ok {
					walk(sub)
					return
				}
				vals, err := decodeLayer(l)
				if err != nil || len(vals) == 0 {
					return
				}
				proto.Reset(l)
				proto.Merge(l, encodeLayer(vals, enc))
				n++
			}
			if fd.IsList() {
				for i := 0; i < v.List().Len(); i++ {
					visit(v.List().Get(i).Message())
				}
			} else {
				visit(v.Message())
			}
			return true
		})
	}
	walk(m.ProtoReflect())
	return n
}
