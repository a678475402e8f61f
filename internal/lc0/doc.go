// Package lc0 reads Leela Chess Zero weight files (`.pb`, `.pb.gz`: protobuf pblczero.Net) and builds the
// same ONNX graph as lc0's own converter (`lc0 leela2onnx`, v0.33): node, initializer and output names,
// op choices and batch-norm folding follow lc0, so hooks and lenses address converted and lc0-exported
// graphs alike. It knows nothing of chess rules beyond lc0's policy layouts, and nothing of ONNX Runtime.
//
// Parse decodes a file (gzipped or not) and checks its header; Net.Describe summarises it like lc0's
// describenet; Convert builds the ONNX model.
package lc0
