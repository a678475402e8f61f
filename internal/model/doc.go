// Package model owns everything ONNX and ONNX Runtime: loading lc0 networks (.onnx), naming their modules,
// rewriting graphs into plans (extra outputs for hooks, or graphs built elsewhere), running plans in cached
// sessions, and decoding the heads. It knows plane counts and policy size, nothing of chess rules.
package model
