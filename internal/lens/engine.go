package lens

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// Batch is a batch of positions with their encoded planes ([len(Positions),112,8,8], side-to-move frame).
type Batch struct {
	Positions []*board.Position
	Planes    []float32
	// Format and Fill are how the planes were encoded (input format, 0 meaning classical, and history fill),
	// for lenses that encode positions of their own (occlusion).
	Format board.InputFormat
	Fill   board.HistoryFill
	// Transforms holds each position's canonical transform (lc0 input formats 3-5: the planes and policy
	// indices are flipped/mirrored/transposed); nil means no transform anywhere.
	Transforms []int
	// Policy is how the policy of a transposed position is indexed (the zero value: like its planes).
	Policy board.PolicyTranspose
	// CorruptPositions and CorruptPlanes pair each position with a corrupted counterpart, encoded the same
	// way, for lenses that compare two runs (patching); both are nil when the input gives none.
	CorruptPositions []*board.Position
	CorruptPlanes    []float32
}

// Encode encodes g as the batch's planes were encoded and returns the canonical transform applied, as
// Transform gives it.
func (b *Batch) Encode(g *board.Game, dst []float32) int {
	f := b.Format
	if !f.Valid() {
		f = board.InputClassical
	}
	return b.Policy.Apply(g.EncodeFormat(f, b.Fill, dst))
}

// Len is the number of positions.
func (b *Batch) Len() int { return len(b.Positions) }

// Transform is position i's canonical transform (0 for classical formats), with board.TransformLc0V032 set
// when Policy asks for lc0 v0.32's indexing: the board package's policy functions take it as it is, and
// board.UntransformSquare ignores the flag.
func (b *Batch) Transform(i int) int {
	if b.Transforms == nil {
		return 0
	}
	return b.Policy.Apply(b.Transforms[i])
}

// Outputs is what one model pass returned for a batch.
type Outputs struct {
	Heads   *model.HeadOutputs
	Tensors map[string]model.Tensor // hooked tensors by tensor name
	Grads   map[string]model.Tensor // gradients by the tensor they are taken w.r.t.
	// Relevance holds LRP relevances by the tensor they are taken at.
	Relevance map[string]model.Tensor
	// Runner lets a lens run the network again (edited positions, patched graphs) after the shared pass.
	Runner *Runner
}

// Runner runs the engine's network for lenses that need more than the shared pass.
type Runner struct {
	Net *model.Network
	rt  *model.SessionCache
	// ctx, when done, refuses further runs: a lens that runs the network many times per batch (the
	// adaptive path of integrated gradients, occlusion) then stops within one run of an interrupt.
	ctx context.Context
}

// stopped is the context's cause once it is done.
func (r *Runner) stopped() error {
	if r.ctx != nil && r.ctx.Err() != nil {
		return context.Cause(r.ctx)
	}
	return nil
}

// Forward runs the heads on n positions' planes.
func (r *Runner) Forward(planes []float32, n int) (*model.HeadOutputs, error) {
	if err := r.stopped(); err != nil {
		return nil, err
	}
	return r.Net.Forward(r.rt, planes, n)
}

// Run runs a plan (a rewritten graph of the network) with the given inputs.
func (r *Runner) Run(p *model.Plan, inputs map[string]model.Tensor, outputs []string) (map[string]model.Tensor, error) {
	if err := r.stopped(); err != nil {
		return nil, err
	}
	return r.rt.Run(p, inputs, outputs)
}

// Spec is one lens with its resolved options.
type Spec struct {
	Lens   *Lens
	Values Values
}

// Engine runs one or several lenses over batches in one model pass per batch: analysing one position and
// analysing a stream are the same code path.
type Engine struct {
	net        *model.Network
	rt         *model.SessionCache
	specs      []Spec
	preps      []*Prep
	plan       *model.Plan
	fetch      []string
	hooks      []string
	passes     [2]*pass // gradients (passGradient) and LRP relevances (passRelevance) of the shared run
	savePlanes bool
	keep       map[string]bool // nil: every result
	keepList   []string
}

// pass is one backward pass built into the shared graph: the lenses' merged request and the graph's names.
type pass struct {
	lens   string // the first lens that asked for it
	target Target
	rule   model.Rule
	wrt    []string
	io     *model.GradientIO
}

// Indexes of Engine.passes.
const (
	passGradient = iota
	passRelevance
)

// merge adds one lens's request to the pass at i; lenses in one run must agree on target and rule.
func (e *Engine) merge(i int, lens string, t Target, rule model.Rule, wrt []string) error {
	p := e.passes[i]
	if p == nil {
		e.passes[i] = &pass{lens: lens, target: t, rule: rule, wrt: appendUnique(nil, wrt...)}
		return nil
	}
	if p.target != t || p.rule != rule {
		if i == passGradient {
			return &NetworkError{Lens: lens, Err: fmt.Errorf("target %s differs from another lens's target %s: lenses in one pass share one target", t, p.target)}
		}
		return &NetworkError{Lens: lens, Err: fmt.Errorf("relevance of %s under %s differs from another lens's (%s under %s): lenses in one pass share one", t, rule, p.target, p.rule)}
	}
	p.wrt = appendUnique(p.wrt, wrt...)
	return nil
}

// EngineOptions are the engine-wide options (not tied to a lens).
type EngineOptions struct {
	// SavePlanes adds the encoded input planes as result "planes".
	SavePlanes bool
	// Keep, when not empty, names the only results Run returns (final keys, prefixed as Keys gives them):
	// a lens computes what it computes, but a large result nobody reads need not be written.
	Keep []string
}

// KeepError is a --keep key that no lens of the run returns; Valid lists the keys that can be kept.
type KeepError struct {
	Unknown []string
	Valid   []string
}

func (e *KeepError) Error() string {
	return fmt.Sprintf("lens: --keep %s: no such result (valid keys: %s)", strings.Join(e.Unknown, ","), strings.Join(e.Valid, ", "))
}

// NetworkError is a lens that cannot run as asked on a network: the network lacks what the lens needs (a
// head, an op it can differentiate, a module its pattern names, the network a probe was trained on) or the
// lenses of one run ask for different passes. It is the user's choice of lens, options or network that is
// wrong, unlike a failure to build or run the plan.
type NetworkError struct {
	Lens string
	Err  error
}

func (e *NetworkError) Error() string { return "lens " + e.Lens + ": " + e.Err.Error() }
func (e *NetworkError) Unwrap() error { return e.Err }

// NewEngine checks every lens against the network, prepares them and builds one plan for all of them.
func NewEngine(rt *model.SessionCache, n *model.Network, specs []Spec, opts EngineOptions) (*Engine, error) {
	if len(specs) == 0 {
		return nil, errors.New("lens: no lens given")
	}
	e := &Engine{net: n, rt: rt, specs: specs, savePlanes: opts.SavePlanes}
	if len(opts.Keep) > 0 {
		e.keep, e.keepList = map[string]bool{}, opts.Keep
		for _, k := range opts.Keep {
			e.keep[k] = true
		}
	}
	hookSet := map[string]bool{}
	for _, s := range specs {
		if s.Lens.Compatible != nil {
			if err := s.Lens.Compatible(n, s.Values); err != nil {
				return nil, &NetworkError{Lens: s.Lens.Name, Err: fmt.Errorf("incompatible with %s: %w", n.Path, err)}
			}
		}
		p, err := s.Lens.Prepare(n, s.Values)
		if err != nil {
			return nil, &NetworkError{Lens: s.Lens.Name, Err: err}
		}
		e.preps = append(e.preps, p)
		for _, h := range p.Hooks {
			if !hookSet[h] {
				hookSet[h] = true
				e.hooks = append(e.hooks, h)
			}
		}
		if g := p.Gradient; g != nil {
			if err := e.merge(passGradient, s.Lens.Name, g.Target, model.Rule{}, g.Wrt); err != nil {
				return nil, err
			}
		}
		if r := p.Relevance; r != nil {
			if err := e.merge(passRelevance, s.Lens.Name, r.Target, r.Rule, r.Wrt); err != nil {
				return nil, err
			}
		}
	}
	// Gradients and relevances are backward passes of one graph, so they share the forward run.
	var backward []model.Backward
	var built []*pass
	for _, p := range e.passes {
		if p == nil {
			continue
		}
		if err := p.target.Check(n); err != nil {
			return nil, &NetworkError{Lens: p.lens, Err: err}
		}
		backward = append(backward, model.Backward{Seeds: p.target.seedTensors(n), Wrt: p.wrt, Rule: p.rule})
		built = append(built, p)
	}
	var err error
	if len(backward) > 0 {
		var ios []*model.GradientIO
		if e.plan, ios, err = model.BackwardPlan(n, e.hooks, backward); err != nil {
			return nil, err
		}
		for i, p := range built {
			p.io = ios[i]
		}
	} else if e.plan, err = n.HookPlan(e.hooks); err != nil {
		return nil, err
	}
	if keys := e.Keys(); keys != nil {
		if err := e.checkKeep(keys); err != nil {
			return nil, err
		}
	}
	e.fetch = appendUnique(nil, headTensors(n)...)
	e.fetch = appendUnique(e.fetch, e.hooks...)
	for _, p := range built {
		for _, w := range p.wrt {
			e.fetch = appendUnique(e.fetch, p.io.Grads[w])
		}
	}
	return e, nil
}

// Keys returns the result keys Run returns (before --keep), in order: "planes" when saved, then each
// lens's keys, prefixed by the lens's name where two lenses share a key. It is nil when a lens does not
// declare its keys before running.
func (e *Engine) Keys() []string {
	count := map[string]int{}
	for _, p := range e.preps {
		if p.Keys == nil {
			return nil
		}
		for _, k := range p.Keys {
			count[k]++
		}
	}
	var out []string
	if e.savePlanes {
		out = append(out, "planes")
	}
	for i, p := range e.preps {
		for _, k := range p.Keys {
			if count[k] > 1 {
				k = e.specs[i].Lens.Name + "." + k
			}
			out = append(out, k)
		}
	}
	return out
}

// checkKeep refuses kept keys that are not among keys.
func (e *Engine) checkKeep(keys []string) error {
	valid := map[string]bool{}
	for _, k := range keys {
		valid[k] = true
	}
	var unknown []string
	for _, k := range e.keepList {
		if !valid[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		return &KeepError{Unknown: unknown, Valid: keys}
	}
	return nil
}

// Lenses returns the engine's lens specs.
func (e *Engine) Lenses() []Spec { return e.specs }

// NeedsCorrupt reports whether a lens reads corrupted positions, which every batch must then carry.
func (e *Engine) NeedsCorrupt() bool {
	for _, p := range e.preps {
		if p.Corrupt {
			return true
		}
	}
	return false
}

// Check reports why the lenses cannot analyse pos (a target undefined there: an illegal policy move, no
// legal move for policy:best), or nil. Run fails a whole batch holding such a position; a caller streaming
// many positions checks each first and sets the ones that fail aside as bad records.
func (e *Engine) Check(pos *board.Position) error {
	for _, p := range e.passes {
		if p != nil {
			if err := p.target.Defined(pos); err != nil {
				return err
			}
		}
	}
	for _, p := range e.preps {
		if p.Check != nil {
			if err := p.Check(pos); err != nil {
				return err
			}
		}
	}
	return nil
}

// MaxBatch is the smallest Prep.MaxBatch of the engine's lenses (0: none asks for a limit).
func (e *Engine) MaxBatch() int {
	m := 0
	for _, p := range e.preps {
		if p.MaxBatch > 0 && (m == 0 || p.MaxBatch < m) {
			m = p.MaxBatch
		}
	}
	return m
}

// Meta returns the lenses' metadata keyed by lens name (nil when no lens has any).
func (e *Engine) Meta() map[string]any {
	var out map[string]any
	for i, p := range e.preps {
		if len(p.Meta) > 0 {
			if out == nil {
				out = map[string]any{}
			}
			out[e.specs[i].Lens.Name] = p.Meta
		}
	}
	return out
}

func headTensors(n *model.Network) []string {
	var out []string
	for _, t := range []string{n.Heads.Policy, n.Heads.WDL, n.Heads.Value, n.Heads.MLH} {
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

func appendUnique(dst []string, xs ...string) []string {
	for _, x := range xs {
		found := false
		for _, d := range dst {
			if d == x {
				found = true
				break
			}
		}
		if !found {
			dst = append(dst, x)
		}
	}
	return dst
}

// Run analyses one batch: one model pass (two for the policy:best target, whose seed needs the forward
// policy first), then every lens's results, keys prefixed by lens name where two lenses share a key.
func (e *Engine) Run(b *Batch) (*Outputs, []BatchResult, error) {
	return e.RunContext(context.Background(), b)
}

// RunContext is Run that stops with ctx's cause, before the next run of the network, once ctx is done.
func (e *Engine) RunContext(ctx context.Context, b *Batch) (*Outputs, []BatchResult, error) {
	if ctx.Err() != nil {
		return nil, nil, context.Cause(ctx)
	}
	bn := b.Len()
	if bn == 0 {
		return nil, nil, errors.New("lens: empty batch")
	}
	if e.NeedsCorrupt() && (len(b.CorruptPositions) != bn || len(b.CorruptPlanes) != len(b.Planes)) {
		return nil, nil, errors.New("lens: the batch has no corrupted position for every position (patching needs --corrupt-fen/--corrupt-moves, or corrupt_fen/corrupt_moves in JSONL records)")
	}
	inputs := map[string]model.Tensor{e.net.Input: {Shape: []int64{int64(bn), board.NumPlanes, 8, 8}, Data: b.Planes}}
	var fwd *model.HeadOutputs
	for _, p := range e.passes {
		if p == nil {
			continue
		}
		if p.target.Kind == TargetPolicyBest && fwd == nil {
			var err error
			if fwd, err = e.net.Forward(e.rt, b.Planes, bn); err != nil {
				return nil, nil, err
			}
		}
		seeds, err := p.target.seeds(e.net, b, fwd)
		if err != nil {
			return nil, nil, err
		}
		for tensor, data := range seeds {
			inputs[p.io.SeedInputs[tensor]] = data
		}
	}
	raw, err := e.rt.Run(e.plan, inputs, e.fetch)
	if err != nil {
		return nil, nil, err
	}
	heads, err := e.net.DecodeHeads(raw, bn)
	if err != nil {
		return nil, nil, err
	}
	out := &Outputs{Heads: heads, Tensors: map[string]model.Tensor{}, Grads: map[string]model.Tensor{}, Relevance: map[string]model.Tensor{}, Runner: &Runner{Net: e.net, rt: e.rt, ctx: ctx}}
	for _, h := range e.hooks {
		out.Tensors[h] = raw[h]
	}
	for i, dst := range [2]map[string]model.Tensor{passGradient: out.Grads, passRelevance: out.Relevance} {
		if p := e.passes[i]; p != nil {
			for _, w := range p.wrt {
				dst[w] = raw[p.io.Grads[w]]
			}
		}
	}

	perLens := make([][]BatchResult, len(e.preps))
	count := map[string]int{}
	for i, p := range e.preps {
		rs, err := p.Produce(b, out)
		if err != nil {
			return nil, nil, fmt.Errorf("lens %s: %w", e.specs[i].Lens.Name, err)
		}
		perLens[i] = rs
		for _, r := range rs {
			count[r.Key]++
		}
	}
	var results []BatchResult
	if e.savePlanes {
		results = append(results, BatchResult{Key: "planes", Shape: []int{board.NumPlanes, 8, 8}, Data: b.Planes})
	}
	for i, rs := range perLens {
		for _, r := range rs {
			if count[r.Key] > 1 {
				r.Key = e.specs[i].Lens.Name + "." + r.Key
			}
			results = append(results, r)
		}
	}
	if e.keep == nil {
		return out, results, nil
	}
	keys := make([]string, len(results))
	for i, r := range results {
		keys[i] = r.Key
	}
	if err := e.checkKeep(keys); err != nil { // a lens that did not declare its keys
		return nil, nil, err
	}
	kept := results[:0]
	for _, r := range results {
		if e.keep[r.Key] {
			kept = append(kept, r)
		}
	}
	return out, kept, nil
}

// moduleKey is a module's name as used in result keys (the tensor name without its leading '/').
func moduleKey(tensor string) string { return strings.TrimPrefix(tensor, "/") }
