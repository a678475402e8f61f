package render

import (
	"bytes"
	"math"
	"math/rand"
	"strconv"
	"strings"
	"testing"
)

// TestTextGridValues prints maps of several magnitudes and reads the values back from the grid: each is
// within half a unit of its last printed digit, relative to the largest value (three significant digits
// of it), and NaN squares show the no-value mark.
func TestTextGridValues(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, scale := range []float64{1e-6, 1e-3, 0.37, 2.5, 640, 3e5} {
		vals := make([]float32, 64)
		for i := range vals {
			vals[i] = float32((rng.Float64()*2 - 1) * scale)
		}
		vals[5] = float32(math.NaN())
		var b bytes.Buffer
		if err := TextGrid(&b, vals, TextOptions{}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(b.String(), "\n")
		m := 0.0
		for _, v := range vals {
			if !math.IsNaN(float64(v)) {
				m = math.Max(m, math.Abs(float64(v)))
			}
		}
		for row := range 8 {
			rank := 7 - row
			f := strings.Fields(lines[1+row])
			for file := range 8 {
				sq := rank*8 + file
				if sq == 5 {
					if f[1+file] != noValue {
						t.Errorf("scale %g: NaN square shows %q", scale, f[1+file])
					}
					continue
				}
				got, err := strconv.ParseFloat(f[1+file], 64)
				if err != nil {
					t.Fatalf("scale %g: %v", scale, err)
				}
				if d := math.Abs(got - float64(vals[sq])); d > 0.006*m {
					t.Errorf("scale %g: square %d prints %s for %g", scale, sq, f[1+file], vals[sq])
				}
			}
		}
		if w := len(lines[1]); w > 100 {
			t.Errorf("scale %g: grid line of %d columns", scale, w)
		}
	}
}
