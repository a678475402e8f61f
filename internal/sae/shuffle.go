package sae

import "math/rand/v2"

// Shuffler is a bounded shuffle buffer: once full, each new vector takes the place of a uniformly chosen one,
// which goes out. The per-square vectors of one position (and the positions of one game) leave in a random
// order spread over the buffer's length, without holding the whole stream.
type Shuffler struct {
	C, Cap int
	Data   []float32 // Len vectors of C
	Len    int
	pcg    *rand.PCG
	rng    *rand.Rand
}

// NewShuffler returns an empty buffer of capacity vectors of c values.
func NewShuffler(c, capacity int, seed uint64) *Shuffler {
	pcg := rand.NewPCG(seed, seed^0x5851f42d4c957f2d)
	return &Shuffler{C: c, Cap: max(capacity, 1), pcg: pcg, rng: rand.New(pcg)}
}

// Add puts v in the buffer; when full, out receives the vector v replaces (valid during the call).
func (b *Shuffler) Add(v []float32, out func([]float32)) {
	c := b.C
	if b.Len < b.Cap {
		b.Data = append(b.Data, v...)
		b.Len++
		return
	}
	j := b.rng.IntN(b.Cap)
	out(b.Data[j*c : (j+1)*c])
	copy(b.Data[j*c:(j+1)*c], v)
}

// Drain sends every buffered vector to out in random order and empties the buffer.
func (b *Shuffler) Drain(out func([]float32)) {
	c := b.C
	for b.Len > 0 {
		j := b.rng.IntN(b.Len)
		last := b.Len - 1
		out(b.Data[j*c : (j+1)*c])
		copy(b.Data[j*c:(j+1)*c], b.Data[last*c:(last+1)*c])
		b.Data = b.Data[:last*c]
		b.Len--
	}
}

// State is the generator's state, for a checkpoint.
func (b *Shuffler) State() ([]byte, error) { return b.pcg.MarshalBinary() }

// SetState restores a State.
func (b *Shuffler) SetState(p []byte) error { return b.pcg.UnmarshalBinary(p) }
