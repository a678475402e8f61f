package lens

import (
	"errors"
	"fmt"
	"slices"

	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/probe"
)

// probesKey holds, in the probing lens's Values, the probe file named by its "probe" option once the caller
// has read it (WithProbes): a lens reads no files, so the file is read once, by the command layer. It is not
// an option, so it is neither a flag nor recorded in manifests.
const probesKey = "probe_file"

// WithProbes gives the probing lens's values v the probe file f that the caller loaded from v's "probe" path.
func WithProbes(v Values, f *probe.File) { v[probesKey] = f }

// Probing applies trained linear probes (see `lczerolens probe train`) to module activations.
var Probing = &Lens{
	Name:    "probing",
	Doc:     "Apply linear probes trained by `lczerolens probe train` (--probe probe.json): the concept's predicted value (or probability) per module, <module>_probe.",
	Options: []Option{{Name: "probe", Kind: String, Default: "", Help: `probe file written by "lczerolens probe train"`}},
	Compatible: func(n *model.Network, v Values) error {
		_, err := probesFor(n, v)
		return err
	},
	Prepare: prepareProbing,
}

// probesFor returns the loaded probe file and checks that it was trained on n, on modules n has with the
// same shapes.
func probesFor(n *model.Network, v Values) (*probe.File, error) {
	path := v.GetString("probe")
	if path == "" {
		return nil, errors.New("no probe file: pass --probe probe.json (train one with `lczerolens probe train`)")
	}
	f, _ := v[probesKey].(*probe.File)
	if f == nil {
		return nil, fmt.Errorf("probe: %s was not loaded: the caller must read it and pass it with WithProbes", path)
	}
	if !n.Matches(f.Model.SHA256, f.Model.Graph) {
		if f.Model.Graph == "" {
			return nil, fmt.Errorf("probe: %s was trained on %s (file sha256 %.12s), not on this network file (sha256 %.12s); retrain it to record the graph hash, which also accepts the net's other format", path, f.Model.Path, f.Model.SHA256, n.SHA256)
		}
		return nil, fmt.Errorf("probe: %s was trained on %s (graph sha256 %.12s), not on this network (graph sha256 %.12s)", path, f.Model.Path, f.Model.Graph, n.GraphSHA256)
	}
	for _, p := range f.Probes {
		m, ok := n.Module(p.Module)
		if !ok {
			return nil, fmt.Errorf("probe: %s: module %s not in the network", path, p.Module)
		}
		if m.Shape != nil {
			want := make([]int, 0, len(m.Shape))
			for _, s := range m.Shape[1:] {
				want = append(want, int(s))
			}
			if !slices.Equal(want, p.Shape) {
				return nil, fmt.Errorf("probe: %s: module %s has shape %v, the probe %v", path, p.Module, want, p.Shape)
			}
		}
	}
	return f, nil
}

func prepareProbing(n *model.Network, v Values) (*Prep, error) {
	f, err := probesFor(n, v)
	if err != nil {
		return nil, err
	}
	hooks := make([]string, len(f.Probes))
	modules := make([]string, len(f.Probes))
	keys := make([]string, len(f.Probes))
	for i, p := range f.Probes {
		m, _ := n.Module(p.Module)
		hooks[i], modules[i], keys[i] = m.Tensor, p.Module, moduleKey(p.Module)+"_probe"
	}
	return &Prep{
		Hooks: hooks,
		Keys:  keys,
		Meta:  map[string]any{"concept": f.Concept, "kind": f.Kind, "modules": modules},
		Produce: func(b *Batch, out *Outputs) ([]BatchResult, error) {
			rs := make([]BatchResult, len(f.Probes))
			for k, p := range f.Probes {
				t, ok := out.Tensors[hooks[k]]
				if !ok {
					return nil, fmt.Errorf("module %s was not returned by the run", hooks[k])
				}
				d := len(p.Weights)
				if len(t.Data) != b.Len()*d {
					return nil, fmt.Errorf("module %s: %d values for %d positions, the probe wants %d each", p.Module, len(t.Data), b.Len(), d)
				}
				data := make([]float32, b.Len())
				for i := range data {
					data[i] = float32(p.Predict(t.Data[i*d:(i+1)*d], f.Binary()))
				}
				rs[k] = BatchResult{Key: moduleKey(p.Module) + "_probe", Shape: []int{1}, Data: data}
			}
			return rs, nil
		},
	}, nil
}
