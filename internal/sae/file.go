package sae

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lczerolens/lczerolens/internal/atomicfile"
	"github.com/lczerolens/lczerolens/internal/npy"
)

// Format names sae.json files.
const Format = "lczerolens-sae"

// ModelID names the network an SAE was trained on. Graph is the sha256 of its graph and weights
// (model.GraphHash), shared by a weight file and its ONNX export: what the sae lens checks.
type ModelID struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Graph  string `json:"graph_sha256,omitempty"`
}

// Fidelity is the downstream effect of replacing a module's activation, averaged over positions: the KL
// divergence of the legal-move policy from the original and |delta value|.
type Fidelity struct {
	Positions int     `json:"positions"`
	KL        float64 `json:"kl"`
	DValue    float64 `json:"abs_dvalue"`
}

// File is sae.json: everything about an SAE but its weights, which sit next to it as .npy files.
type File struct {
	Format        string `json:"format"`
	FormatVersion int    `json:"format_version"`
	ToolVersion   string `json:"tool_version,omitempty"`
	Model         ModelID
	Module        string `json:"module"`
	// Shape is one position's activation shape; Vectors is how a position splits into vectors ("square":
	// 64 per position in the absolute board frame, a1=0..h8=63; "position": one).
	Shape      []int          `json:"shape"`
	Vectors    string         `json:"vectors"`
	C          int            `json:"c"`
	F          int            `json:"f"`
	K          int            `json:"k"`
	Activation string         `json:"activation"`
	InputScale float32        `json:"input_scale"`
	Options    map[string]any `json:"options"`
	Steps      int            `json:"steps"`
	// Mean is the mean training vector (input space), what mean ablation puts in place of every vector.
	Mean    []float32 `json:"mean"`
	Metrics *Metrics  `json:"metrics,omitempty"`
	// Fidelity by patch: "sae" (the reconstruction), "zero" and "mean" ablation.
	Fidelity map[string]Fidelity `json:"fidelity,omitempty"`
	SAE      *SAE                `json:"-"`
}

// The weight files of an SAEDIR.
var weightFiles = []string{"W_enc.npy", "b_enc.npy", "W_dec.npy", "b_dec.npy"}

func (f *File) arrays() ([][]int, [][]float32) {
	s := f.SAE
	return [][]int{{s.C, s.F}, {s.F}, {s.F, s.C}, {s.C}}, [][]float32{s.WEnc, s.BEnc, s.WDec, s.BDec}
}

// Save writes f into dir (created if need be): the weights first, sae.json last, each file atomically, so a
// directory with sae.json is complete.
func Save(dir string, f *File, replace bool) error {
	s := f.SAE
	if err := s.Check(); err != nil {
		return err
	}
	f.Format, f.FormatVersion = Format, 1
	f.C, f.F, f.K, f.Activation, f.InputScale = s.C, s.F, s.K, s.Activation, s.Scale
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sae: %w", err)
	}
	shapes, data := f.arrays()
	for i, name := range weightFiles {
		if err := atomicfile.Write(filepath.Join(dir, name), true, func(w io.Writer) error { return npy.Write(w, shapes[i], data[i]) }); err != nil {
			return fmt.Errorf("sae: %w", err)
		}
	}
	js, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("sae: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "sae.json"), append(js, '\n'), replace); err != nil {
		return fmt.Errorf("sae: %w", err)
	}
	return nil
}

// Load reads an SAEDIR.
func Load(dir string) (*File, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "sae.json"))
	if err != nil {
		return nil, fmt.Errorf("sae: %w (an SAE directory is written by `lczerolens sae train`)", err)
	}
	var f File
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("sae: %s: %w", filepath.Join(dir, "sae.json"), err)
	}
	if f.Format != Format {
		return nil, fmt.Errorf("sae: %s: format %q, want %q", filepath.Join(dir, "sae.json"), f.Format, Format)
	}
	f.SAE = &SAE{C: f.C, F: f.F, K: f.K, Activation: f.Activation, Scale: f.InputScale}
	shapes, _ := f.arrays()
	dst := []*[]float32{&f.SAE.WEnc, &f.SAE.BEnc, &f.SAE.WDec, &f.SAE.BDec}
	for i, name := range weightFiles {
		fh, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("sae: %w", err)
		}
		shape, data, err := npy.Read(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("sae: %s: %w", name, err)
		}
		if fmt.Sprint(shape) != fmt.Sprint(shapes[i]) {
			return nil, fmt.Errorf("sae: %s: shape %v, sae.json says %v", name, shape, shapes[i])
		}
		*dst[i] = data
	}
	if err := f.SAE.Check(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Checkpoint is a training run's whole state at a step boundary.
type Checkpoint struct {
	Trainer    *Trainer
	Shuffle    []float32
	ShuffleLen int
	ShuffleRNG []byte
	// Held are the held-out vectors kept so far for the running metrics.
	Held []float32
	// Sum and SumN are the sum and count of the training vectors seen (for the mean).
	Sum  []float64
	SumN int64
	// Shape is one position's activation shape (the caller's, recorded for the SAEDIR).
	Shape []int
	// Progress is the caller's position in its input (records, vectors, epoch, ...).
	Progress map[string]int64
}

// SaveCheckpoint writes c to path atomically.
func SaveCheckpoint(path string, c *Checkpoint) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(c); err != nil {
		return fmt.Errorf("sae: checkpoint: %w", err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), true); err != nil {
		return fmt.Errorf("sae: checkpoint: %w", err)
	}
	return nil
}

// LoadCheckpoint reads a checkpoint written by SaveCheckpoint.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sae: checkpoint: %w", err)
	}
	var c Checkpoint
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&c); err != nil {
		return nil, fmt.Errorf("sae: checkpoint %s: %w", path, err)
	}
	if c.Trainer == nil || c.Trainer.SAE == nil {
		return nil, errors.New("sae: checkpoint holds no trainer")
	}
	if err := c.Trainer.SAE.Check(); err != nil {
		return nil, fmt.Errorf("sae: checkpoint %s: %w", path, err)
	}
	return &c, nil
}
