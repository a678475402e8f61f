package probe

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestProbeFileRoundTrip(t *testing.T) {
	f := &File{Format: Format, FormatVersion: 1, Concept: "in-check", Kind: "binary",
		Probes: []Probe{{Module: "block0/conv2/relu", Shape: []int{2}, Weights: []float32{1, -2}, Bias: 0.5, Score: math.NaN()}}}
	var buf bytes.Buffer
	if err := Write(&buf, f); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Probes[0].Predict([]float32{1, 1}, g.Binary()); math.Abs(got-1/(1+math.Exp(0.5))) > 1e-12 {
		t.Errorf("prediction %g after the round trip", got)
	}
	bad := bytes.Replace(buf.Bytes(), []byte(`"binary"`), []byte(`"ordinal"`), 1)
	_ = os.WriteFile(path, bad, 0o644)
	if _, err := Load(path); err == nil {
		t.Error("unknown kind accepted")
	}
}
