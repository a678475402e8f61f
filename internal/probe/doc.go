// Package probe owns linear probes: training them on a stream of (activation, label) rows with bounded
// memory (ridge regression solved on the normal equations, logistic regression by mini-batch Adam), the
// deterministic held-out split, and the probe file (probe.json) that `probe train` writes and the probing lens
// applies. It knows nothing of networks or lenses: the command layer feeds it activations and reads or writes
// the file once.
package probe
