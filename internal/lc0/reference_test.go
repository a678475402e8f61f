package lc0_test

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/lc0"
	"github.com/lczerolens/lczerolens/internal/lc0/pblczero"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// These tests run converted graphs with ONNX Runtime (through internal/model, hence the external package)
// against lc0's own evaluations in ../shared/reference/lc0.

var testRT struct {
	once sync.Once
	rt   *model.SessionCache
	err  error
}

// testRuntime is one CPU runtime shared by the tests; they skip when the ONNX Runtime library is absent.
func testRuntime(t testing.TB) *model.SessionCache {
	t.Helper()
	lib := testutil.ORTLib(t)
	testRT.once.Do(func() {
		if _, err := model.InitRuntime([]string{lib}); err != nil {
			testRT.err = err
			return
		}
		testRT.rt, testRT.err = model.NewSessionCache(model.SessionOptions{Device: model.DeviceCPU})
	})
	if testRT.err != nil {
		t.Fatal(testRT.err)
	}
	return testRT.rt
}

// planes concatenates the records' dense input planes into one batch.
func planes(t testing.TB, recs []testutil.RefRecord) []float32 {
	t.Helper()
	out := make([]float32, 0, len(recs)*testutil.NumPlanes*64)
	for _, rec := range recs {
		out = append(out, testutil.DecodePlanes(t, rec)...)
	}
	return out
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var m float64
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// checkRefs compares outputs with lc0's: every policy logit within tolLogit, W/D/L (or the tanh value)
// within tolValue, moves-left within tolLogit when the reference has it.
func checkRefs(t *testing.T, h *model.HeadOutputs, recs []testutil.RefRecord, tolLogit, tolValue float64) {
	t.Helper()
	for i, rec := range recs {
		var worst float64
		for j, want := range rec.Policy {
			worst = max(worst, math.Abs(float64(h.Policy[i*1858+j])-want))
		}
		if len(rec.Policy) != 1858 || worst > tolLogit {
			t.Errorf("%s: policy logits off by %g (%d reference logits)", rec.Name, worst, len(rec.Policy))
		}
		switch {
		case h.WDL != nil:
			got := h.WDL[3*i : 3*i+3]
			for k, want := range []float64{rec.W, rec.D, rec.L} {
				if math.Abs(float64(got[k])-want) > tolValue {
					t.Errorf("%s: wdl %v, lc0 [%g %g %g]", rec.Name, got, rec.W, rec.D, rec.L)
					break
				}
			}
		case h.Value != nil:
			if math.Abs(float64(h.Value[i])-rec.Q) > tolValue {
				t.Errorf("%s: value %g, lc0 q %g", rec.Name, h.Value[i], rec.Q)
			}
		default:
			t.Fatal("no value head")
		}
		if rec.M != nil {
			if h.MLH == nil || math.Abs(float64(h.MLH[i])-*rec.M) > tolLogit {
				t.Errorf("%s: moves left %v, lc0 %g", rec.Name, h.MLH, *rec.M)
			}
		}
	}
}

// TestReferenceNets loads every real weight file through model.Load (so through the converter) and checks
// the outputs on lc0's reference planes: against lc0's evaluations (1e-4 on logits, 1e-5 on W/D/L or value)
// and against lc0's own ONNX export of the same net run the same way.
func TestReferenceNets(t *testing.T) {
	rt := testRuntime(t)
	weights, exports := lc0.SharedNets(t)
	sh := lc0.SharedDir(t)
	for i, path := range weights {
		if strings.Contains(path, "synthetic") {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".gz"), ".pb")
		t.Run(base, func(t *testing.T) {
			recs := testutil.ReadRefdump(t, filepath.Join(sh, "reference", "lc0", base+".refdump.jsonl"))
			if len(recs) != 35 {
				t.Fatalf("%d reference records, want 35", len(recs))
			}
			conv, err := model.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if conv.InputFormat != recs[0].InputFormat {
				t.Errorf("input format %d, lc0 used %d", conv.InputFormat, recs[0].InputFormat)
			}
			in := planes(t, recs)
			got, err := conv.Forward(rt, in, len(recs))
			if err != nil {
				t.Fatal(err)
			}
			checkRefs(t, got, recs, 1e-4, 1e-5)
			exp, err := model.Load(exports[i])
			if err != nil {
				t.Fatal(err)
			}
			want, err := exp.Forward(rt, in, len(recs))
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range []struct {
				name      string
				got, want []float32
			}{{"policy", got.Policy, want.Policy}, {"wdl", got.WDL, want.WDL}, {"value", got.Value, want.Value}} {
				if d := maxDiff(o.got, o.want); d > 1e-6 {
					t.Errorf("%s differs from lc0's onnx export by %g", o.name, d)
				}
			}
		})
	}
}

// TestSyntheticNets checks the converted random-weight nets (attention policies and bodies, smolgen, input
// gating, moves-left heads, modern input formats) against lc0 on its reference planes, taken as given.
func TestSyntheticNets(t *testing.T) {
	rt := testRuntime(t)
	weights, _ := lc0.SharedNets(t)
	sh := lc0.SharedDir(t)
	for _, path := range weights {
		if !strings.Contains(path, "synthetic") {
			continue
		}
		base := strings.TrimSuffix(filepath.Base(path), ".pb.gz")
		t.Run(base, func(t *testing.T) {
			conv, err := model.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			refs := []string{base + ".refdump.jsonl.gz"}
			if base == "ab_mh_dense_v2" {
				refs = append(refs, base+".refdump.histfill-no.jsonl.gz")
			}
			for _, ref := range refs {
				var recs []testutil.RefRecord
				for _, rec := range testutil.ReadRefdump(t, filepath.Join(sh, "reference", "lc0", "synthetic", ref)) {
					if rec.Error == "" {
						recs = append(recs, rec)
					}
				}
				if len(recs) < 29 || recs[0].M == nil {
					t.Fatalf("%s: %d usable records", ref, len(recs))
				}
				if conv.InputFormat != recs[0].InputFormat {
					t.Errorf("input format %d, lc0 used %d", conv.InputFormat, recs[0].InputFormat)
				}
				got, err := conv.Forward(rt, planes(t, recs), len(recs))
				if err != nil {
					t.Fatal(err)
				}
				checkRefs(t, got, recs, 1e-4, 1e-4)
			}
		})
	}
}

// TestModuleNames checks that every module of lc0's export exists in the converted graph with the same op
// and shape, and that patterns select the same modules.
func TestModuleNames(t *testing.T) {
	weights, exports := lc0.SharedNets(t)
	for i, path := range weights {
		t.Run(filepath.Base(path), func(t *testing.T) {
			conv, err := model.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			exp, err := model.Load(exports[i])
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range exp.Modules {
				got, ok := conv.Module(m.Name)
				if !ok {
					t.Errorf("module %s missing", m.Name)
					continue
				}
				if got.Op != m.Op || !slices.Equal(got.Shape, m.Shape) {
					t.Errorf("module %s: %s %v, lc0 has %s %v", m.Name, got.Op, got.Shape, m.Op, m.Shape)
				}
			}
			for _, pat := range []string{`^block\d+/conv2/relu$`, `/se/`, `^encoder\d+/ln2$`, `smolgen`, `^policy/`, `^value/`, `^mlh/`, `^output/`} {
				a, errA := conv.Select(pat)
				b, errB := exp.Select(pat)
				if (errA == nil) != (errB == nil) || len(a) != len(b) {
					t.Errorf("pattern %s selects %d modules, %d in lc0's export", pat, len(a), len(b))
					continue
				}
				for k := range a {
					if a[k].Name != b[k].Name {
						t.Errorf("pattern %s: module %d is %s, lc0's is %s", pat, k, a[k].Name, b[k].Name)
					}
				}
			}
		})
	}
}

// TestMultiHead selects the other heads of a multi-head net: they convert, run, and differ from the defaults.
func TestMultiHead(t *testing.T) {
	rt := testRuntime(t)
	sh := lc0.SharedDir(t)
	raw, err := os.ReadFile(filepath.Join(sh, "models", "synthetic", "ab_mh_dense_v2.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := lc0.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	pol, val := n.HeadNames()
	if strings.Join(pol, ",") != "vanilla,optimistic" || strings.Join(val, ",") != "winner,q" {
		t.Fatalf("heads %v %v, want [vanilla optimistic] [winner q]", pol, val)
	}
	recs := testutil.ReadRefdump(t, filepath.Join(sh, "reference", "lc0", "synthetic", "ab_mh_dense_v2.refdump.histfill-no.jsonl.gz"))
	in := planes(t, recs)
	run := func(opts lc0.Options) *model.HeadOutputs {
		m, err := lc0.Convert(n, opts)
		if err != nil {
			t.Fatal(err)
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		net, err := model.LoadBytes("ab_mh_dense_v2 "+opts.PolicyHead+opts.ValueHead, b)
		if err != nil {
			t.Fatal(err)
		}
		out, err := net.Forward(rt, in, len(recs))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	def := run(lc0.Options{})
	checkRefs(t, def, recs, 1e-4, 1e-4)
	other := run(lc0.Options{PolicyHead: "optimistic", ValueHead: "q"})
	if d := maxDiff(def.Policy, other.Policy); d < 1e-3 || math.IsNaN(d) {
		t.Errorf("optimistic policy differs from vanilla by only %g", d)
	}
	if d := maxDiff(def.WDL, other.WDL); d < 1e-4 || math.IsNaN(d) {
		t.Errorf("q value head differs from winner by only %g", d)
	}
	if d := maxDiff(def.MLH, other.MLH); d != 0 {
		t.Errorf("moves-left head changed by %g with the policy and value heads", d)
	}
}

// TestReencodedLayers re-encodes a real net's LINEAR16 layers as FLOAT32, FLOAT16 and BFLOAT16. FLOAT32
// holds the decoded values exactly, so the graph and lc0's outputs are unchanged; the 16-bit floats round
// each weight by at most half a unit in the last place (2^-11, 2^-8 relative), and outputs move by a
// small multiple of that.
func TestReencodedLayers(t *testing.T) {
	rt := testRuntime(t)
	sh := lc0.SharedDir(t)
	path := filepath.Join(sh, "models", "maia-1100.pb.gz")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := lc0.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	recs := testutil.ReadRefdump(t, filepath.Join(sh, "reference", "lc0", "maia-1100.refdump.jsonl"))
	in := planes(t, recs)
	base, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := base.Forward(rt, in, len(recs))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		enc              pblczero.Weights_Layer_Encoding
		logitTol, wdlTol float64
	}{
		{pblczero.Weights_Layer_FLOAT32, 0, 0},
		// Bounds in units of the encoding's relative precision (2^-11, 2^-8): maia's logits reach about 15
		// in magnitude and rounding errors add up over 6 blocks. FLOAT16 gets a wider margin as it also
		// stores weights below 2^-14 as subnormals, with fewer significant bits.
		{pblczero.Weights_Layer_FLOAT16, 128.0 / 2048, 8.0 / 2048},
		{pblczero.Weights_Layer_BFLOAT16, 64.0 / 256, 8.0 / 256},
	} {
		t.Run(tc.enc.String(), func(t *testing.T) {
			pb := proto.Clone(orig.Proto).(*pblczero.Net)
			if n := lc0.ReencodeForTest(pb, tc.enc); n < 100 {
				t.Fatalf("only %d layers re-encoded", n)
			}
			b, err := proto.Marshal(pb)
			if err != nil {
				t.Fatal(err)
			}
			net, err := model.LoadBytes("maia-1100 "+tc.enc.String(), b)
			if err != nil {
				t.Fatal(err)
			}
			if tc.enc == pblczero.Weights_Layer_FLOAT32 && !proto.Equal(net.Proto.GetGraph(), base.Proto.GetGraph()) {
				t.Error("FLOAT32 re-encoding changed the graph")
			}
			got, err := net.Forward(rt, in, len(recs))
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(got.Policy, ref.Policy); d > tc.logitTol {
				t.Errorf("policy logits moved by %g, want <= %g", d, tc.logitTol)
			}
			if d := maxDiff(got.WDL, ref.WDL); d > tc.wdlTol {
				t.Errorf("wdl moved by %g, want <= %g", d, tc.wdlTol)
			}
			t.Logf("%s: policy logits within %g, wdl within %g", tc.enc, maxDiff(got.Policy, ref.Policy), maxDiff(got.WDL, ref.WDL))
			if tc.enc == pblczero.Weights_Layer_FLOAT32 {
				checkRefs(t, got, recs, 1e-4, 1e-5)
			}
		})
	}
}
