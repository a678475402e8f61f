package sae

import (
	"errors"
	"fmt"
)

// ErrSteps ends a stream once StreamOptions.Steps steps are done; it is the normal end of a --steps run.
var ErrSteps = errors.New("sae: step limit reached")

// StreamOptions tune a Stream.
type StreamOptions struct {
	Batch  int // vectors per step
	Buffer int // shuffle buffer capacity, in vectors
	Steps  int // stop after this many steps (0: when the input ends)
	// HeldMax bounds the held-out vectors kept (from the first epoch) for the metrics.
	HeldMax int
	// Checkpoint, when set, is called every CheckpointEvery steps with the whole state, between two vectors.
	CheckpointEvery int
	Checkpoint      func(*Checkpoint) error
	// Log, when set, is called every LogEvery steps with the step's stats and the held-out metrics.
	LogEvery int
	Log      func(step int, st StepStats, held Metrics)
}

// Stream trains on a stream of vectors: training vectors go through the shuffle buffer into batches, held-out
// ones are kept (up to HeldMax) for the metrics. A stream resumed from a checkpoint skips, in the replayed
// input, the vectors the checkpoint already holds, and so continues exactly where it was.
type Stream struct {
	T    *Trainer
	opts StreamOptions
	sh   *Shuffler
	// Epoch is the current pass over the input; EpochTrain and EpochHeld count its vectors so far.
	Epoch, EpochTrain, EpochHeld int64
	skipTrain, skipHeld          int64
	batch                        []float32
	nb                           int
	held                         []float32
	sum                          []float64
	sumN                         int64
	err                          error
	ckpt, finishing              bool
}

// NewStream starts a stream training t; seed drives the shuffle buffer.
func NewStream(t *Trainer, opts StreamOptions, seed uint64) *Stream {
	c := t.SAE.C
	return &Stream{T: t, opts: opts, sh: NewShuffler(c, opts.Buffer, seed), batch: make([]float32, 0, opts.Batch*c), sum: make([]float64, c)}
}

// ResumeStream continues the stream saved in ck.
func ResumeStream(ck *Checkpoint, opts StreamOptions, seed uint64) (*Stream, error) {
	s := NewStream(ck.Trainer, opts, seed)
	c := s.T.SAE.C
	if ck.ShuffleLen*c != len(ck.Shuffle) || len(ck.Held)%c != 0 || len(ck.Sum) != c {
		return nil, errors.New("sae: checkpoint: buffer sizes do not match the SAE")
	}
	s.sh.Data, s.sh.Len = ck.Shuffle, ck.ShuffleLen
	if err := s.sh.SetState(ck.ShuffleRNG); err != nil {
		return nil, fmt.Errorf("sae: checkpoint: %w", err)
	}
	s.held, s.sum, s.sumN = ck.Held, ck.Sum, ck.SumN
	s.Epoch = ck.Progress["epoch"]
	s.skipTrain, s.skipHeld = ck.Progress["epoch_train"], ck.Progress["epoch_held"]
	return s, nil
}

// Add feeds one vector; held says it belongs to the held-out set. It returns ErrSteps once the step limit is
// reached, or a checkpoint's error.
func (s *Stream) Add(v []float32, held bool) error {
	if s.err != nil {
		return s.err
	}
	if held {
		s.EpochHeld++
		if s.EpochHeld > s.skipHeld && s.Epoch == 0 && len(s.held) < s.opts.HeldMax*len(v) {
			s.held = append(s.held, v...)
		}
		return nil
	}
	s.EpochTrain++
	if s.EpochTrain <= s.skipTrain {
		return nil
	}
	for i, x := range v {
		s.sum[i] += float64(x)
	}
	s.sumN++
	s.sh.Add(v, s.push)
	// A checkpoint is taken here, once the buffer holds v, never inside push: the state is then whole.
	if s.ckpt && s.err == nil {
		s.ckpt = false
		s.err = s.opts.Checkpoint(s.checkpoint())
	}
	return s.err
}

// Rewind sets the pass's counts to those of an earlier point of the input (a resumed run that skips the
// records its checkpoint holds whole starts counting from there); the vectors up to the checkpoint are still
// skipped.
func (s *Stream) Rewind(train, held int64) { s.EpochTrain, s.EpochHeld = train, held }

// EndEpoch marks the end of one pass over the input.
func (s *Stream) EndEpoch() {
	s.Epoch++
	s.EpochTrain, s.EpochHeld, s.skipTrain, s.skipHeld = 0, 0, 0, 0
}

// Finish trains on what the shuffle buffer and the last partial batch hold.
func (s *Stream) Finish() error {
	if s.err != nil {
		return s.err
	}
	s.finishing = true
	if !s.T.Ready && s.sh.Len > 0 {
		s.T.Init(s.sh.Data, s.sh.Len)
	}
	s.sh.Drain(s.push)
	if s.err == nil && s.nb > 0 {
		s.step()
	}
	if errors.Is(s.err, ErrSteps) {
		return nil
	}
	return s.err
}

// Held returns the held-out vectors kept.
func (s *Stream) Held() ([]float32, int) { return s.held, len(s.held) / s.T.SAE.C }

// Mean returns the mean training vector.
func (s *Stream) Mean() []float32 {
	out := make([]float32, len(s.sum))
	for i, v := range s.sum {
		out[i] = float32(v / float64(max(s.sumN, 1)))
	}
	return out
}

func (s *Stream) push(v []float32) {
	if s.err != nil {
		return
	}
	if !s.T.Ready {
		s.T.Init(s.sh.Data, s.sh.Len)
	}
	s.batch = append(s.batch, v...)
	s.nb++
	if s.nb == s.opts.Batch {
		s.step()
	}
}

func (s *Stream) step() {
	st := s.T.TrainStep(s.batch, s.nb)
	s.batch, s.nb = s.batch[:0], 0
	step := s.T.Step
	if s.opts.Log != nil && s.opts.LogEvery > 0 && step%s.opts.LogEvery == 0 {
		x, n := s.Held()
		s.opts.Log(step, st, s.T.SAE.Evaluate(x, n))
	}
	if s.opts.Steps > 0 && step >= s.opts.Steps {
		s.err = ErrSteps
		return
	}
	if !s.finishing && s.opts.Checkpoint != nil && s.opts.CheckpointEvery > 0 && step%s.opts.CheckpointEvery == 0 {
		s.ckpt = true
	}
}

func (s *Stream) checkpoint() *Checkpoint {
	rng, _ := s.sh.State()
	return &Checkpoint{Trainer: s.T, Shuffle: s.sh.Data, ShuffleLen: s.sh.Len, ShuffleRNG: rng, Held: s.held, Sum: s.sum, SumN: s.sumN,
		Progress: map[string]int64{"epoch": s.Epoch, "epoch_train": s.EpochTrain, "epoch_held": s.EpochHeld}}
}
