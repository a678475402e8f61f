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

// TestShapeEngineAgainstORT checks the one shape engine against ONNX Runtime, an independent implementation:
// for every node output of every reference net (real and synthetic) and of the demo net, the symbolic shape
// specialised to a batch size must be fully known (no ONNX Runtime fallback needed) and equal, with its
// element type, what ONNX Runtime produces at that batch size. Two batch sizes, so that a dim following the
// batch cannot pass for a fixed one.
func TestShapeEngineAgainstORT(t *testing.T) {
	rt := testRuntime(t)
	sh := sharedDir(t)
	paths, _ := filepath.Glob(filepath.Join(sh, "models", "*.onnx"))
	synth, _ := filepath.Glob(filepath.Join(sh, "models", "synthetic", "*.onnx"))
	paths = append(paths, synth...)
	if len(paths) < 2 {
		t.Fatalf("want the reference nets in %s/models and models/synthetic, found %d", sh, len(paths))
	}
	nets := map[string]func() (*Network, error){"demo": func() (*Network, error) { return Demo(), nil }}
	for _, p := range paths {
		nets[filepath.Base(p)] = func() (*Network, error) { return Load(p) }
	}
	for name, load := range nets {
		t.Run(name, func(t *testing.T) {
			n, err := load()
			if err != nil {
				t.Fatal(err)
			}
			for _, batch := range []int{1, 3} {
				got, err := n.runtimeShapesAt(rt, batch)
				if err != nil {
					t.Fatal(err)
				}
				checked := 0
				for _, node := range n.Proto.GetGraph().GetNode() {
					for _, o := range node.GetOutput() {
						if o == "" {
							continue
						}
						info := n.shapes.Get(o)
						s, ok := n.shapes.Concrete(info, int64(batch))
						if !ok {
							t.Errorf("batch %d: %s (%s): inferred %v, not a concrete shape", batch, o, node.GetOpType(), info)
							continue
						}
						want, ok := got[o]
						if !ok {
							t.Errorf("batch %d: %s: ONNX Runtime gave no shape", batch, o)
							continue
						}
						if !slices.Equal(s, want.shape) || dtypeName(info.Elem) != want.dtype {
							t.Errorf("batch %d: %s (%s): inferred %s%v (%v), onnx runtime %s%v", batch, o, node.GetOpType(),
								dtypeName(info.Elem), s, info.Dims, want.dtype, want.shape)
						}
						checked++
					}
				}
				if checked == 0 {
					t.Errorf("batch %d: no tensor checked", batch)
				}
			}
		})
	}
}
