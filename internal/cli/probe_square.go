package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/concepts"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/pipeline"
	"github.com/lczerolens/lczerolens/internal/probe"
	"github.com/lczerolens/lczerolens/internal/source"
)

// squareModules checks that every module has one activation vector per square: shape [batch,C,8,8]
// (convolution bodies), or [batch*64,E] (attention bodies, one token per square; listed for a batch of 1).
func squareModules(mods []model.Module) error {
	for _, m := range mods {
		s := m.Shape
		if !(len(s) == 4 && s[2] == 8 && s[3] == 8) && !(len(s) == 2 && s[0] == 64) {
			return usageErrorf("probe train: --per-square: module %s has shape %v, not [batch,C,8,8] or [batch*64,E] (a vector per square); pick modules with --pattern", m.Name, s)
		}
	}
	return nil
}

// squareLabel is a position's per-square labels (board frame), side to move and split.
type squareLabel struct {
	labels  [64]int
	anchor  int // board square a bilinear probe conditions on, -1 for none
	black   bool
	holdout bool
}

// squareSink feeds each batch's activations to one per-square fitter per module, labels mapped into the
// network's frame.
type squareSink struct {
	mods    []model.Module
	concept *concepts.SquareConcept
	fit     probe.FitOptions
	fitters []*probe.SquareFitter
}

func (s *squareSink) accept(opts *ProbeTrainOptions) func(it *source.Item) (any, bool, error) {
	return func(it *source.Item) (any, bool, error) {
		smp := concepts.Sample{Pos: it.Pos, Move: it.Next}
		if it.Puzzle != nil && it.Ply < len(it.Puzzle.Moves) {
			// The solution from this position on: Moves[0] is the opponent's move before the puzzle.
			line, err := solutionLine(it.Pos, it.Puzzle.Moves[it.Ply:])
			if err != nil {
				return nil, false, inputError(fmt.Errorf("probe train: puzzle %s: solution: %w", it.Puzzle.ID, err))
			}
			smp.Line = line
		} else if raw, ok := it.Fields["solution"]; ok {
			var moves []string
			var one string
			if err := json.Unmarshal(raw, &one); err == nil {
				moves = strings.Fields(one)
			} else if err := json.Unmarshal(raw, &moves); err != nil {
				return nil, false, inputError(fmt.Errorf("probe train: record %d: solution: want a string of UCI moves or a list of them", it.Record))
			}
			line, err := solutionLine(it.Pos, moves)
			if err != nil {
				return nil, false, inputError(fmt.Errorf("probe train: record %d: solution: %w", it.Record, err))
			}
			smp.Line = line
		}
		l, ok := s.concept.Label(smp)
		anchor := -1
		if ok && s.concept.Anchor != nil {
			anchor = int(s.concept.Anchor(smp))
		}
		return squareLabel{labels: l, anchor: anchor, black: it.Pos.SideToMove() == board.Black, holdout: probe.InHoldout(opts.Seed, opts.Holdout, it.Record)}, ok, nil
	}
}

// solutionLine parses UCI moves played in turn from p.
func solutionLine(p *board.Position, moves []string) ([]board.Move, error) {
	var line []board.Move
	for _, s := range moves {
		m, err := p.ParseMove(s)
		if err != nil {
			return nil, err
		}
		line = append(line, m)
		p = p.Play(m)
	}
	return line, nil
}

// netSquare is the activation index of board square sq: lc0's planes (and so every [C,8,8] activation) are
// in the side to move's frame, ranks mirrored for black, then the canonical transform (input formats 3-5).
func netSquare(sq int, black bool, transform int) int {
	if black {
		sq ^= 56
	}
	if transform&board.TransformFlip != 0 {
		sq ^= 7
	}
	if transform&board.TransformMirror != 0 {
		sq ^= 56
	}
	if transform&board.TransformTranspose != 0 {
		sq = (sq&7)*8 + sq>>3
	}
	return sq
}

func (s *squareSink) Consume(_ context.Context, b *pipeline.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	if s.fitters == nil {
		for k, m := range s.mods {
			shape := b.Results[k].Shape // [C,8,8], or [64,E] for attention tokens
			channels, squareMajor := shape[0], len(shape) == 2
			if squareMajor {
				channels = shape[1]
			}
			s.fitters = append(s.fitters, probe.NewSquareFitterLayout(m.Name, channels, s.concept.Classes, s.concept.Top1, squareMajor, s.fit))
		}
	}
	for i, it := range b.Items {
		l := it.Label.(squareLabel)
		transform := 0
		if i < len(b.Input.Transforms) {
			transform = b.Input.Transforms[i]
		}
		var net [64]int
		for sq, v := range l.labels {
			net[netSquare(sq, l.black, transform)] = v
		}
		anchor := -1
		if l.anchor >= 0 {
			anchor = netSquare(l.anchor, l.black, transform)
		}
		for k, fr := range s.fitters {
			if err := fr.AddAnchored(b.Results[k].Row(i), net, anchor, it.Record, l.holdout); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close has nothing to finish: the probes are fitted once the run is over.
func (s *squareSink) Close(pipeline.Summary, error) error { return nil }

// finishSquares fits the per-square probes, writes the file and prints the per-layer table.
func finishSquares(ctx context.Context, opts *ProbeTrainOptions, net *model.Network, s *squareSink, sum pipeline.Summary, progress io.Writer) error {
	f, c := opts.Factory, s.concept
	counts := s.fitters[0].SquareLabels()
	for cl, n := range counts[0] {
		if n < opts.MinClass {
			return inputError(fmt.Errorf("probe train: %s on %s: only %d training squares have label %d, fewer than --min-class %d (use more positions)", c.Name, opts.Input, n, cl, opts.MinClass))
		}
	}
	fmt.Fprintf(progress, "probe train: fitting %d per-square probes on %d positions\n", len(s.fitters), sum.Positions)
	probes := make([]*probe.SquareProbe, len(s.fitters))
	errs := make([]error, len(s.fitters))
	var wg sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	done, began := 0, time.Now()
	for k, fr := range s.fitters {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			p, err := fr.Fit(ctx)
			if err != nil {
				errs[k] = err
				return
			}
			probes[k] = p
			mu.Lock()
			done++
			fmt.Fprintf(progress, "probe train: fitted %s (%d of %d, l2 %.3g), %.0f s\n", p.Module, done, len(s.fitters), p.L2, time.Since(began).Seconds())
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if ctx.Err() != nil {
			return &interruptedError{cmd: "probe train", positions: sum.Positions, hint: "while fitting; no probe written", cause: context.Cause(ctx)}
		}
		return err
	}
	sf := &probe.SquareFile{
		Format: probe.SquareFormat, FormatVersion: 1, ToolVersion: f.Version,
		Model:   probe.ModelID{Path: net.Path, SHA256: net.SHA256, Graph: net.GraphSHA256},
		Concept: c.Name, Classes: c.Classes, Top1: c.Top1, Input: opts.Input, Holdout: opts.Holdout, Seed: opts.Seed,
		L2: s.fit.L2, L2Grid: s.fit.Grid, Skipped: sum.Skipped, Labels: counts, Probes: probes,
		Warnings: probe.SquareGapWarnings(probes, opts.MaxGap),
	}
	if err := writeOutput("probe train", f.IO.Out, opts.Output, opts.Force, func(w io.Writer) error { return probe.WriteSquare(w, sf) }); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "probe train: %s (per square, %d classes) on %d positions (%d skipped, %d bad records) -> %s\n", c.Name, c.Classes, sum.Positions, sum.Skipped, sum.Bad, opts.Output)
	return printSquareProbes(f.IO.Out, sf)
}

func printSquareProbes(w io.Writer, sf *probe.SquareFile) error {
	fmt.Fprintf(w, "labels (squares by class): train %v; held out %v\n", sf.Labels[0], sf.Labels[1])
	base := "BASELINE: each square's most frequent training label"
	if sf.Top1 {
		base = "top-1 over the 64 squares; BASELINE: always the square most often the target in training"
	}
	fmt.Fprintln(w, base)
	if len(sf.Probes) > 0 && sf.Probes[0].Form == probe.FormBilinear {
		fmt.Fprintf(w, "BILINEAR probes of rank %d, context %s: logit of square i = x_i' A'B [z; 1]\n", sf.Probes[0].Rank, sf.Probes[0].Context)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tL2\tTRAIN\tHELD OUT\tMETRIC\tHELD-OUT SCORE\tBASELINE\tAUC\tTRAIN SCORE\tVS BASELINE")
	for _, p := range sf.Probes {
		fmt.Fprintf(tw, "%s\t%.3g\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Module, p.L2, p.Train, p.Test, p.Metric, scoreCell(p.Score), scoreCell(p.Baseline), scoreCell(p.AUC), scoreCell(p.Train1), p.Verdict)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("probe train: write: %w", err)
	}
	for _, g := range sf.Warnings {
		fmt.Fprintf(w, "warning: %s\n", g)
	}
	return nil
}
