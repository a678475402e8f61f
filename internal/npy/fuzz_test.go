package npy

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// FuzzNPYRead checks Read never panics, reports every rejection as
// ErrFormat (the input is in memory, so no I/O can fail) and that whatever it
// accepts survives a Write/Read round trip.
func FuzzNPYRead(f *testing.F) {
	f.Add(npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", make([]byte, 8)))
	f.Fuzz(func(t *testing.T, in []byte) {
		shape, data, err := Read(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if prod(shape) != len(data) {
			t.Fatalf("shape %v with %d values", shape, len(data))
		}
		var buf bytes.Buffer
		if err := Write(&buf, shape, data); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		shape2, data2, err := Read(&buf)
		if err != nil || !slices.Equal(shape, shape2) || !sameBits(data, data2) {
			t.Fatalf("round trip: %v %v %v", err, shape2, err)
		}
	})
}
