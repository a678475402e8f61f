package lc0

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/lc0/pblczero"
)

func marshal(t testing.TB, n *pblczero.Net) []byte {
	t.Helper()
	b, err := proto.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPolicyMoves checks the generated move order against the sha256 lc0's reference data publishes for
// the 1858 names joined by commas.
func TestPolicyMoves(t *testing.T) {
	moves := policyMoves()
	if len(moves) != 1858 {
		t.Fatalf("%d policy moves, want 1858", len(moves))
	}
	names := make([]string, len(moves))
	for i, m := range moves {
		sq := func(s int) string { return string(rune('a'+s%8)) + string(rune('1'+s/8)) }
		names[i] = sq(m.from) + sq(m.to)
		if m.promo != 0 {
			names[i] += string(m.promo)
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(names, ",")))
	if got, want := hex.EncodeToString(sum[:]), "89f7e8b772633e70c06fae4caac5a2858eeeee5c357b19cd355553f79b51b231"; got != want {
		t.Errorf("sha256 of the policy names %s, want %s", got, want)
	}
}

// TestPolicyMaps checks the maps are one-to-one into their outputs and place known moves where lc0 does.
func TestPolicyMaps(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    []int32
		size int32
		want map[int]int32 // policy index -> output position
	}{
		// a1b1 = queen move east (plane 14), a7a8q = north queen promotion (plane 69) from a7 (48).
		{"convolution", convPolicyMap(), 80 * 64, map[int]int32{0: 14 * 64, 1792: 69*64 + 48}},
		// a1b1 = from 0 to 1; a7a8q is the first promotion logit.
		{"attention", attnPolicyMap(), 67 * 64, map[int]int32{0: 1, 1792: 4096}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[int32]bool{}
			for i, p := range tc.m {
				if p < 0 || p >= tc.size || seen[p] {
					t.Fatalf("index %d -> %d: out of range or repeated", i, p)
				}
				seen[p] = true
			}
			for i, want := range tc.want {
				if tc.m[i] != want {
					t.Errorf("index %d -> %d, want %d", i, tc.m[i], want)
				}
			}
		})
	}
}

func TestDecodeLayer(t *testing.T) {
	u16 := func(vs ...uint16) []byte {
		b := make([]byte, 2*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint16(b[2*i:], v)
		}
		return b
	}
	f32 := func(vs ...float32) []byte {
		b := make([]byte, 4*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b
	}
	enc := func(e pblczero.Weights_Layer_Encoding) *pblczero.Weights_Layer_Encoding { return e.Enum() }
	for _, tc := range []struct {
		name  string
		layer *pblczero.Weights_Layer
		want  []float32
		err   error
	}{
		{"absent", nil, nil, nil},
		{"linear16 default", &pblczero.Weights_Layer{MinVal: proto.Float32(-2), MaxVal: proto.Float32(6), Params: u16(0, 65535, 32768)},
			[]float32{-2, 6, 2.0000610}, nil},
		{"float16", &pblczero.Weights_Layer{Encoding: enc(pblczero.Weights_Layer_FLOAT16), Params: u16(0x3c00, 0xc000, 0x3555, 0x0001)},
			[]float32{1, -2, 0.33325195, 5.9604645e-08}, nil},
		{"bfloat16", &pblczero.Weights_Layer{Encoding: enc(pblczero.Weights_Layer_BFLOAT16), Params: u16(0x3f80, 0xc040, 0x3eab)},
			[]float32{1, -3, 0.333984375}, nil},
		{"float32", &pblczero.Weights_Layer{Encoding: enc(pblczero.Weights_Layer_FLOAT32), Params: f32(1.5, -0.1, 1e-30)},
			[]float32{1.5, -0.1, 1e-30}, nil},
		{"dims", &pblczero.Weights_Layer{Encoding: enc(pblczero.Weights_Layer_FLOAT32), Params: f32(1, 2), Dims: []uint32{2, 1}},
			[]float32{1, 2}, nil},
		{"bad dims", &pblczero.Weights_Layer{Encoding: enc(pblczero.Weights_Layer_FLOAT32), Params: f32(1, 2), Dims: []uint32{3}},
			nil, ErrMalformed},
		{"odd bytes", &pblczero.Weights_Layer{Encoding: enc(pblczero.Weights_Layer_FLOAT32), Params: []byte{1, 2, 3}}, nil, ErrMalformed},
		{"unknown encoding", &pblczero.Weights_Layer{Encoding: enc(pblczero.Weights_Layer_UNKNOWN_ENCODING), Params: u16(1)}, nil, ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeLayer(tc.layer)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if math.Abs(float64(got[i]-tc.want[i])) > 1e-6*math.Max(1, math.Abs(float64(tc.want[i]))) {
					t.Errorf("value %d = %g, want %g", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestEncodeRoundTrip checks the test encoders against the decoder: float32 exact, 16-bit floats within
// half a unit in the last place, LINEAR16 within half a step.
func TestEncodeRoundTrip(t *testing.T) {
	g := &gen{r: newRand(7)}
	v := g.vals(1000, 1)
	v = append(v, 0, -0, 1e-6, -3.5, 1000)
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	for _, tc := range []struct {
		enc pblczero.Weights_Layer_Encoding
		rel float64 // relative bound
	}{
		{pblczero.Weights_Layer_FLOAT32, 0},
		{pblczero.Weights_Layer_FLOAT16, 1.0 / 2048},
		{pblczero.Weights_Layer_BFLOAT16, 1.0 / 256},
		{pblczero.Weights_Layer_LINEAR16, -1},
	} {
		got, err := decodeLayer(encodeLayer(v, tc.enc))
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			bound := tc.rel * math.Abs(float64(v[i]))
			if tc.enc == pblczero.Weights_Layer_FLOAT16 {
				bound = max(bound, math.Ldexp(1, -25)) // subnormal spacing
			}
			if tc.rel < 0 {
				bound = float64(hi-lo) / 65535 * 0.5001
			}
			if d := math.Abs(float64(got[i] - v[i])); d > bound {
				t.Errorf("%s: %g decoded as %g (off by %g > %g)", tc.enc, v[i], got[i], d, bound)
			}
		}
	}
}

// TestFoldConv compares lc0's batch-norm folding with the closed form in float64.
func TestFoldConv(t *testing.T) {
	w := []float32{1, 2, 3, 4, 5, 6} // 2 outputs x 3 inputs
	b := []float32{0.5, -1}
	means, vars, gammas, betas := []float32{0.25, 2}, []float32{4, 0.09}, []float32{1.5, -0.5}, []float32{0.1, 0.2}
	l := func(v []float32) *pblczero.Weights_Layer { return encodeLayer(v, pblczero.Weights_Layer_FLOAT32) }
	cb := &pblczero.Weights_ConvBlock{Weights: l(w), Biases: l(b), BnMeans: l(means), BnStddivs: l(vars), BnGammas: l(gammas), BnBetas: l(betas)}
	gw, gb, err := foldConv(cb)
	if err != nil {
		t.Fatal(err)
	}
	for o := range 2 {
		s := float64(gammas[o]) / math.Sqrt(float64(vars[o])+1e-5)
		for c := range 3 {
			if want := float64(w[3*o+c]) * s; math.Abs(float64(gw[3*o+c])-want) > 1e-6 {
				t.Errorf("weight %d,%d = %g, want %g", o, c, gw[3*o+c], want)
			}
		}
		if want := float64(betas[o]) + s*float64(b[o]-means[o]); math.Abs(float64(gb[o])-want) > 1e-6 {
			t.Errorf("bias %d = %g, want %g", o, gb[o], want)
		}
	}
	cb.BnBetas = l([]float32{1})
	if _, _, err := foldConv(cb); !errors.Is(err, ErrMalformed) {
		t.Errorf("mismatched batch norm: error %v, want ErrMalformed", err)
	}
}

// TestFMA32 checks the float32 fused multiply-add against exact rational arithmetic on hard cases.
func TestFMA32(t *testing.T) {
	for _, tc := range []struct{ a, b, c float32 }{
		{1, 1, 1}, {0.1, 0.2, 0.3}, {1 + 1.0/(1<<23), 1 - 1.0/(1<<23), -1},
		{3, 1.0 / 3, -1}, {1 << 12, 1 << 12, 1}, {1.5, 1 + 1.0/(1<<23), float32(math.Ldexp(1, -30))},
	} {
		got := fma32(tc.a, tc.b, tc.c)
		want := exactFMA32(tc.a, tc.b, tc.c)
		if got != want {
			t.Errorf("fma32(%g, %g, %g) = %g, want %g", tc.a, tc.b, tc.c, got, want)
		}
	}
	g := newRand(3)
	for range 100000 {
		a, b, c := float32(g.NormFloat64()), float32(g.NormFloat64()), float32(g.NormFloat64()*1e-3)
		if got, want := fma32(a, b, c), exactFMA32(a, b, c); got != want {
			t.Fatalf("fma32(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := marshal(t, genNet(GenSpec{Seed: 1, Blocks: 1, Filters: 2, SE: true, Policy: "attention", WDL: true, Encoding: pblczero.Weights_Layer_FLOAT16}))
	badMagic := append([]byte{0x0d, 0xc1, 0x01, 0, 0}, good[5:]...)
	noWeights := marshal(t, &pblczero.Net{Magic: proto.Uint32(Magic), License: proto.String("x")})
	gz := gzipped(t, good)
	for _, tc := range []struct {
		name string
		raw  []byte
		err  error
		msg  string
	}{
		{"empty", nil, ErrTruncated, "empty file"},
		{"text", []byte("hello, not a network"), ErrNotWeights, "no magic"},
		{"onnx", []byte{0x08, 0x08, 0x12, 0x03, 'L', 'c', '0'}, ErrNotWeights, "no magic"},
		{"bad magic", badMagic, ErrNotWeights, "bad magic 0x1c1"},
		{"magic only", good[:3], ErrTruncated, "3 bytes"},
		{"cut protobuf", good[:len(good)/2], ErrTruncated, "protobuf"},
		{"cut gzip", gz[:len(gz)/2], ErrTruncated, "gunzip"},
		{"gzip header", gz[:5], ErrTruncated, "gzip header"},
		{"no weights", noWeights, ErrTruncated, "neither weights nor an onnx model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.raw)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "lc0: parse: ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line starting \"lc0: parse: \" and saying %q", err, tc.msg)
			}
		})
	}
	for _, raw := range [][]byte{good, gz} {
		n, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Convert(n, Options{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUpgradeFormat checks lc0's upgrades of files written before the format fields existed.
func TestUpgradeFormat(t *testing.T) {
	base := genNet(GenSpec{Seed: 2, Blocks: 1, Filters: 2, SE: true, Policy: "convolution", Encoding: pblczero.Weights_Layer_FLOAT32})
	for _, tc := range []struct {
		name   string
		format *pblczero.Format
		net    pblczero.NetworkFormat_NetworkStructure
		policy pblczero.NetworkFormat_PolicyFormat
		input  int
	}{
		{"no format", nil, pblczero.NetworkFormat_NETWORK_CLASSICAL_WITH_HEADFORMAT, pblczero.NetworkFormat_POLICY_CLASSICAL, 1},
		{"se", &pblczero.Format{NetworkFormat: &pblczero.NetworkFormat{Network: pblczero.NetworkFormat_NETWORK_SE.Enum(),
			Input: pblczero.NetworkFormat_INPUT_112_WITH_CASTLING_PLANE.Enum()}},
			pblczero.NetworkFormat_NETWORK_SE_WITH_HEADFORMAT, pblczero.NetworkFormat_POLICY_CLASSICAL, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pb := proto.Clone(base).(*pblczero.Net)
			pb.Format = tc.format
			n, err := Parse(marshal(t, pb))
			if err != nil {
				t.Fatal(err)
			}
			if got := n.Format().GetNetwork(); got != tc.net {
				t.Errorf("network %s, want %s", got, tc.net)
			}
			if got := n.Format().GetPolicy(); got != tc.policy {
				t.Errorf("policy %s, want %s", got, tc.policy)
			}
			if got := n.InputFormat(); got != tc.input {
				t.Errorf("input format %d, want %d", got, tc.input)
			}
			// lc0 builds a convolution policy from policy1 even when the format says classical.
			m, err := Convert(n, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !hasNode(m.GetGraph().GetNode(), "/policy/conv2") {
				t.Error("no /policy/conv2 node")
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	base := genNet(GenSpec{Seed: 3, Blocks: 1, Filters: 2, SE: true, Policy: "convolution", WDL: true, Encoding: pblczero.Weights_Layer_FLOAT32})
	for _, tc := range []struct {
		name string
		edit func(*pblczero.Net)
		opts Options
		err  error
		msg  string
	}{
		{"value param", func(n *pblczero.Net) {
			n.Format.NetworkFormat.Value = pblczero.NetworkFormat_VALUE_PARAM.Enum()
		}, Options{}, ErrUnsupported, "value VALUE_PARAM is not supported (network=NETWORK_SE_WITH_HEADFORMAT policy=POLICY_CONVOLUTION value=VALUE_PARAM"},
		{"onnx without model", func(n *pblczero.Net) {
			n.Format.NetworkFormat.Network = pblczero.NetworkFormat_NETWORK_ONNX.Enum()
		}, Options{}, ErrUnsupported, "network NETWORK_ONNX is not supported"},
		{"unknown policy head", func(*pblczero.Net) {}, Options{PolicyHead: "soft"}, ErrUnsupported, `policy head "soft" does not exist in this net (heads: [vanilla])`},
		{"unknown value head", func(*pblczero.Net) {}, Options{ValueHead: "q"}, ErrUnsupported, `value head "q" does not exist`},
		{"missing layer", func(n *pblczero.Net) { n.Weights.Residual[0].Conv2.Weights = nil }, Options{}, ErrMalformed, "/block0/conv2/w/kernel: 0 values, want 36"},
		{"short layer", func(n *pblczero.Net) { n.Weights.Ip1ValB.Params = n.Weights.Ip1ValB.Params[:8] }, Options{}, ErrMalformed, "/value/dense1/matmul/w"},
		{"no body", func(n *pblczero.Net) { n.Weights.Residual = nil }, Options{}, ErrUnsupported, "no residual blocks"},
		{"no policy", func(n *pblczero.Net) { n.Weights.Policy, n.Weights.Policy1 = nil, nil }, Options{}, ErrUnsupported, "no policy head weights"},
		{"rpe", func(n *pblczero.Net) {
			f32 := func(v ...float32) *pblczero.Weights_Layer { return encodeLayer(v, pblczero.Weights_Layer_FLOAT32) }
			n.Format.NetworkFormat.Policy = pblczero.NetworkFormat_POLICY_ATTENTION.Enum()
			n.Weights.PolEncoder = []*pblczero.Weights_EncoderLayer{{Mha: &pblczero.Weights_MHA{RpeQ: &pblczero.Weights_Layer{}}}}
			n.Weights.IpPolW, n.Weights.IpPolB, n.Weights.Ip2PolB = f32(1, 2), f32(1), f32(1)
		}, Options{}, ErrUnsupported, "relative position encodings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pb := proto.Clone(base).(*pblczero.Net)
			tc.edit(pb)
			n, err := Parse(marshal(t, pb))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Convert(n, tc.opts)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "lc0: convert: ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line starting \"lc0: convert: \" and saying %q", err, tc.msg)
			}
		})
	}
}

// TestConvertEmbeddedONNX checks a file carrying an ONNX model returns that model.
func TestConvertEmbeddedONNX(t *testing.T) {
	base := genNet(GenSpec{Seed: 4, Blocks: 1, Filters: 2, Policy: "convolution", Encoding: pblczero.Weights_Layer_FLOAT32})
	n, err := Parse(marshal(t, base))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Convert(n, Options{})
	if err != nil {
		t.Fatal(err)
	}
	onnxRaw, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := &pblczero.Net{
		Magic:     proto.Uint32(Magic),
		Format:    &pblczero.Format{NetworkFormat: &pblczero.NetworkFormat{Network: pblczero.NetworkFormat_NETWORK_ONNX.Enum()}},
		OnnxModel: &pblczero.OnnxModel{Model: onnxRaw},
	}
	n2, err := Parse(marshal(t, wrapped))
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Convert(n2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m, m2) {
		t.Error("embedded model differs from the one stored")
	}
	if d := n2.Describe(); d.Body != "onnx" {
		t.Errorf("body %q, want onnx", d.Body)
	}
}

func TestDescribe(t *testing.T) {
	n, err := Parse(marshal(t, genNet(GenSpec{Seed: 5, Blocks: 3, Filters: 4, SE: true, Policy: "classical", PolicyChannels: 2,
		WDL: true, MLH: true, Encoding: pblczero.Weights_Layer_LINEAR16})))
	if err != nil {
		t.Fatal(err)
	}
	d := n.Describe()
	want := Description{Body: "residual", Blocks: 3, SEBlocks: 3, Filters: 4, PolicyHead: "classical", ValueHead: "wdl",
		MovesLeftHead: true, InputFormat: 1, MinVersion: "v0.33.0", WeightsEncoding: "LINEAR16"}
	if d.Body != want.Body || d.Blocks != want.Blocks || d.SEBlocks != want.SEBlocks || d.Filters != want.Filters ||
		d.PolicyHead != want.PolicyHead || d.ValueHead != want.ValueHead || d.MovesLeftHead != want.MovesLeftHead ||
		d.InputFormat != want.InputFormat || d.MinVersion != want.MinVersion || d.WeightsEncoding != want.WeightsEncoding {
		t.Errorf("description %+v, want %+v", d, want)
	}
	if d.Training == nil || d.Training.Steps != 1234 || !d.Training.HasSteps || d.Training.HasAccuracy {
		t.Errorf("training %+v, want 1234 steps and no accuracy", d.Training)
	}
	// Params counts every layer value: input conv 112*4*9+4, 3 blocks of 2 convs (4*4*9+4) and SE units, heads.
	var wantParams int64 = 112*4*9 + 4 + 3*(2*(4*4*9+4)+(2*4+2+4*4+8)) + (4*2 + 2 + 1858*128 + 1858) + (4*2 + 2 + 8*128 + 8 + 24 + 3) + (4 + 1 + 8*64 + 8 + 8 + 1)
	if d.Params != wantParams {
		t.Errorf("params %d, want %d", d.Params, wantParams)
	}
	var labels []string
	for _, l := range d.Lines() {
		labels = append(labels, l[0])
	}
	for _, want := range []string{"Minimal Lc0 version", "Input", "Network", "Training steps", "Blocks", "SE blocks", "Filters", "Policy head", "Value head", "Moves-left head"} {
		if !strings.Contains(strings.Join(labels, "|"), want) {
			t.Errorf("lines %v lack %q", labels, want)
		}
	}
}
