package lens

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// TestDeclaredKeysMatchRun checks that each lens declares, before running, exactly the keys its run returns
// (--keep is checked against the declaration), composites and --save-planes included.
func TestDeclaredKeysMatchRun(t *testing.T) {
	r := runtimeFor(t)
	n := model.Demo()
	b := withCorrupt(batchOf(t, board.FillFENOnly))
	var checkOn func(t *testing.T, n *model.Network, b *Batch, specs []Spec, opts EngineOptions)
	check := func(t *testing.T, specs []Spec, opts EngineOptions) {
		t.Helper()
		checkOn(t, n, b, specs, opts)
	}
	checkOn = func(t *testing.T, n *model.Network, b *Batch, specs []Spec, opts EngineOptions) {
		t.Helper()
		e, err := NewEngine(r, n, specs, opts)
		if err != nil {
			t.Fatal(err)
		}
		declared := e.Keys()
		if declared == nil {
			t.Fatal("a lens declares no keys")
		}
		_, res, err := e.Run(b)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, x := range res {
			got = append(got, x.Key)
		}
		if !slices.Equal(got, declared) {
			t.Errorf("declared keys %v, the run returned %v", declared, got)
		}
	}
	for _, l := range Lenses {
		t.Run(l.Name, func(t *testing.T) {
			if l == Attention { // the demo net has no attention: a synthetic attention body, with and without options
				an := attentionNet(t, "ab_mh_dense_hecto")
				ab := refTransformBatch(t, board.InputCanonicalHectoplies, map[int]bool{0: true})
				for _, opts := range []map[string]string{nil, {"attribution": "grad", "top-pairs": "3"}} {
					v, err := l.Resolve(opts)
					if err != nil {
						t.Fatal(err)
					}
					checkOn(t, an, ab, []Spec{{l, v}}, EngineOptions{})
				}
				return
			}
			v, err := demoLensValues(t, l)
			if err != nil {
				t.Fatal(err)
			}
			check(t, []Spec{{l, v}}, EngineOptions{})
		})
	}
	t.Run("gradient+saliency+planes", func(t *testing.T) {
		gv, _ := Gradient.Resolve(map[string]string{"pattern": "block0"})
		sv, _ := Saliency.Resolve(nil)
		check(t, []Spec{{Gradient, gv}, {Saliency, sv}}, EngineOptions{SavePlanes: true})
	})
}

// TestKeep checks that --keep returns only the named results, with the values a run without it returns,
// and that an unknown key is refused before any run, naming the valid keys.
func TestKeep(t *testing.T) {
	r := runtimeFor(t)
	n := model.Demo()
	b := batchOf(t, board.FillFENOnly)
	gv, _ := Gradient.Resolve(nil)
	sv, _ := Saliency.Resolve(nil)
	specs := []Spec{{Gradient, gv}, {Saliency, sv}}
	full := runSpecs(t, r, n, b, specs)
	e, err := NewEngine(r, n, specs, EngineOptions{SavePlanes: true, Keep: []string{"saliency.input_grad", "saliency"}})
	if err != nil {
		t.Fatal(err)
	}
	_, res, err := e.Run(b)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, x := range res {
		keys = append(keys, x.Key)
		if !slices.Equal(x.Data, full[x.Key].Data) || !slices.Equal(x.Shape, full[x.Key].Shape) {
			t.Errorf("%s differs from the run without --keep", x.Key)
		}
	}
	// The engine's own order, not --keep's.
	if strings.Join(keys, " ") != "saliency saliency.input_grad" {
		t.Errorf("kept %v", keys)
	}
	_, err = NewEngine(r, n, specs, EngineOptions{Keep: []string{"saliency", "input_grad"}})
	var ke *KeepError
	if !errors.As(err, &ke) || !slices.Equal(ke.Unknown, []string{"input_grad"}) ||
		!strings.Contains(err.Error(), "gradient.input_grad, saliency, saliency.input_grad") {
		t.Errorf("unknown kept key: %v", err)
	}
}
