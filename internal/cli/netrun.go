package cli

import (
	"context"
	"errors"

	"github.com/lczerolens/lczerolens/internal/pipeline"
	"github.com/lczerolens/lczerolens/internal/play"
	"github.com/lczerolens/lczerolens/internal/source"
)

// startProgress starts the shared progress reporter on stderr unless quiet. report and stop are never nil,
// so the commands that stream positions need no quiet checks of their own; both do nothing when quiet.
func startProgress(f *Factory, quiet bool, what string, size int64) (report func(pipeline.Summary), stop func()) {
	if quiet {
		return func(pipeline.Summary) {}, func() {}
	}
	prog := pipeline.NewProgress(f.IO.ErrOut, f.IO.StderrTTY, what, size, 0)
	prog.Start()
	return prog.Update, prog.Stop
}

// interrupted reports whether err is the cancellation of ctx by a signal (or a test's interrupt), which
// commands turn into an interruptedError (exit 130/143) rather than a runtime failure.
func interrupted(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, context.Cause(ctx))
}

// policyEvaluator opens the network at path as a batched move chooser. A network without a policy head is
// a usage error "cmd: PATH has no policy head" followed by why (empty or ": ...").
func policyEvaluator(f *Factory, cmd, path, why string) (*play.NetEvaluator, error) {
	net, err := f.NetworkAt(path)
	if err != nil {
		return nil, err
	}
	if net.Heads.Policy == "" {
		return nil, usageErrorf("%s: %s has no policy head%s", cmd, path, why)
	}
	enc, err := resolveEncoding(f.Config(), "", net)
	if err != nil {
		return nil, err
	}
	rt, err := f.Sessions()
	if err != nil {
		return nil, err
	}
	return &play.NetEvaluator{Net: net, RT: rt, Format: enc.Format, Fill: enc.Fill, Policy: enc.Policy, Batch: f.Config().BatchSize}, nil
}

// commandContext is interrupt when a test sets one, else a context cancelled by SIGINT/SIGTERM; stop is
// never nil.
func commandContext(interrupt context.Context) (ctx context.Context, stop func()) {
	if interrupt != nil {
		return interrupt, func() {}
	}
	return signalContext()
}

// runForward streams in through eng into sink with enc's encoding, the configured batch size and the shared
// progress reporter (stopped before it returns); accept, when set, selects positions as pipeline.Options
// says.
func runForward(ctx context.Context, f *Factory, quiet bool, what string, size int64, in pipeline.Input,
	eng pipeline.Engine, sink pipeline.Sink, enc encoding, accept func(*source.Item) (any, bool, error)) (pipeline.Summary, error) {
	report, stop := startProgress(f, quiet, what, size)
	defer stop()
	return pipeline.Run(ctx, in, eng, sink, pipeline.Options{BatchSize: f.Config().BatchSize,
		Format: enc.Format, Fill: enc.Fill, Policy: enc.Policy, Accept: accept, Progress: report})
}
