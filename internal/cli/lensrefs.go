package cli

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/pipeline"
	"github.com/lczerolens/lczerolens/internal/source"
)

// lensReferences computes what a lens needs from a reference set of positions before it can run (the mean
// activations of ablation's --mean-from), streaming the set through the network once.
func (s *netSession) lensReferences(specs []lens.Spec) error {
	for _, sp := range specs {
		if sp.Lens != lens.Ablation || sp.Values.GetString("mean-from") == "" {
			continue
		}
		mods, err := lens.AblationModules(s.net, sp.Values)
		if err != nil {
			return nil // the engine reports it, as for any lens
		}
		means, _, err := s.meanActivations(sp.Values.GetString("mean-from"), mods)
		if err != nil {
			return err
		}
		lens.WithAblationMeans(sp.Values, means)
	}
	return nil
}

// meanActivations streams every position of the file at path through the network and returns each module's
// mean activation row (one position's shape) by tensor name, and the number of positions.
func (s *netSession) meanActivations(path string, mods []model.Module) (map[string][]float32, int, error) {
	typ, err := source.DetectType(path, "")
	if err != nil {
		return nil, 0, inputError(err)
	}
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = regexp.QuoteMeta(m.Name)
	}
	v, err := lens.Activation.Resolve(map[string]string{"pattern": "^(" + strings.Join(names, "|") + ")$"})
	if err != nil {
		return nil, 0, err
	}
	eng, err := s.engine1([]lens.Spec{{Lens: lens.Activation, Values: v}})
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, pathError(fmt.Errorf("reference positions: %w", err))
	}
	defer f.Close()
	plies, _ := source.ParsePlies("all")
	sink := &pipeline.MeanSink{}
	ctx := s.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	sum, err := pipeline.Run(ctx, pipeline.Input{R: f, Name: path, Type: typ, Select: source.Options{Plies: plies}}, eng, sink,
		pipeline.Options{BatchSize: 256, Format: s.enc.Format, Fill: s.enc.Fill, Policy: s.enc.Policy})
	if err != nil {
		return nil, 0, fmt.Errorf("reference positions %s: %w", path, err)
	}
	if sink.Count() == 0 {
		return nil, 0, inputError(fmt.Errorf("reference positions %s: no usable position (%d bad records)", path, sum.Bad))
	}
	out := map[string][]float32{}
	for _, m := range mods {
		out[m.Tensor] = sink.Mean(strings.TrimPrefix(m.Tensor, "/") + "_output")
	}
	return out, sink.Count(), nil
}
