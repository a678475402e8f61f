package lens

// Lenses is the registry: every lens lczerolens knows, in the order `lenses list` shows them.
var Lenses = Registry{
	Activation,
	Gradient,
	Saliency,
	LRP,
	Occlusion,
	Patching,
	Probing,
	LogitLens,
	Ablation,
	Steering,
	Attention,
	IntegratedGradients,
	GradCAM,
	SAE,
}
