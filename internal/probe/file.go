package probe

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Format names probe files.
const Format = "lczerolens-probe"

// File is a probe.json: linear probes of one concept on modules of one network, as written by
// `lczerolens probe train` and read by the probing lens.
type File struct {
	Format        string  `json:"format"`
	FormatVersion int     `json:"format_version"`
	ToolVersion   string  `json:"tool_version,omitempty"`
	Model         ModelID `json:"model"`
	Concept       string  `json:"concept"`
	Kind          string  `json:"kind"` // regression (ridge) or binary (logistic)
	Input         string  `json:"input,omitempty"`
	Holdout       float64 `json:"holdout"`
	Seed          uint64  `json:"seed"`
	L2            float64 `json:"l2"` // the penalty given; 0 under --l2 auto (each probe's L2 is the one chosen)
	// L2Grid lists the penalties --l2 auto chose from by cross-validation over records.
	L2Grid  []float64 `json:"l2_grid,omitempty"`
	MaxRows int       `json:"max_rows"`
	Skipped int       `json:"skipped"` // positions without a label
	// Labels counts the labels by split (absent from files written before it).
	Labels *Labels `json:"labels,omitempty"`
	Probes []Probe `json:"probes"`
	// Warnings are the report's warnings about the probes (train/held-out gaps).
	Warnings []string `json:"warnings,omitempty"`

	// Path is where the file was read from (set by Load, for messages); it is not part of the file.
	Path string `json:"-"`
}

// ModelID identifies the network a probe was trained on: the file's sha256, and the hash of its graph and
// weights (model.GraphHash), which is what a probe is checked against (files written before it have only the
// file's sha256, checked instead).
type ModelID struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Graph  string `json:"graph_sha256,omitempty"`
}

// Binary reports whether the probes are logistic (their predictions are probabilities).
func (f *File) Binary() bool { return f.Kind == "binary" }

// Probe is a trained linear probe on one module: prediction = Bias + Weights . activation (through a
// logistic sigmoid for binary concepts).
type Probe struct {
	Module     string  `json:"module"`
	Shape      []int   `json:"shape"`
	Train      int     `json:"train"`       // training rows seen
	Test       int     `json:"test"`        // held-out rows scored
	Metric     string  `json:"metric"`      // r2 or accuracy
	Score      float64 `json:"score"`       // held-out metric (NaN when there is no held-out row)
	TrainScore float64 `json:"train_score"` // the same metric on the training rows used
	// L2 is the penalty the probe was fitted with (chosen by cross-validation under --l2 auto).
	L2 float64 `json:"l2,omitempty"`
	// Baseline is the held-out metric of the best constant: the training majority label's rate (binary), or
	// the R^2 of the training mean (regression, at most 0). NaN without held-out rows.
	Baseline float64 `json:"baseline"`
	// BalancedAccuracy and AUC (ROC) score binary probes on the held-out rows; NaN otherwise.
	BalancedAccuracy float64 `json:"balanced_accuracy"`
	AUC              float64 `json:"auc"`
	// CV is the cross-validation curve the penalty was chosen from (--l2 auto).
	CV []CVPoint `json:"cv,omitempty"`
	// Verdict compares Score with Baseline: above, chance (within noise) or below (see probe.Above).
	Verdict string    `json:"verdict,omitempty"`
	Bias    float64   `json:"bias"`
	Weights []float32 `json:"weights"`
}

// CVPoint is one penalty's cross-validated loss: mean squared error (regression) or mean log-loss (binary)
// over the rows of every fold, each predicted by the probe fitted on the other folds.
type CVPoint struct {
	L2   float64 `json:"l2"`
	Loss float64 `json:"loss"`
}

// Predict applies the probe to one activation.
func (p *Probe) Predict(x []float32, binary bool) float64 {
	s := p.Bias
	for j, w := range p.Weights {
		s += float64(w) * float64(x[j])
	}
	if binary {
		return sigmoid(s)
	}
	return s
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// Write writes f as indented JSON; scores that are NaN (no held-out rows) become null.
func Write(w io.Writer, f *File) error {
	type probeJSON struct {
		Probe
		Score            *float64 `json:"score"`
		TrainScore       *float64 `json:"train_score"`
		Baseline         *float64 `json:"baseline,omitempty"`
		BalancedAccuracy *float64 `json:"balanced_accuracy,omitempty"`
		AUC              *float64 `json:"auc,omitempty"`
	}
	finite := func(x float64) *float64 {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return &x
	}
	out := struct {
		*File
		Probes []probeJSON `json:"probes"`
	}{File: f}
	for _, p := range f.Probes {
		out.Probes = append(out.Probes, probeJSON{Probe: p, Score: finite(p.Score), TrainScore: finite(p.TrainScore),
			Baseline: finite(p.Baseline), BalancedAccuracy: finite(p.BalancedAccuracy), AUC: finite(p.AUC)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

// Load reads and checks the probe file at path; the result remembers path.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("probe: %w; train one with `lczerolens probe train`", err)
		}
		return nil, fmt.Errorf("probe: %w", err)
	}
	return Decode(raw, path)
}

// Decode parses and checks the bytes of a probe file; name says where they came from, for messages.
func Decode(raw []byte, name string) (*File, error) {
	var f File
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("probe: %s: invalid json: %w", name, err)
	}
	f.Path = name
	if f.Format != Format || f.FormatVersion != 1 {
		return nil, fmt.Errorf("probe: %s: format %q version %d, want %s version 1", name, f.Format, f.FormatVersion, Format)
	}
	if f.Kind != "regression" && f.Kind != "binary" {
		return nil, fmt.Errorf("probe: %s: kind %q, want regression or binary", name, f.Kind)
	}
	if len(f.Probes) == 0 {
		return nil, fmt.Errorf("probe: %s: no probes", name)
	}
	for _, p := range f.Probes {
		n := 1
		for _, s := range p.Shape {
			n *= s
		}
		if len(p.Weights) != n {
			return nil, fmt.Errorf("probe: %s: module %s: %d weights for shape %v", name, p.Module, len(p.Weights), p.Shape)
		}
	}
	return &f, nil
}
