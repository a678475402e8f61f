package lens

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/lczerolens/lczerolens/internal/model"
)

// ProbeFormat names probe files.
const ProbeFormat = "lczerolens-probe"

// ProbeFile is a probe.json: linear probes of one concept on modules of one network, as written by
// `lczerolens probe train` and read by the probing lens.
type ProbeFile struct {
	Format        string  `json:"format"`
	FormatVersion int     `json:"format_version"`
	ToolVersion   string  `json:"tool_version,omitempty"`
	Model         ModelID `json:"model"`
	Concept       string  `json:"concept"`
	Kind          string  `json:"kind"` // regression (ridge) or binary (logistic)
	Input         string  `json:"input,omitempty"`
	Holdout       float64 `json:"holdout"`
	Seed          uint64  `json:"seed"`
	L2            float64 `json:"l2"`
	MaxRows       int     `json:"max_rows"`
	Skipped       int     `json:"skipped"` // positions without a label
	Probes        []Probe `json:"probes"`
}

// ModelID identifies the network a probe was trained on.
type ModelID struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Binary reports whether the probes are logistic (their predictions are probabilities).
func (f *ProbeFile) Binary() bool { return f.Kind == "binary" }

// WriteProbeFile writes f as indented JSON; scores that are NaN (no held-out rows) become null.
func WriteProbeFile(w io.Writer, f *ProbeFile) error {
	type probeJSON struct {
		Probe
		Score      *float64 `json:"score"`
		TrainScore *float64 `json:"train_score"`
	}
	finite := func(x float64) *float64 {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return &x
	}
	out := struct {
		*ProbeFile
		Probes []probeJSON `json:"probes"`
	}{ProbeFile: f}
	for _, p := range f.Probes {
		out.Probes = append(out.Probes, probeJSON{Probe: p, Score: finite(p.Score), TrainScore: finite(p.TrainScore)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

// ReadProbeFile loads and checks a probe file.
func ReadProbeFile(path string) (*ProbeFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("probe: %s: no such file; train one with `lczerolens probe train`", path)
		}
		return nil, fmt.Errorf("probe: %w", err)
	}
	var f ProbeFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("probe: %s: invalid json: %w", path, err)
	}
	if f.Format != ProbeFormat || f.FormatVersion != 1 {
		return nil, fmt.Errorf("probe: %s: format %q version %d, want %s version 1", path, f.Format, f.FormatVersion, ProbeFormat)
	}
	if f.Kind != "regression" && f.Kind != "binary" {
		return nil, fmt.Errorf("probe: %s: kind %q, want regression or binary", path, f.Kind)
	}
	if len(f.Probes) == 0 {
		return nil, fmt.Errorf("probe: %s: no probes", path)
	}
	for _, p := range f.Probes {
		n := 1
		for _, s := range p.Shape {
			n *= s
		}
		if len(p.Weights) != n {
			return nil, fmt.Errorf("probe: %s: module %s: %d weights for shape %v", path, p.Module, len(p.Weights), p.Shape)
		}
	}
	return &f, nil
}

// Probing applies trained linear probes (see `lczerolens probe train`) to module activations.
var Probing = &Lens{
	Name:    "probing",
	Doc:     "Apply linear probes trained by `lczerolens probe train` (--probe probe.json): the concept's predicted value (or probability) per module, <module>_probe.",
	Options: []Option{{Name: "probe", Kind: String, Default: "", Help: "probe file written by `lczerolens probe train`"}},
	Compatible: func(n *model.Network, v Values) error {
		_, err := loadProbes(n, v)
		return err
	},
	Prepare: prepareProbing,
}

// loadProbes reads --probe and checks that it was trained on n, on modules n has with the same shapes.
func loadProbes(n *model.Network, v Values) (*ProbeFile, error) {
	path := v.String("probe")
	if path == "" {
		return nil, errors.New("no probe file: pass --probe probe.json (train one with `lczerolens probe train`)")
	}
	f, err := ReadProbeFile(path)
	if err != nil {
		return nil, err
	}
	if f.Model.SHA256 != n.SHA256 {
		return nil, fmt.Errorf("probe: %s was trained on %s (sha256 %.12s), not on this network (sha256 %.12s)", path, f.Model.Path, f.Model.SHA256, n.SHA256)
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
	f, err := loadProbes(n, v)
	if err != nil {
		return nil, err
	}
	hooks := make([]string, len(f.Probes))
	modules := make([]string, len(f.Probes))
	for i, p := range f.Probes {
		m, _ := n.Module(p.Module)
		hooks[i], modules[i] = m.Tensor, p.Module
	}
	return &Prep{
		Hooks: hooks,
		Meta:  map[string]any{"concept": f.Concept, "kind": f.Kind, "modules": modules},
		Produce: func(b *Batch, out *Outputs) ([]Result, error) {
			rs := make([]Result, len(f.Probes))
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
				rs[k] = Result{Key: moduleKey(p.Module) + "_probe", Shape: []int{1}, Data: data}
			}
			return rs, nil
		},
	}, nil
}
