package model

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// patchNets are the demo network and, when ../shared is present, two real ones.
func patchNets(t *testing.T) []*Network {
	t.Helper()
	nets := []*Network{Demo()}
	for _, name := range []string{"maia-1100", "tinygyal-8"} {
		d := filepath.Join(testutil.Root(t), "..", "shared", "models", name+".onnx")
		n, err := Load(d)
		if err != nil {
			t.Logf("%s: %v (skipped)", name, err)
			continue
		}
		nets = append(nets, n)
	}
	return nets
}

// patchPlanes returns clean and corrupted planes for a batch: the start position and others built by hand,
// so the test does not depend on the encoder beyond piece planes.
func patchPlanes(batch int) (clean, corrupt []float32) {
	piece := func(dst []float32, plane, sq int) { dst[plane*64+sq] = 1 }
	for b := 0; b < batch; b++ {
		c := make([]float32, Planes*64)
		k := make([]float32, Planes*64)
		for _, x := range [][]float32{c, k} {
			piece(x, 5, 4)   // our king e1
			piece(x, 11, 60) // their king e8
			for sq := 0; sq < 64; sq++ {
				x[111*64+sq] = 1 // all-ones plane
			}
		}
		piece(c, 4, 3+b%4)   // our queen on the first rank
		piece(k, 10, 59-b%4) // their queen instead
		piece(k, 0, 8+b%8)   // and one of our pawns
		clean = append(clean, c...)
		corrupt = append(corrupt, k...)
	}
	return clean, corrupt
}

// TestPatchPlan checks the cut graph on every block output: feeding a module its own clean activation gives
// the clean heads, and feeding the last block's corrupted activation gives the corrupted heads.
func TestPatchPlan(t *testing.T) {
	rt := testRuntime(t)
	const batch = 4
	clean, corrupt := patchPlanes(batch)
	for _, n := range patchNets(t) {
		t.Run(filepath.Base(n.Path), func(t *testing.T) {
			mods, err := n.Select(`^block\d+/conv2/relu$|^encoder\d+/ln2$`)
			if err != nil {
				t.Fatal(err)
			}
			var hooks []string
			for _, m := range mods {
				hooks = append(hooks, m.Tensor)
			}
			hp, err := n.HookPlan(hooks)
			if err != nil {
				t.Fatal(err)
			}
			in := func(planes []float32) map[string]Tensor {
				return map[string]Tensor{n.Input: {Shape: []int64{batch, Planes, 8, 8}, Data: planes}}
			}
			cleanRes, err := rt.Run(hp, in(clean), nil)
			if err != nil {
				t.Fatal(err)
			}
			corruptRes, err := rt.Run(hp, in(corrupt), nil)
			if err != nil {
				t.Fatal(err)
			}
			cleanHeads, _ := n.DecodeHeads(cleanRes, batch)
			corruptHeads, _ := n.DecodeHeads(corruptRes, batch)
			if maxDiff(cleanHeads.Policy, corruptHeads.Policy) < 1e-3 {
				t.Fatal("corrupted planes do not change the policy: the test would prove nothing")
			}
			for k, m := range mods {
				p, name, err := n.PatchPlan(m.Name)
				if err != nil {
					t.Fatal(err)
				}
				if name != m.Tensor {
					t.Fatalf("input name %q, want %q", name, m.Tensor)
				}
				for _, pn := range p.Inputs {
					if pn != n.Input && pn != m.Tensor {
						t.Fatalf("unexpected plan input %q", pn)
					}
				}
				run := func(act Tensor) *HeadOutputs {
					ins := in(clean)
					ins[name] = act
					res, err := rt.Run(p, ins, nil)
					if err != nil {
						t.Fatal(err)
					}
					h, err := n.DecodeHeads(res, batch)
					if err != nil {
						t.Fatal(err)
					}
					return h
				}
				same := run(cleanRes[m.Tensor])
				if d := maxDiff(same.Policy, cleanHeads.Policy); d > 1e-6 {
					t.Errorf("%s patched with its own clean activation: policy moved by %g", m.Name, d)
				}
				if d := max(maxDiff(same.WDL, cleanHeads.WDL), maxDiff(same.Value, cleanHeads.Value)); d > 1e-6 {
					t.Errorf("%s patched with its own clean activation: value moved by %g", m.Name, d)
				}
				if k == len(mods)-1 {
					// Everything that only fed the cut module is gone: the body before it.
					if len(p.Model.GetGraph().GetNode()) >= len(n.Proto.GetGraph().GetNode())-1 {
						t.Errorf("%s: %d nodes left of %d: nothing was pruned", m.Name, len(p.Model.GetGraph().GetNode()), len(n.Proto.GetGraph().GetNode()))
					}
					got := run(corruptRes[m.Tensor])
					if d := maxDiff(got.Policy, corruptHeads.Policy); d > 1e-5 {
						t.Errorf("%s patched with the corrupted activation: policy %g from the corrupted run", m.Name, d)
					}
					if d := max(maxDiff(got.WDL, corruptHeads.WDL), maxDiff(got.Value, corruptHeads.Value)); d > 1e-5 {
						t.Errorf("%s patched with the corrupted activation: value %g from the corrupted run", m.Name, d)
					}
				}
			}
		})
	}
}

func TestPatchPlanErrors(t *testing.T) {
	n := Demo()
	for _, tc := range []struct{ name, module, want string }{
		{"unknown", "block9/conv1", "no such module"},
		{"graph output", n.Heads.Policy, "network output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := n.PatchPlan(tc.module)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
