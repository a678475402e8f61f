package model

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestStaticShapes checks the shapes and element types inferred without ONNX Runtime against what ONNX
// Runtime produces, for every module of every reference net (real and synthetic).
func TestStaticShapes(t *testing.T) {
	rt := testRuntime(t)
	sh := sharedDir(t)
	paths, _ := filepath.Glob(filepath.Join(sh, "models", "*.onnx"))
	synth, _ := filepath.Glob(filepath.Join(sh, "models", "synthetic", "*.onnx"))
	for _, path := range append(paths, synth...) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			n, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if !n.ShapesKnown() {
				for _, m := range n.Modules {
					if m.Shape == nil {
						t.Errorf("%s (%s): shape not inferred", m.Name, m.Op)
					}
				}
			}
			got, err := n.runtimeShapes(rt)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range n.Modules {
				want, ok := got[m.Tensor]
				if !ok {
					t.Errorf("%s: no runtime shape", m.Name)
					continue
				}
				if !slices.Equal(m.Shape, want.shape) || m.DType != want.dtype {
					t.Errorf("%s (%s): static %s%v, onnx runtime %s%v", m.Name, m.Op, m.DType, m.Shape, want.dtype, want.shape)
				}
			}
		})
	}
}
