// Package autograd builds reverse-mode gradients of ONNX graphs as more ONNX: Build appends to a copy of a
// model the backward graph of L = sum_k <seed_k, tensor_k>, made only of standard ai.onnx operators (opset
// 13 and later, float32 or float64), so one ONNX Runtime run returns the forward outputs and the gradients on
// any execution provider. It knows nothing of chess; internal/model drives the sessions.
//
// # What is walked
//
// Only nodes on a path from a Wrt tensor to a Seed tensor are differentiated: with the value head seeded, the
// policy head is never touched, and with an intermediate Wrt nothing below it is. Initializers (weights) never
// get gradients. Integer and boolean tensors carry none, so shape arithmetic (Shape, Gather/Slice/Concat on
// shapes, the shapes fed to Reshape and Expand) is recognised and skipped rather than flagged. Check reports
// the first node on a path whose op has no rule, as *UnsupportedOpError.
//
// # Ops with gradient rules
//
//	elementwise:   Add, Sub, Mul, Div, Pow, Sum, Where, Neg, Abs, Exp, Log, Sqrt, Reciprocal, Identity,
//	               Dropout (inference), Cast (between float types)
//	activations:   Relu, LeakyRelu, Sigmoid, Tanh, Softplus, Softsign, Selu, Elu, HardSigmoid, Erf, Clip,
//	               Softmax, LogSoftmax
//	linear:        MatMul (1-D to N-D, batch broadcasting), Gemm (transA/transB/alpha/beta),
//	               Conv (w.r.t. input and bias; pads, strides, dilations, groups, auto_pad)
//	normalisation: LayerNormalization (input, scale, bias), BatchNormalization (inference; input only)
//	reductions:    ReduceMean, ReduceSum, ReduceSumSquare, GlobalAveragePool
//	shape:         Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand, Concat, Split, Slice (unit
//	               steps), Gather (0-D or 1-D indices)
//
// Recognised as non-differentiable (no gradient flows through them): Shape, Size, Constant, ConstantOfShape,
// Range, NonZero, ArgMax, ArgMin, the comparisons and logical ops, IsNaN, IsInf, Sign, Floor, Ceil, Round,
// OneHot, EyeLike and the random *Like ops. SupportedOps and NonDifferentiableOps list them.
//
// # Conventions
//
//   - At kinks the one-sided derivative on the flat side is used: Relu'(0) = 0, LeakyRelu/Selu/Elu take the
//     negative branch at 0, Clip and HardSigmoid pass no gradient at their bounds, Abs'(0) = 0.
//   - Piecewise-constant ops (Sign, Floor, Round, ...) have zero gradient: they cut the path.
//   - Pow w.r.t. its exponent uses y*log(a), defined for a > 0. Sqrt, Log and Reciprocal follow their
//     formulas (infinite at 0).
//   - Gradients of broadcast operands are summed back to the operand's shape; gradients w.r.t. Wrt tensors
//     that no seed depends on are zeros of the tensor's shape.
//   - A Wrt tensor's gradient is the total derivative of L through the tensor's consumers, holding its own
//     inputs fixed.
//
// # Layer-wise relevance propagation
//
// With Spec.Mode set to ModeLRPEpsilon or ModeLRPZPlus, Build appends a relevance graph instead (LRP, Bach et
// al. 2015; Montavon et al. 2019): what flows backwards is relevance R, starting at each seeded tensor as
// seed_k * tensor_k, so that the Wrt outputs sum to about L itself rather than to its derivative. The graph
// walked, the seeds and the outputs are those of a gradient pass; only the rules differ (lrp.go):
//
//	linear (Conv, MatMul, Gemm, ReduceMean, ReduceSum, GlobalAveragePool):
//	               epsilon rule R_x = x * W^T (R / (z + eps*sign(z))), sign(0) = 1, z the node's output bias
//	               included, so a bias keeps its share. ModeLRPZPlus uses the z+ rule (alpha=1, beta=0) for
//	               constant weights instead: only positive contributions count (x+ with W+, x- with W-),
//	               biases are ignored, denominators get + eps. A MatMul/Gemm of two varying tensors gives each
//	               half of the epsilon share.
//	sums (Add, Sub, Sum): terms share by contribution, x_i / (y + eps*sign(y)); a constant term is a bias
//	               and keeps its share. This covers the residual add. Under z+ only positive contributions of
//	               varying terms count and a bias add passes relevance through.
//	products (Mul): by a constant, or a tensor off the path, relevance passes; between a gate (the output of
//	               Sigmoid, HardSigmoid or Softmax) and a signal, the signal takes all (squeeze-excitation's
//	               channel gating); other products of two varying tensors split it equally.
//	Div:           the numerator takes all; the denominator is a normaliser.
//	identity:      Identity, Dropout, Cast, Neg, Abs, Exp, Log, Sqrt, Reciprocal, Pow (base), Clip, Relu,
//	               LeakyRelu, Sigmoid, Tanh, Softplus, Softsign, Selu, Elu, HardSigmoid, Erf, Softmax,
//	               LogSoftmax, LayerNormalization (input): an element-wise function keeps its unit's relevance.
//	shape:         the gradient rules, which sum or permute entries and so conserve relevance.
//
// Spec.Composite (ModeLRPEpsilon only) replaces the epsilon rule of linear nodes with constant weights by
// layer type, as zennit's composites do: Conv nodes, dense nodes (MatMul, Gemm) and the first layer (reached
// from a Wrt tensor through shape ops only) can each take z+, gamma, alpha-beta, flat, w-square or box; sums,
// products and activations keep the epsilon mode's rules. LinearKind documents what each rule conserves.
//
// With every bias zero the epsilon rule conserves relevance to float32 rounding (within 2e-5 on the lc0 nets
// of ../shared/models); with real biases the sum differs from L by what the biases absorb, which on those
// nets is several times L itself (see internal/model's TestRelevanceConservation). BatchNormalization and
// ReduceSumSquare have no relevance rule. LRPOps lists the ops that have one.
//
// # How the backward graph is made fast
//
// Shapes are inferred statically by package shape (the engine internal/model uses too), with the batch (and multiples of it, e.g. after lc0's [B,64,C] -> [B*64,C]
// folds) kept symbolic, so broadcast reductions become one ReduceSum with constant axes and Reshape targets
// are constants; run-time Shape arithmetic is the fallback. The input gradient of a stride-1 Conv is a Conv
// with spatially flipped, channel-swapped weights precomputed as an initializer (ORT's Conv is far faster than
// ConvTranspose); Relu's mask reads the Relu output, so ORT can still fuse Conv+Relu forward; gradients of
// means (squeeze-excitation) stay in broadcastable form and are added, not expanded; MatMul against constant
// matrices uses a pre-transposed initializer; LayerNormalization reuses the forward node's mean and inverse
// standard deviation outputs in float32 graphs. On maia-1100 at batch 256 on ORT's CPU provider this gives a
// gradient run at about 45% of forward throughput and twice the speed of the naive construction (see BenchmarkGradient, BenchmarkForwardBaseline and
// BenchmarkGradientVariants for the alternatives it was measured against).
package autograd
