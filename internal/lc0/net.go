package lc0

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/lc0/pblczero"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
)

// Magic is the value of field 1 (fixed32) of every lc0 weight file.
const Magic = 0x1c0

// maxUnzipped caps the decompressed size, so a corrupt or hostile gzip stream cannot exhaust memory; the
// largest published lc0 nets are a few hundred MB.
const maxUnzipped = 2 << 30

// Errors callers may branch on.
var (
	// ErrNotWeights reports bytes that are not an lc0 weight file (bad magic or not protobuf at all).
	ErrNotWeights = errors.New("not an lc0 weights file")
	// ErrTruncated reports a file that ends early (gzip stream or protobuf message cut short).
	ErrTruncated = errors.New("truncated lc0 weights file")
	// ErrMalformed reports a file that decodes but whose layers are inconsistent (sizes, batch norm).
	ErrMalformed = errors.New("malformed lc0 weights")
	// ErrUnsupported reports an architecture or feature the converter does not build.
	ErrUnsupported = errors.New("unsupported lc0 network")
)

// Net is a parsed lc0 weight file.
type Net struct {
	// Proto is the file as decoded (Format returns its network format as lc0 upgrades it).
	Proto  *pblczero.Net
	format *pblczero.NetworkFormat
}

// LooksLikeWeights reports whether raw starts like an lc0 weight file: gzip data, or a protobuf whose first
// field is the fixed32 magic 0x1c0.
func LooksLikeWeights(raw []byte) bool {
	return bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) || bytes.HasPrefix(raw, []byte{0x0d, 0xc0, 0x01, 0x00, 0x00})
}

// Parse decodes an lc0 weight file, gzipped or not. It checks the magic and that the file carries weights
// or an ONNX model; whether the architecture can be converted is Convert's question.
func Parse(raw []byte) (*Net, error) {
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("lc0: parse: gzip header: %w", gzipErr(err))
		}
		var buf bytes.Buffer
		n, err := buf.ReadFrom(io.LimitReader(zr, maxUnzipped+1))
		if err != nil {
			return nil, fmt.Errorf("lc0: parse: gunzip: %w", gzipErr(err))
		}
		if n > maxUnzipped {
			return nil, fmt.Errorf("lc0: parse: gunzip: more than %d bytes decompressed", maxUnzipped)
		}
		raw = buf.Bytes()
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("lc0: parse: empty file: %w", ErrTruncated)
	}
	// lc0 writes the magic first (field 1, fixed32): checking it before decoding gives a clear error for
	// other files.
	switch {
	case raw[0] != 0x0d:
		return nil, fmt.Errorf("lc0: parse: no magic 0x%x at the start: %w", Magic, ErrNotWeights)
	case len(raw) < 5:
		return nil, fmt.Errorf("lc0: parse: %d bytes: %w", len(raw), ErrTruncated)
	case binary.LittleEndian.Uint32(raw[1:]) != Magic:
		return nil, fmt.Errorf("lc0: parse: bad magic 0x%x, want 0x%x: %w", binary.LittleEndian.Uint32(raw[1:]), Magic, ErrNotWeights)
	}
	pb := &pblczero.Net{}
	// AllowPartial: lc0 ignores proto2 `required` markers, so a head map entry without its key still loads.
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(raw, pb); err != nil {
		return nil, fmt.Errorf("lc0: parse: protobuf: %v: %w", err, ErrTruncated)
	}
	if pb.GetMagic() != Magic {
		return nil, fmt.Errorf("lc0: parse: bad magic 0x%x, want 0x%x: %w", pb.GetMagic(), Magic, ErrNotWeights)
	}
	if pb.Weights == nil && pb.OnnxModel == nil {
		return nil, fmt.Errorf("lc0: parse: the file has neither weights nor an onnx model: %w", ErrTruncated)
	}
	return &Net{Proto: pb, format: upgradeFormat(pb)}, nil
}

func gzipErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%v: %w", err, ErrTruncated)
	}
	return fmt.Errorf("%v: %w", err, ErrMalformed)
}

// upgradeFormat returns the network format as lc0 sees it after loading (lc0's FixOlderWeightsFile): old
// files lack format fields that later code relies on.
func upgradeFormat(pb *pblczero.Net) *pblczero.NetworkFormat {
	f := &pblczero.NetworkFormat{}
	if src := pb.GetFormat().GetNetworkFormat(); src != nil {
		f = proto.Clone(src).(*pblczero.NetworkFormat)
	}
	w := pb.GetWeights()
	switch {
	case pb.GetFormat().GetNetworkFormat() == nil:
		f.Input = pblczero.NetworkFormat_INPUT_CLASSICAL_112_PLANE.Enum()
		f.Output = pblczero.NetworkFormat_OUTPUT_CLASSICAL.Enum()
		f.Network = pblczero.NetworkFormat_NETWORK_CLASSICAL_WITH_HEADFORMAT.Enum()
		f.Value = pblczero.NetworkFormat_VALUE_CLASSICAL.Enum()
		f.Policy = pblczero.NetworkFormat_POLICY_CLASSICAL.Enum()
	case f.GetNetwork() == pblczero.NetworkFormat_NETWORK_CLASSICAL:
		f.Network = pblczero.NetworkFormat_NETWORK_CLASSICAL_WITH_HEADFORMAT.Enum()
		f.Value = pblczero.NetworkFormat_VALUE_CLASSICAL.Enum()
		f.Policy = pblczero.NetworkFormat_POLICY_CLASSICAL.Enum()
	case f.GetNetwork() == pblczero.NetworkFormat_NETWORK_SE:
		f.Network = pblczero.NetworkFormat_NETWORK_SE_WITH_HEADFORMAT.Enum()
		f.Value = pblczero.NetworkFormat_VALUE_CLASSICAL.Enum()
		f.Policy = pblczero.NetworkFormat_POLICY_CLASSICAL.Enum()
	case f.GetNetwork() == pblczero.NetworkFormat_NETWORK_SE_WITH_HEADFORMAT && len(w.GetEncoder()) > 0:
		// An attention body written with an old schema.
		f.Network = pblczero.NetworkFormat_NETWORK_ATTENTIONBODY_WITH_HEADFORMAT.Enum()
		if w.GetSmolgenW() != nil {
			f.FfnActivation = pblczero.NetworkFormat_ACTIVATION_RELU_2.Enum()
			f.SmolgenActivation = pblczero.NetworkFormat_ACTIVATION_SWISH.Enum()
		}
	case f.GetNetwork() == pblczero.NetworkFormat_NETWORK_AB_LEGACY_WITH_MULTIHEADFORMAT:
		f.Network = pblczero.NetworkFormat_NETWORK_ATTENTIONBODY_WITH_MULTIHEADFORMAT.Enum()
	}
	if f.GetNetwork() == pblczero.NetworkFormat_NETWORK_ATTENTIONBODY_WITH_HEADFORMAT {
		if w.GetPolicyHeads() != nil && w.GetValueHeads() != nil {
			f.Network = pblczero.NetworkFormat_NETWORK_ATTENTIONBODY_WITH_MULTIHEADFORMAT.Enum()
			f.InputEmbedding = pblczero.NetworkFormat_INPUT_EMBEDDING_PE_DENSE.Enum()
		}
		if f.InputEmbedding == nil {
			f.InputEmbedding = pblczero.NetworkFormat_INPUT_EMBEDDING_PE_MAP.Enum()
		}
	}
	return f
}

// Format returns the network format as lc0 uses it (older files upgraded as lc0 does when loading).
func (n *Net) Format() *pblczero.NetworkFormat { return n.format }

// InputFormat returns lc0's input format number: 1 classical 112 planes, 2 with castling plane, 3
// canonicalization, 4 canonicalization with hectoplies, 5 canonicalization v2, 132 and 133 the armageddon
// variants of 4 and 5.
func (n *Net) InputFormat() int { return int(n.format.GetInput()) }

// decodeLayer returns a layer's values as float32, as lc0's LayerAdapter does. A layer without params is
// empty (nil); a layer without an encoding is LINEAR16.
func decodeLayer(l *pblczero.Weights_Layer) ([]float32, error) {
	p := l.GetParams()
	if len(p) == 0 {
		return nil, nil
	}
	enc := pblczero.Weights_Layer_LINEAR16
	if l.Encoding != nil {
		enc = *l.Encoding
	}
	size := 2
	if enc == pblczero.Weights_Layer_FLOAT32 {
		size = 4
	}
	if len(p)%size != 0 {
		return nil, fmt.Errorf("%d bytes of %s is not a whole number of values: %w", len(p), enc, ErrMalformed)
	}
	out := make([]float32, len(p)/size)
	switch enc {
	case pblczero.Weights_Layer_LINEAR16:
		lo, hi := l.GetMinVal(), l.GetMaxVal()
		for i := range out {
			theta := float32(binary.LittleEndian.Uint16(p[2*i:])) / float32(0xffff)
			// lc0 computes lo*(1-theta) + hi*theta; its released builds fuse the first product and the sum.
			out[i] = fma32(lo, 1-theta, hi*theta)
		}
	case pblczero.Weights_Layer_FLOAT16:
		for i := range out {
			out[i] = onnxgraph.HalfToFloat32(binary.LittleEndian.Uint16(p[2*i:]))
		}
	case pblczero.Weights_Layer_BFLOAT16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(p[2*i:])) << 16)
		}
	case pblczero.Weights_Layer_FLOAT32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
		}
	default:
		return nil, fmt.Errorf("unknown layer encoding %d: %w", enc, ErrUnsupported)
	}
	if d := l.GetDims(); len(d) > 0 {
		want := 1
		for _, x := range d {
			want *= int(x)
		}
		if want != len(out) {
			return nil, fmt.Errorf("%d values for dims %v: %w", len(out), d, ErrMalformed)
		}
	}
	return out, nil
}

// layerSize returns how many values a layer holds without decoding it.
func layerSize(l *pblczero.Weights_Layer) int {
	if l.GetEncoding() == pblczero.Weights_Layer_FLOAT32 {
		return len(l.GetParams()) / 4
	}
	return len(l.GetParams()) / 2
}

// foldConv decodes a convolution block and folds its batch normalisation into weights and biases exactly as
// lc0 does (float32, epsilon 1e-5), so converted weights match lc0's export bit for bit.
func foldConv(cb *pblczero.Weights_ConvBlock) (w, b []float32, err error) {
	dec := func(l *pblczero.Weights_Layer, what string) []float32 {
		if err != nil {
			return nil
		}
		v, e := decodeLayer(l)
		if e != nil {
			err = fmt.Errorf("%s: %w", what, e)
		}
		return v
	}
	w = dec(cb.GetWeights(), "weights")
	b = dec(cb.GetBiases(), "biases")
	gammas := dec(cb.GetBnGammas(), "bn_gammas")
	betas := dec(cb.GetBnBetas(), "bn_betas")
	means := dec(cb.GetBnMeans(), "bn_means")
	stddivs := dec(cb.GetBnStddivs(), "bn_stddivs")
	if err != nil || len(w) == 0 {
		return w, b, err
	}
	if len(betas) == 0 {
		betas = make([]float32, len(means))
		gammas = make([]float32, len(means))
		for i := range gammas {
			gammas[i] = 1
		}
	}
	if len(b) == 0 {
		b = make([]float32, len(means))
	}
	if len(means) == 0 {
		return w, b, nil
	}
	outs := len(b)
	if len(means) != outs || len(stddivs) != outs || len(gammas) != outs || len(betas) != outs || outs == 0 || len(w)%outs != 0 {
		return nil, nil, fmt.Errorf("batch norm of %d channels (means %d, stddivs %d, gammas %d, betas %d) for %d weights: %w",
			outs, len(means), len(stddivs), len(gammas), len(betas), len(w), ErrMalformed)
	}
	for i := range stddivs {
		gammas[i] *= 1 / float32(math.Sqrt(float64(stddivs[i]+1e-5)))
		means[i] -= b[i]
	}
	ins := len(w) / outs
	for o := 0; o < outs; o++ {
		for c := 0; c < ins; c++ {
			w[o*ins+c] *= gammas[o]
		}
		b[o] = fma32(-gammas[o], means[o], betas[o])
	}
	return w, b, nil
}

// policyHead is one policy head with lc0's fallbacks resolved (shared embedding, legacy top-level fields).
type policyHead struct {
	ipPolW, ipPolB               *pblczero.Weights_Layer
	policy1, policy              *pblczero.Weights_ConvBlock
	ip2W, ip2B, ip3W, ip3B, ip4W *pblczero.Weights_Layer
	encoders                     []*pblczero.Weights_EncoderLayer
	headcount                    int
}

// valueHead is one value head (the conv block for residual bodies, the embedding for attention bodies).
type valueHead struct {
	value                            *pblczero.Weights_ConvBlock
	ipW, ipB, ip1W, ip1B, ip2W, ip2B *pblczero.Weights_Layer
}

func present(l *pblczero.Weights_Layer) bool { return len(l.GetParams()) > 0 }

// policyHeads lists the net's policy heads by lc0's names (vanilla, optimistic, soft, opponent, and any
// named in policy_head_map), in that order.
func (n *Net) policyHeads() ([]string, map[string]policyHead, error) {
	w := n.Proto.GetWeights()
	ph := w.GetPolicyHeads()
	sharedW, sharedB := w.GetIpPolW(), w.GetIpPolB()
	if ph.GetIpPolW() != nil {
		sharedW = ph.GetIpPolW()
	}
	if ph.GetIpPolB() != nil {
		sharedB = ph.GetIpPolB()
	}
	mk := func(h *pblczero.Weights_PolicyHead) policyHead {
		out := policyHead{
			ipPolW: h.GetIpPolW(), ipPolB: h.GetIpPolB(), policy1: h.GetPolicy1(), policy: h.GetPolicy(),
			ip2W: h.GetIp2PolW(), ip2B: h.GetIp2PolB(), ip3W: h.GetIp3PolW(), ip3B: h.GetIp3PolB(), ip4W: h.GetIp4PolW(),
			encoders: h.GetPolEncoder(), headcount: int(h.GetPolHeadcount()),
		}
		if !present(out.ipPolW) {
			out.ipPolW = sharedW
		}
		if !present(out.ipPolB) {
			out.ipPolB = sharedB
		}
		return out
	}
	names := []string{"vanilla"}
	heads := map[string]policyHead{"vanilla": mk(ph.GetVanilla())}
	if ph != nil {
		for _, e := range []struct {
			name string
			h    *pblczero.Weights_PolicyHead
		}{{"optimistic", ph.GetOptimisticSt()}, {"soft", ph.GetSoft()}, {"opponent", ph.GetOpponent()}} {
			if e.h != nil {
				names = append(names, e.name)
				heads[e.name] = mk(e.h)
			}
		}
		for _, e := range ph.GetPolicyHeadMap() {
			if _, dup := heads[e.GetKey()]; !dup && e.GetValue() != nil {
				names = append(names, e.GetKey())
				heads[e.GetKey()] = mk(e.GetValue())
			}
		}
		return names, heads, nil
	}
	if w.GetPolicy() == nil && w.GetPolicy1() == nil && w.GetIpPolW() == nil {
		return nil, nil, fmt.Errorf("no policy head weights (policy, policy1, ip_pol_w all absent): %w", ErrUnsupported)
	}
	heads["vanilla"] = policyHead{
		ipPolW: sharedW, ipPolB: sharedB, policy1: w.GetPolicy1(), policy: w.GetPolicy(),
		ip2W: w.GetIp2PolW(), ip2B: w.GetIp2PolB(), ip3W: w.GetIp3PolW(), ip3B: w.GetIp3PolB(), ip4W: w.GetIp4PolW(),
		encoders: w.GetPolEncoder(), headcount: int(w.GetPolHeadcount()),
	}
	return names, heads, nil
}

// valueHeads lists the net's value heads by lc0's names (winner, q, st, and any in value_head_map).
func (n *Net) valueHeads() ([]string, map[string]valueHead, error) {
	w := n.Proto.GetWeights()
	vh := w.GetValueHeads()
	mk := func(h *pblczero.Weights_ValueHead) valueHead {
		return valueHead{value: h.GetValue(), ipW: h.GetIpValW(), ipB: h.GetIpValB(), ip1W: h.GetIp1ValW(),
			ip1B: h.GetIp1ValB(), ip2W: h.GetIp2ValW(), ip2B: h.GetIp2ValB()}
	}
	names := []string{"winner"}
	heads := map[string]valueHead{"winner": mk(vh.GetWinner())}
	if vh != nil {
		for _, e := range []struct {
			name string
			h    *pblczero.Weights_ValueHead
		}{{"q", vh.GetQ()}, {"st", vh.GetSt()}} {
			if e.h != nil {
				names = append(names, e.name)
				heads[e.name] = mk(e.h)
			}
		}
		for _, e := range vh.GetValueHeadMap() {
			if _, dup := heads[e.GetKey()]; !dup && e.GetValue() != nil {
				names = append(names, e.GetKey())
				heads[e.GetKey()] = mk(e.GetValue())
			}
		}
		return names, heads, nil
	}
	if w.GetValue() == nil && w.GetIpValW() == nil {
		return nil, nil, fmt.Errorf("no value head weights (value, ip_val_w both absent): %w", ErrUnsupported)
	}
	heads["winner"] = valueHead{value: w.GetValue(), ipW: w.GetIpValW(), ipB: w.GetIpValB(), ip1W: w.GetIp1ValW(),
		ip1B: w.GetIp1ValB(), ip2W: w.GetIp2ValW(), ip2B: w.GetIp2ValB()}
	return names, heads, nil
}

// HeadNames returns the names of the policy and value heads Convert can select (Options.PolicyHead and
// Options.ValueHead); single-head nets have only "vanilla" and "winner".
func (n *Net) HeadNames() (policy, value []string) {
	if n.Proto.GetWeights() == nil {
		return nil, nil
	}
	policy, _, _ = n.policyHeads()
	value, _, _ = n.valueHeads()
	return policy, value
}

// fma32 is a float32 fused multiply-add, a*b+c rounded once, as the compiler emits for lc0's weight
// decoding; matching it keeps converted weights bit-identical to lc0's export. The float64 product is exact;
// the float64 sum is rounded, so a sum that lands exactly halfway between two float32s is nudged by the
// sign of its rounding error before the final rounding.
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b)
	s := p + float64(c)
	bv := s - p
	e := (p - (s - bv)) + (float64(c) - bv)
	if e != 0 && math.Float64bits(s)&(1<<29-1) == 1<<28 {
		s = math.Nextafter(s, math.Copysign(math.Inf(1), e))
	}
	return float32(s)
}
