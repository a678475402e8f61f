package lc0_test

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/lc0"
	"github.com/lczerolens/lczerolens/internal/lc0/pblczero"
	"github.com/lczerolens/lczerolens/internal/model"
)

// The architectures no file in ../shared has (plain residual blocks, classical fully connected policy
// heads) are checked on generated nets by equivalence: each is built twice, once in the architecture under
// test and once in one that lc0's references cover, with weights chosen so both compute the same function.

func forward(t *testing.T, pb *pblczero.Net, name string, in []float32, batch int) (*model.HeadOutputs, *model.Network) {
	t.Helper()
	raw, err := proto.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	n, err := model.LoadBytes(name, raw)
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.Forward(testRuntime(t), in, batch)
	if err != nil {
		t.Fatal(err)
	}
	return out, n
}

func randomPlanes(seed uint64, batch int) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	in := make([]float32, batch*112*64)
	for i := range in {
		if r.IntN(8) == 0 {
			in[i] = 1
		}
	}
	return in
}

func f32(v []float32) *pblczero.Weights_Layer {
	return lc0.EncodeLayerForTest(v, pblczero.Weights_Layer_FLOAT32)
}

func decode(t *testing.T, l *pblczero.Weights_Layer) []float32 {
	t.Helper()
	v, err := lc0.DecodeLayerForTest(l)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// identityConv is a k x k convolution passing f channels through unchanged (no bias).
func identityConv(f, k int) *pblczero.Weights_ConvBlock {
	w := make([]float32, f*f*k*k)
	for c := range f {
		w[(c*f+c)*k*k+k*k/2] = 1
	}
	return &pblczero.Weights_ConvBlock{Weights: f32(w), Biases: f32(make([]float32, f))}
}

func hasModule(n *model.Network, name string) bool {
	_, ok := n.Module(name)
	return ok
}

// TestPlainResidual: an SE unit with zero second-layer weights, gate biases of 100 (sigmoid 1 in float32)
// and zero offsets passes its input through, so an SE net built so equals the same net without SE units.
func TestPlainResidual(t *testing.T) {
	const f = 8
	se := lc0.GenNetForTest(lc0.GenSpec{Seed: 11, Blocks: 2, Filters: f, SE: true, BatchNorm: true, Policy: "convolution",
		WDL: true, MLH: true, Encoding: pblczero.Weights_Layer_FLOAT32, Mish: true})
	b2 := make([]float32, 2*f)
	for i := range f {
		b2[i] = 100
	}
	for _, r := range se.GetWeights().GetResidual() {
		r.Se.W2 = f32(make([]float32, 2*f*(f/2)))
		r.Se.B2 = f32(b2)
	}
	plain := proto.Clone(se).(*pblczero.Net)
	plain.Format.NetworkFormat.Network = pblczero.NetworkFormat_NETWORK_CLASSICAL_WITH_HEADFORMAT.Enum()
	for _, r := range plain.GetWeights().GetResidual() {
		r.Se = nil
	}
	in := randomPlanes(1, 4)
	want, _ := forward(t, se, "se", in, 4)
	got, n := forward(t, plain, "plain", in, 4)
	if hasModule(n, "block0/conv2/se/mul") || !hasModule(n, "block1/conv2/mixin") || !hasModule(n, "block1/conv2/mish") {
		t.Error("plain net: want residual adds and mish, no SE modules")
	}
	for _, o := range []struct {
		name      string
		got, want []float32
	}{{"policy", got.Policy, want.Policy}, {"wdl", got.WDL, want.WDL}, {"mlh", got.MLH, want.MLH}} {
		if d := maxDiff(o.got, o.want); d > 1e-5 {
			t.Errorf("%s: plain net differs from the SE net by %g", o.name, d)
		}
	}
}

// TestClassicalPolicy: with an identity first policy convolution the convolution head is linear in the body
// output, so a classical head (identity 1x1 convolution, whose ReLU keeps the non-negative body output, then
// a dense layer holding the second convolution and lc0's policy map) computes the same logits.
func TestClassicalPolicy(t *testing.T) {
	const f = 4
	conv := lc0.GenNetForTest(lc0.GenSpec{Seed: 12, Blocks: 1, Filters: f, SE: true, Policy: "convolution",
		WDL: true, Encoding: pblczero.Weights_Layer_FLOAT32})
	w := conv.GetWeights()
	w.Policy1 = identityConv(f, 3)
	k2, b2 := decode(t, w.GetPolicy().GetWeights()), decode(t, w.GetPolicy().GetBiases())
	dense := make([]float32, 1858*f*64) // [move][channel*64 + square], lc0's [out][in] layout
	bias := make([]float32, 1858)
	for i, pos := range lc0.ConvPolicyMapForTest() {
		plane, sq := int(pos)/64, int(pos)%64
		y, x := sq/8, sq%8
		bias[i] = b2[plane]
		for c := range f {
			for ky := range 3 {
				for kx := range 3 {
					yy, xx := y+ky-1, x+kx-1
					if yy >= 0 && yy < 8 && xx >= 0 && xx < 8 {
						dense[i*f*64+c*64+yy*8+xx] += k2[((plane*f+c)*3+ky)*3+kx]
					}
				}
			}
		}
	}
	classical := proto.Clone(conv).(*pblczero.Net)
	cw := classical.GetWeights()
	classical.Format.NetworkFormat.Policy = pblczero.NetworkFormat_POLICY_CLASSICAL.Enum()
	cw.Policy1, cw.Policy = nil, identityConv(f, 1)
	cw.IpPolW, cw.IpPolB = f32(dense), f32(bias)

	in := randomPlanes(2, 3)
	want, _ := forward(t, conv, "conv", in, 3)
	got, n := forward(t, classical, "classical", in, 3)
	if !hasModule(n, "policy/dense/matmul") || hasModule(n, "policy/conv2") {
		t.Error("classical net: want policy/dense/matmul and no policy/conv2")
	}
	if d := maxDiff(got.Policy, want.Policy); d > 1e-4 {
		t.Errorf("classical policy differs from the convolution policy by %g", d)
	}
	if d := maxDiff(got.WDL, want.WDL); d > 1e-6 {
		t.Errorf("wdl differs by %g", d)
	}
	d, err := lc0.Parse(mustMarshal(t, classical))
	if err != nil {
		t.Fatal(err)
	}
	if desc := d.Describe(); desc.PolicyHead != "classical" || desc.Policy != "POLICY_CLASSICAL" {
		t.Errorf("description %+v: want a classical policy head", desc)
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
