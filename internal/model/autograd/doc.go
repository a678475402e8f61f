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
// # How the backward graph is made fast
//
// Shapes are inferred statically, with the batch (and multiples of it, e.g. after lc0's [B,64,C] -> [B*64,C]
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
