package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/source"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

var (
	rtOnce sync.Once
	rt     *model.SessionCache
	rtErr  error
)

// demoEngine prepares the activation lens on the embedded demo network (no ../shared needed); it skips
// when ONNX Runtime is absent.
func demoEngine(t testing.TB) *lens.Engine {
	t.Helper()
	lib := testutil.ORTLib(t)
	rtOnce.Do(func() {
		if _, rtErr = model.InitRuntime([]string{lib}); rtErr == nil {
			rt, rtErr = model.NewSessionCache(model.SessionOptions{Device: "cpu", Threads: 1})
		}
	})
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	v, err := lens.Activation.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := lens.NewEngine(rt, model.Demo(), []lens.Spec{{Lens: lens.Activation, Values: v}}, lens.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// countingEngine counts the engine runs and can fail the run numbered failAt (0-based; -1 never).
type countingEngine struct {
	eng    Engine
	runs   int
	failAt int
}

var errModel = errors.New("model: run failed (injected)")

func (c *countingEngine) Run(b *lens.Batch) (*lens.Outputs, []lens.BatchResult, error) {
	c.runs++
	if c.runs-1 == c.failAt {
		return nil, nil, errModel
	}
	return c.eng.Run(b)
}

// testSink records what it consumes; it fails the Consume numbered failAt (0-based; -1 never), and can
// call onConsume after each successful one.
type testSink struct {
	failAt    int
	onConsume func(seq int)
	consumed  []*Batch
	closes    int
	closeErr  error
	sum       Summary
}

var errDiskFull = errors.New("no space left on device (injected)")

func (s *testSink) Consume(_ context.Context, b *Batch) error {
	if len(s.consumed) == s.failAt {
		return fmt.Errorf("store: write x.npy: %w", errDiskFull)
	}
	s.consumed = append(s.consumed, b)
	if s.onConsume != nil {
		s.onConsume(b.Seq)
	}
	return nil
}

// Close repeats the run's error, as a store writer's Abort repeats its sticky write error.
func (s *testSink) Close(sum Summary, err error) error {
	s.closes++
	s.closeErr, s.sum = err, sum
	if err != nil {
		return fmt.Errorf("%w (output left at its last commit)", err)
	}
	return nil
}

// lines is a JSONL input of n positions: record i is the position after the first i%8 moves of a game.
func lines(n int) string {
	moves := []string{"e2e4", "e7e5", "g1f3", "b8c6", "f1b5", "a7a6", "b5a4", "g8f6"}
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"fen\":\"startpos\",\"moves\":%q}\n", strings.Join(moves[:i%len(moves)], " "))
	}
	return b.String()
}

func jsonlInput(n int) Input {
	return Input{R: strings.NewReader(lines(n)), Name: "test.jsonl", Type: source.JSONL}
}

// TestSinkFailureStopsWithinOneBatch: a sink that fails after k batches stops the run with the engine run on
// at most one batch beyond the failed one, and the error is reported once.
func TestSinkFailureStopsWithinOneBatch(t *testing.T) {
	eng := demoEngine(t)
	const batch, positions = 4, 200 // 50 batches
	for _, k := range []int{0, 1, 5} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			ce := &countingEngine{eng: eng, failAt: -1}
			sink := &testSink{failAt: k}
			sum, err := Run(context.Background(), jsonlInput(positions), ce, sink, Options{BatchSize: batch})
			if !errors.Is(err, errDiskFull) {
				t.Fatalf("Run error %v, want the sink's", err)
			}
			if n := strings.Count(err.Error(), errDiskFull.Error()); n != 1 {
				t.Errorf("the sink's error appears %d times in %q, want once", n, err)
			}
			// Batches 0..k were run (k consumed, k failing); one more may have been running meanwhile.
			t.Logf("sink failed at batch %d: %d engine runs of %d batches", k, ce.runs, positions/batch)
			if ce.runs > k+2 {
				t.Errorf("%d engine runs after the sink failed at batch %d: want at most %d", ce.runs, k, k+2)
			}
			if len(sink.consumed) != k || sum.Batches != k || sum.Positions != k*batch {
				t.Errorf("consumed %d batches, summary %+v: want %d", len(sink.consumed), sum, k)
			}
			if sink.closes != 1 || !errors.Is(sink.closeErr, errDiskFull) {
				t.Errorf("Close called %d times with %v, want once with the sink's error", sink.closes, sink.closeErr)
			}
		})
	}
}

// TestModelFailureStops: an engine failure stops the run at once: no further run, no further batch
// consumed, the error reported once.
func TestModelFailureStops(t *testing.T) {
	eng := demoEngine(t)
	const k = 3
	ce := &countingEngine{eng: eng, failAt: k}
	sink := &testSink{failAt: -1}
	_, err := Run(context.Background(), jsonlInput(200), ce, sink, Options{BatchSize: 4})
	if !errors.Is(err, errModel) || strings.Count(err.Error(), errModel.Error()) != 1 {
		t.Fatalf("Run error %q, want the model's, once", err)
	}
	// The sink may or may not have taken the last batch analysed before the failure: the stop races it.
	if ce.runs != k+1 || len(sink.consumed) > k || sink.closes != 1 {
		t.Errorf("%d runs, %d batches consumed, %d closes: want %d, at most %d, 1", ce.runs, len(sink.consumed), sink.closes, k+1, k)
	}
}

// TestCancelStopsWithinOneBatch: cancelling the caller's context (an interrupt) stops the run within one
// batch, and the error carries the cancellation's cause.
func TestCancelStopsWithinOneBatch(t *testing.T) {
	eng := demoEngine(t)
	errSignal := errors.New("interrupted (test)")
	const j = 2
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ce := &countingEngine{eng: eng, failAt: -1}
	sink := &testSink{failAt: -1, onConsume: func(seq int) {
		if seq == j {
			cancel(errSignal)
		}
	}}
	sum, err := Run(ctx, jsonlInput(200), ce, sink, Options{BatchSize: 4})
	if !errors.Is(err, errSignal) || strings.Count(err.Error(), errSignal.Error()) != 1 {
		t.Fatalf("Run error %v, want the cancellation's cause, once", err)
	}
	t.Logf("cancelled after batch %d: %d engine runs, %d batches consumed", j, ce.runs, len(sink.consumed))
	if ce.runs > j+2 || len(sink.consumed) != j+1 || sum.Positions != (j+1)*4 {
		t.Errorf("%d runs, %d consumed (summary %+v) after a cancel at batch %d: want at most %d runs, %d consumed", ce.runs, len(sink.consumed), sum, j, j+2, j+1)
	}
	if sink.closes != 1 || !errors.Is(sink.closeErr, errSignal) {
		t.Errorf("Close called %d times with %v", sink.closes, sink.closeErr)
	}
}

// TestCompleteRun checks a whole run against the engine run on each position alone, encoded independently:
// rows are in input order, every position is there once, and the counts add up.
func TestCompleteRun(t *testing.T) {
	eng := demoEngine(t)
	const n, size = 23, 5 // a last, partial batch
	text := lines(n) + "not json\n"
	ce := &countingEngine{eng: eng, failAt: -1}
	sink := &testSink{failAt: -1}
	in := Input{R: strings.NewReader(text), Name: "t.jsonl", Type: source.JSONL}
	sum, err := Run(context.Background(), in, ce, sink, Options{BatchSize: size})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Positions != n || sum.Bad != 1 || sum.Records != n+1 || sum.Bytes != int64(len(text)) || sink.closes != 1 || sink.closeErr != nil {
		t.Fatalf("summary %+v, %d closes with %v", sum, sink.closes, sink.closeErr)
	}
	if want := (n + size - 1) / size; ce.runs != want {
		t.Errorf("%d engine runs, want %d", ce.runs, want)
	}
	moves := []string{"e2e4", "e7e5", "g1f3", "b8c6", "f1b5", "a7a6", "b5a4", "g8f6"}
	row := 0
	for _, b := range sink.consumed {
		for i, it := range b.Items {
			if it.Record != row {
				t.Fatalf("row %d is record %d", row, it.Record)
			}
			g, err := board.ParseGame("startpos", strings.Join(moves[:row%8], " "))
			if err != nil {
				t.Fatal(err)
			}
			one := lens.Batch{Positions: []*board.Position{g.Current()}, Planes: make([]float32, board.NumPlanes*64)}
			g.Encode(board.FillFENOnly, one.Planes)
			_, want, err := eng.Run(&one)
			if err != nil {
				t.Fatal(err)
			}
			for k, r := range b.Results {
				if r.Key != want[k].Key || !slices.Equal(r.Row(i), want[k].Row(0)) {
					t.Fatalf("row %d, %s differs from the position run alone", row, r.Key)
				}
			}
			row++
		}
	}
	if row != n {
		t.Fatalf("%d rows, want %d", row, n)
	}
	last := sink.consumed[len(sink.consumed)-1]
	if len(last.Bad) != 1 || last.Bad[0].Record != n || last.Records != n+1 {
		t.Errorf("last batch: bad %+v, records %d", last.Bad, last.Records)
	}
}

// TestStrictLimitAccept: Strict ends the input after the batch holding the bad record (which is still
// consumed); Limit ends it after that many accepted positions; Accept skips and labels positions.
func TestStrictLimitAccept(t *testing.T) {
	eng := demoEngine(t)
	text := lines(6) + "not json\n" + lines(6)
	sink := &testSink{failAt: -1}
	in := Input{R: strings.NewReader(text), Name: "t.jsonl", Type: source.JSONL}
	sum, err := Run(context.Background(), in, eng, sink, Options{BatchSize: 4, Strict: true})
	var se *StrictError
	if !errors.As(err, &se) || se.Bad.Record != 6 {
		t.Fatalf("strict: error %v", err)
	}
	if sum.Positions != 6 || sum.Bad != 1 || sum.Records != 7 {
		t.Errorf("strict: summary %+v, want 6 positions, 1 bad, 7 records complete", sum)
	}

	sink = &testSink{failAt: -1}
	in = Input{R: strings.NewReader(lines(40)), Name: "t.jsonl", Type: source.JSONL}
	accept := func(it *source.Item) (any, bool, error) { return it.Record * 10, it.Record%2 == 0, nil }
	sum, err = Run(context.Background(), in, eng, sink, Options{BatchSize: 4, Limit: 7, Accept: accept})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Positions != 7 || sum.Skipped != 6 {
		t.Errorf("limit: summary %+v, want 7 positions and 6 skipped", sum)
	}
	var labels []any
	for _, b := range sink.consumed {
		for _, it := range b.Items {
			labels = append(labels, it.Label)
		}
	}
	if want := []any{0, 20, 40, 60, 80, 100, 120}; !slices.Equal(labels, want) {
		t.Errorf("labels %v, want %v", labels, want)
	}

	errLabel := errors.New("bad label")
	sink = &testSink{failAt: -1}
	in = Input{R: strings.NewReader(lines(40)), Name: "t.jsonl", Type: source.JSONL}
	accept = func(it *source.Item) (any, bool, error) {
		if it.Record == 9 {
			return nil, false, errLabel
		}
		return nil, true, nil
	}
	sum, err = Run(context.Background(), in, eng, sink, Options{BatchSize: 4, Accept: accept})
	if !errors.Is(err, errLabel) || sum.Positions != 8 || sink.closes != 1 {
		t.Errorf("accept error: %v, summary %+v: want the label error after the 2 whole batches before it", err, sum)
	}
}

// stallingReader yields its data, then blocks until released (a producer that hangs).
type stallingReader struct {
	data    *strings.Reader
	release chan struct{}
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.data.Len() > 0 {
		return s.data.Read(p)
	}
	<-s.release
	return 0, errors.New("released")
}

// TestCancelStalledInput: a cancellation stops the run even while the input blocks in Read.
func TestCancelStalledInput(t *testing.T) {
	eng := demoEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := &stallingReader{data: strings.NewReader(lines(10)), release: make(chan struct{})}
	defer close(in.release)
	sink := &testSink{failAt: -1, onConsume: func(seq int) {
		if seq == 1 {
			cancel() // the reader is (or soon will be) blocked waiting for more input
		}
	}}
	sum, err := Run(ctx, Input{R: in, Name: "stdin", Type: source.JSONL}, eng, sink, Options{BatchSize: 4})
	if !errors.Is(err, context.Canceled) || sum.Positions != 8 || sink.closes != 1 {
		t.Fatalf("Run: %v, summary %+v, %d closes", err, sum, sink.closes)
	}
}

// slowEngine is a ContextEngine whose second batch never ends by itself (a lens with thousands of rows per
// position): only the run's context frees it. It also asks for batches of at most maxBatch positions.
type slowEngine struct {
	eng      *lens.Engine
	runs     int
	maxBatch int
	sizes    []int
}

func (s *slowEngine) Run(b *lens.Batch) (*lens.Outputs, []lens.BatchResult, error) {
	panic("the pipeline must call RunContext on a ContextEngine")
}

func (s *slowEngine) RunContext(ctx context.Context, b *lens.Batch) (*lens.Outputs, []lens.BatchResult, error) {
	s.runs++
	s.sizes = append(s.sizes, b.Len())
	if s.runs == 2 {
		<-ctx.Done()
		return nil, nil, context.Cause(ctx)
	}
	return s.eng.RunContext(ctx, b)
}

func (s *slowEngine) MaxBatch() int { return s.maxBatch }

// TestCancelStopsWithinABatch: an interrupt during a batch that would run on stops the run at once (the
// engine is handed the run's context), the committed batch is kept, and a lens's MaxBatch caps the batch
// size below Options.BatchSize.
func TestCancelStopsWithinABatch(t *testing.T) {
	errSignal := errors.New("interrupted (test)")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	eng := &slowEngine{eng: demoEngine(t), maxBatch: 3}
	sink := &testSink{failAt: -1, onConsume: func(seq int) {
		if seq == 0 {
			cancel(errSignal)
		}
	}}
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, jsonlInput(20), eng, sink, Options{BatchSize: 16})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errSignal) {
			t.Fatalf("Run error %v, want the cancellation's cause", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run still waits for a batch 20 s after the interrupt")
	}
	if len(sink.consumed) != 1 || sink.consumed[0].Len() != 3 {
		t.Errorf("consumed %d batches (first of %d positions), want 1 of 3", len(sink.consumed), sink.consumed[0].Len())
	}
	for _, n := range eng.sizes {
		if n > 3 {
			t.Errorf("a batch of %d positions, above the engine's MaxBatch 3", n)
		}
	}
}

// opera is Morphy's Opera game twice: two records of 34 positions each, longer than the batches below.
var opera = func() string {
	g := "1. e4 e5 2. Nf3 d6 3. d4 Bg4 4. dxe5 Bxf3 5. Qxf3 dxe5 6. Bc4 Nf6 7. Qb3 Qe7 8. Nc3 c6 9. Bg5 b5 " +
		"10. Nxb5 cxb5 11. Bxb5+ Nbd7 12. O-O-O Rd8 13. Rxd7 Rxd7 14. Rd1 Qe6 15. Bxd7+ Nxd7 16. Qb8+ Nxb8 17. Rd8# 1-0"
	return "[Event \"a\"]\n\n" + g + "\n\n[Event \"b\"]\n\n" + g + "\n"
}()

// TestResumeInsideARecord cuts a run after every batch in turn and resumes it from that batch's Records and
// OpenItems: what the cut run consumed followed by what the resumed run consumes must be the whole run,
// position for position, with positions declined by Accept in between (they count as items too).
func TestResumeInsideARecord(t *testing.T) {
	eng := demoEngine(t)
	accept := func(it *source.Item) (any, bool, error) { return nil, it.Ply%5 != 3, nil }
	run := func(skipRecords, skipItems int) []*Batch {
		sink := &testSink{failAt: -1}
		in := Input{R: strings.NewReader(opera), Name: "opera.pgn", Type: source.PGN, SkipRecords: skipRecords, SkipItems: skipItems}
		if _, err := Run(context.Background(), in, eng, sink, Options{BatchSize: 3, Accept: accept}); err != nil {
			t.Fatal(err)
		}
		return sink.consumed
	}
	key := func(bs []*Batch) []string {
		var out []string
		for _, b := range bs {
			for _, it := range b.Items {
				out = append(out, fmt.Sprintf("%d/%d", it.Record, it.Ply))
			}
		}
		return out
	}
	full := run(0, 0)
	want := key(full)
	if len(want) != 2*(34-7) {
		t.Fatalf("the whole run has %d positions, want %d", len(want), 2*(34-7))
	}
	open := 0
	for k, b := range full {
		if b.OpenItems > 0 {
			open++
		}
		got := append(key(full[:k+1]), key(run(b.Records, b.OpenItems))...)
		if !slices.Equal(got, want) {
			t.Fatalf("cut after batch %d (records %d, open items %d): %d positions, first difference at %d",
				k, b.Records, b.OpenItems, len(got), firstDiff(got, want))
		}
	}
	if open < len(full)/2 {
		t.Fatalf("only %d of %d cuts fell inside a game: the test proves little", open, len(full))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
