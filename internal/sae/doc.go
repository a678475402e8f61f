// Package sae owns sparse autoencoders over module activations: the dictionary (TopK or ReLU+L1), its
// training step (forward, backward, Adam, unit-norm decoder rows, dead-feature revival by an auxiliary TopK
// loss), the shuffle buffer that decorrelates the per-square vectors of a stream, held-out metrics, and the
// SAEDIR on disk (sae.json and four float32 .npy files numpy loads as they are). It knows nothing of
// networks or positions: the command layer feeds it vectors.
//
// The arithmetic is plain Go over float32 slices. The encoder's dense product goes through gonum's blas32
// (blocked, parallel, assembly kernels); everything after the TopK is sparse (k of F features per vector), so
// the backward and decoder cost k*C per vector instead of F*C.
package sae
