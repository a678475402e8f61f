package lens

import (
	"math"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestParseComposite maps every --composite choice to its rules, read off the name independently.
func TestParseComposite(t *testing.T) {
	names := CompositeNames()
	if len(names) != 16 {
		t.Errorf("%d composites: %v", len(names), names)
	}
	for _, name := range names[1:] {
		c, err := ParseComposite(name, 0.5, 3, 2)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantFirst := model.LinearKind(0)
		switch {
		case strings.HasSuffix(name, "-flat"):
			wantFirst = model.LinearFlat
		case strings.HasSuffix(name, "-wsquare"):
			wantFirst = model.LinearWSquare
		case strings.HasSuffix(name, "-box"):
			wantFirst = model.LinearBox
		}
		want := model.LinearRule{}
		switch {
		case strings.HasPrefix(name, "epsilon-plus"):
			want.Kind = model.LinearZPlus
		case strings.HasPrefix(name, "epsilon-gamma"):
			want = model.LinearRule{Kind: model.LinearGamma, Gamma: 0.5}
		case strings.HasPrefix(name, "epsilon-alpha-beta"):
			want = model.LinearRule{Kind: model.LinearAlphaBeta, Alpha: 3, Beta: 2}
		}
		if c.Conv != want || c.First.Kind != wantFirst || c.Dense != (model.LinearRule{}) {
			t.Errorf("%s: %+v", name, c)
		}
	}
	for _, bad := range []string{"plus", "epsilon-", "epsilon-epsilon", "epsilon-zbox"} {
		if _, err := ParseComposite(bad, 0.25, 2, 1); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestLRPCompositesRun runs every composite through the lens on tinygyal-8: the relevance is finite, not all
// zero, and differs from plain epsilon's (the composite reached the graph); with --rule zplus a composite is
// refused. What each rule conserves is tested in internal/model and autograd.
func TestLRPCompositesRun(t *testing.T) {
	r := runtimeFor(t)
	n, err := model.Load(testutil.Shared(t, "models/tinygyal-8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	b := batchOf(t, board.FillFENOnly)
	plain := runLens(t, r, n, b, LRP, nil)["relevance"].Data
	for _, name := range CompositeNames()[1:] {
		rel := runLens(t, r, n, b, LRP, map[string]string{"composite": name})["relevance"].Data
		var diff, norm float64
		for i, v := range rel {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: relevance %g at %d", name, v, i)
			}
			diff, norm = math.Max(diff, math.Abs(float64(v-plain[i]))), math.Max(norm, math.Abs(float64(v)))
		}
		if norm == 0 || diff < 1e-6*norm {
			t.Errorf("%s: relevance max %g, differs from epsilon's by %g", name, norm, diff)
		}
	}
	v, _ := LRP.Resolve(map[string]string{"composite": "epsilon-gamma", "rule": "zplus"})
	if _, err := NewEngine(r, n, []Spec{{LRP, v}}, EngineOptions{}); err == nil || !strings.Contains(err.Error(), "--rule epsilon") {
		t.Errorf("zplus with a composite: %v", err)
	}
}
