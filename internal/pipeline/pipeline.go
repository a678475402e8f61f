package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/source"
)

// Engine runs one batch: one prepared lens engine (*lens.Engine) over one network.
type Engine interface {
	Run(b *lens.Batch) (*lens.Outputs, []lens.BatchResult, error)
}

// ContextEngine is an Engine that can stop within a batch (*lens.Engine: before its next network run) once
// the run's context is done, so that an interrupt does not wait for a long batch to end.
type ContextEngine interface {
	RunContext(ctx context.Context, b *lens.Batch) (*lens.Outputs, []lens.BatchResult, error)
}

// BatchLimiter is an Engine whose lenses ask for small batches (*lens.Engine: lenses that run hundreds of
// rows per position); the pipeline's batch size is then at most MaxBatch (0: no limit).
type BatchLimiter interface {
	MaxBatch() int
}

// PositionChecker is an Engine that can tell, before a run, a position it cannot analyse (*lens.Engine: a
// target undefined there, such as an illegal policy move). The pipeline sets such a position aside as a bad
// record and runs the batch without it, instead of failing the whole run on one position.
type PositionChecker interface {
	Check(pos *board.Position) error
}

// Sink consumes analysed batches. The pipeline calls Consume from one goroutine, in input order, and Close
// exactly once after the last Consume.
type Sink interface {
	// Consume takes one analysed batch. A batch may hold no position (only bad records, or the final count
	// of records); its data is the sink's to keep. An error stops the run.
	Consume(ctx context.Context, b *Batch) error
	// Close ends the run. err is nil when the whole input was consumed: the sink makes its output final.
	// Otherwise err says why the run stopped (the one error Run returns) and the sink keeps what it has
	// consumed so far, as far as it can (for a resume). A Close error that only repeats err should not be
	// returned again (Run leaves out one that errors.Is matches err).
	Close(sum Summary, err error) error
}

// Input says where positions come from: R, or the Parts read one after the other as one input (records
// numbered across them, each position and bad record naming its part).
type Input struct {
	R     io.Reader
	Name  string // the input's name in records and messages
	Parts []Part // when set, R and Name are not used
	Type  source.Type
	// Select picks the positions of each record and the records of a shard.
	Select source.Options
	// SkipRecords is how many records a resumed run already has: their positions and bad records are read
	// (to number the rest) but not reported.
	SkipRecords int
	// SkipItems is how many items (positions yielded by the source) of record SkipRecords the resumed run
	// already has (a Batch's OpenItems as committed): they are skipped like the records before.
	SkipItems int
}

// Part is one input file of several.
type Part struct {
	Name string
	R    io.Reader
}

// parts returns the input's parts, R alone when none are given.
func (in Input) parts() []Part {
	if len(in.Parts) > 0 {
		return in.Parts
	}
	return []Part{{Name: in.Name, R: in.R}}
}

// Options tune a run.
type Options struct {
	BatchSize int // positions per engine run (at least 1)
	// Format and Fill are how positions are encoded (lc0 input format and history fill).
	Format board.InputFormat
	Fill   board.HistoryFill
	// Policy is how the policy of a transposed position is indexed (lens.Batch.Policy).
	Policy board.PolicyTranspose
	// Corrupt encodes each position's corrupted counterpart as well (activation patching); a record without
	// one is a bad record.
	Corrupt bool
	// Strict ends the input at the first bad record (after the batch holding it), with a *StrictError.
	Strict bool
	// Limit ends the input after this many accepted positions (0: no limit). The rest of the input is not
	// read, so Summary.Records and the bytes read cover only what was.
	Limit int
	// Accept, when set, is asked about each position before it is encoded: ok false skips it (counted in
	// Summary.Skipped), label is kept in the position's Label, and an error ends the input with that error.
	Accept func(it *source.Item) (label any, ok bool, err error)
	// Progress, when set, is called after each consumed batch with the totals so far.
	Progress func(Summary)
}

// Position says where an analysed position came from.
type Position struct {
	Source string
	Record int // 0-based input record (game or line)
	Game   int // 0-based game for PGN, -1 otherwise
	Ply    int
	Pos    *board.Position
	Next   *board.Move // the move played from the position, nil if none
	Label  any         // what Options.Accept returned
	// Puzzle is the lichess puzzle the position belongs to (puzzle input), nil otherwise.
	Puzzle *source.Puzzle
}

// BadRecord is an input record that could not be analysed.
type BadRecord struct {
	Source string
	Record int
	Game   int
	Line   int
	Reason string
}

// Batch is one batch of positions and what the engine made of it.
type Batch struct {
	Seq     int        // 0-based batch number in this run
	Input   lens.Batch // the encoded positions the engine ran on
	Items   []Position // row i of Input and Results
	Results []lens.BatchResult
	// Outputs is what the engine's pass returned (the heads, for sinks that score moves).
	Outputs *lens.Outputs
	// Bad are the bad records met while reading this batch's positions, and the positions set aside
	// because the engine cannot analyse them (see PositionChecker; Reason names the ply).
	Bad []BadRecord
	// Records is how many input records are complete once this batch is consumed: a sink that commits
	// only at record boundaries never splits a game between a commit and a resume.
	Records int
	// OpenItems is how many items of record Records (open: a game longer than the batches so far) are
	// consumed once this batch is, counting those a resume skipped and those set aside or declined; a sink
	// that commits them passes it back as Input.SkipItems, so a resume repeats no position of the game.
	OpenItems int
	// Bytes is how many input bytes were read when the batch was cut.
	Bytes int64
}

// Len is the number of positions.
func (b *Batch) Len() int { return len(b.Items) }

// Summary counts what a run consumed.
type Summary struct {
	Batches   int   // batches consumed
	Positions int   // positions consumed
	Bad       int   // bad records consumed
	Skipped   int   // positions Accept declined (read, not necessarily consumed)
	Records   int   // input records complete (the input's total once it was read to its end)
	Bytes     int64 // input bytes read when the last consumed batch was cut (all of them on success)
	Runs      int   // engine runs started
}

// StrictError ends the input at a bad record under Options.Strict.
type StrictError struct{ Bad BadRecord }

func (e *StrictError) Error() string {
	return fmt.Sprintf("bad record %d (line %d): %s (--strict)", e.Bad.Record, e.Bad.Line, e.Bad.Reason)
}

// errLimit ends the walk at Options.Limit; it is not an error of the run.
var errLimit = errors.New("pipeline: limit reached")

// Run streams in through eng into sink (see the package doc for how it stops) and returns what was
// consumed. When the caller's ctx ends the run, the error wraps context.Cause(ctx).
func Run(ctx context.Context, in Input, eng Engine, sink Sink, opts Options) (sum Summary, err error) {
	if opts.BatchSize < 1 {
		return sum, fmt.Errorf("pipeline: batch size %d: want at least 1", opts.BatchSize)
	}
	if l, ok := eng.(BatchLimiter); ok && l.MaxBatch() > 0 {
		opts.BatchSize = min(opts.BatchSize, l.MaxBatch())
	}
	run, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	runBatch := eng.Run
	if c, ok := eng.(ContextEngine); ok {
		runBatch = func(b *lens.Batch) (*lens.Outputs, []lens.BatchResult, error) { return c.RunContext(run, b) }
	}

	var wg sync.WaitGroup
	read := make(chan *Batch, 1)
	var readErr error
	var skipped int
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(read)
		r := &reader{ctx: run, in: in, opts: opts, out: read, cr: &countingReader{}, openRecord: -1}
		r.check, _ = eng.(PositionChecker)
		readErr = r.read()
		skipped = r.skipped
	}()

	// The hand-over to the sink is unbuffered: the engine runs batch k+1 while the sink consumes batch k,
	// never k+2, so a failing sink costs at most one further engine run.
	analysed := make(chan *Batch)
	var runs int
	go func() {
		defer wg.Done()
		defer close(analysed)
		for b := range recv(run, read) {
			if b.Input.Len() > 0 {
				runs++
				out, res, err := runBatch(&b.Input)
				if err != nil {
					stop(err)
					return
				}
				b.Outputs, b.Results = out, res
			}
			select {
			case analysed <- b:
			case <-run.Done():
				return
			}
		}
	}()

	for b := range recv(run, analysed) {
		if err := sink.Consume(run, b); err != nil {
			stop(err)
			break
		}
		sum.Batches++
		sum.Positions += b.Len()
		sum.Bad += len(b.Bad)
		sum.Records, sum.Bytes = b.Records, b.Bytes
		if opts.Progress != nil {
			opts.Progress(sum)
		}
	}
	// The first cancellation wins: a stage's failure, or the caller's context.
	cause := context.Cause(run)
	stop(nil) // whatever is still running stops (nothing, unless the run was cut short)
	wg.Wait()
	sum.Skipped, sum.Runs = skipped, runs

	switch {
	case cause == nil:
		if !errors.Is(readErr, errLimit) {
			err = readErr // nil at the end of the input
		}
	case ctx.Err() != nil && errors.Is(cause, context.Cause(ctx)):
		err = fmt.Errorf("pipeline: stopped: %w", cause)
	default:
		err = cause
	}
	if cerr := sink.Close(sum, err); cerr != nil && (err == nil || !errors.Is(cerr, err)) {
		err = errors.Join(err, cerr)
	}
	return sum, err
}

// recv yields the values of ch until it is closed or ctx is done; a value received as ctx ends is dropped,
// so no stage starts work after a stop.
func recv(ctx context.Context, ch <-chan *Batch) func(yield func(*Batch) bool) {
	return func(yield func(*Batch) bool) {
		for {
			select {
			case b, ok := <-ch:
				if !ok || ctx.Err() != nil || !yield(b) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}
}

// countingReader counts the input bytes read, for progress and the batches' Bytes.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// reader walks the input and cuts it into encoded batches.
type reader struct {
	ctx      context.Context
	in       Input
	opts     Options
	out      chan<- *Batch
	check    PositionChecker // nil: every position can be analysed
	cr       *countingReader
	cur      *Batch
	seq      int
	accepted int
	skipped  int
	planes   []float32
	// openRecord is the record of the last item read, openItems how many of its items were read (-1, 0:
	// none yet).
	openRecord, openItems int
}

func (r *reader) newBatch() *Batch {
	n := r.opts.BatchSize
	b := &Batch{Seq: r.seq, Input: lens.Batch{Format: r.opts.Format, Fill: r.opts.Fill, Policy: r.opts.Policy, Planes: make([]float32, 0, n*board.NumPlanes*64)}}
	r.seq++
	return b
}

// flush hands the current batch on, complete records saying how many records it completes.
func (r *reader) flush(complete int) error {
	r.cur.Records, r.cur.Bytes = complete, r.cr.n
	if r.openRecord == complete {
		r.cur.OpenItems = r.openItems
	}
	select {
	case r.out <- r.cur:
	case <-r.ctx.Done():
		return context.Cause(r.ctx)
	}
	r.cur = r.newBatch()
	return nil
}

func (r *reader) bad(rec BadRecord) error {
	r.cur.Bad = append(r.cur.Bad, rec)
	if r.opts.Strict {
		if err := r.flush(rec.Record + 1); err != nil {
			return err
		}
		return &StrictError{Bad: rec}
	}
	return nil
}

func (r *reader) item(it *source.Item) error {
	if err := r.ctx.Err(); err != nil {
		return context.Cause(r.ctx) // stop reading at once
	}
	if it.Record < r.in.SkipRecords {
		return nil
	}
	if it.Record != r.openRecord {
		r.openRecord, r.openItems = it.Record, 0
	}
	r.openItems++
	if it.Record == r.in.SkipRecords && r.openItems <= r.in.SkipItems {
		return nil
	}
	var label any
	if r.opts.Accept != nil {
		l, ok, err := r.opts.Accept(it)
		if err != nil {
			return err
		}
		if !ok {
			r.skipped++
			return nil
		}
		label = l
	}
	if r.check != nil {
		if err := r.check.Check(it.Pos); err != nil {
			return r.bad(BadRecord{Source: it.Source, Record: it.Record, Game: it.Game, Reason: fmt.Sprintf("ply %d: %v", it.Ply, err)})
		}
	}
	b := &r.cur.Input
	if r.opts.Corrupt {
		if it.Corrupt == nil {
			return r.bad(BadRecord{Source: it.Source, Record: it.Record, Game: it.Game, Reason: "no corrupt_fen or corrupt_moves: the patching lens needs a corrupted position"})
		}
		// The corrupted position is encoded like the clean one; patching works in the clean one's frame.
		b.Encode(it.Corrupt, r.planes)
		b.CorruptPlanes = append(b.CorruptPlanes, r.planes...)
		b.CorruptPositions = append(b.CorruptPositions, it.Corrupt.Current())
	}
	transform := b.Encode(it.History, r.planes)
	b.Planes = append(b.Planes, r.planes...)
	b.Transforms = append(b.Transforms, transform)
	b.Positions = append(b.Positions, it.Pos)
	r.cur.Items = append(r.cur.Items, Position{Source: it.Source, Record: it.Record, Game: it.Game, Ply: it.Ply, Pos: it.Pos, Next: it.Next, Label: label, Puzzle: it.Puzzle})
	r.accepted++
	if b.Len() == r.opts.BatchSize {
		if err := r.flush(it.Record); err != nil { // records before this one are complete
			return err
		}
	}
	if r.opts.Limit > 0 && r.accepted >= r.opts.Limit {
		return errLimit
	}
	return nil
}

// read walks the whole input, part after part. A normal end reads each part to its last byte (so that a
// caller hashing it sees every byte) and hands on the last batch, which completes every record.
func (r *reader) read() error {
	r.cur = r.newBatch()
	r.planes = make([]float32, board.NumPlanes*64)
	records := 0
	for _, part := range r.in.parts() {
		var err error
		if records, err = r.walk(part, records); err != nil {
			if errors.Is(err, errLimit) {
				// The positions accepted so far form the whole run; their records may be incomplete.
				if ferr := r.flush(records); ferr != nil {
					return ferr
				}
			}
			return err
		}
	}
	return r.flush(max(records, r.in.SkipRecords))
}

// walk reads one part whose first record is number first, and returns the number of the next part's.
func (r *reader) walk(part Part, first int) (int, error) {
	// Only the pump blocks in the input's Read. A stop closes the pipe, which frees the reader at once even
	// when the input stalls (a producer that hangs on stdin); the pump is left to end at its next Read.
	pr, pw := io.Pipe()
	go func() {
		_, err := io.CopyBuffer(pw, part.R, make([]byte, 64<<10))
		pw.CloseWithError(err) // nil: EOF
	}()
	defer context.AfterFunc(r.ctx, func() { pr.CloseWithError(context.Cause(r.ctx)) })()
	defer pr.Close() // the pump of a part left early ends at its next write
	r.cr.r = pr
	sel := r.in.Select
	sel.Offset = first
	records, err := source.Walk(r.cr, part.Name, r.in.Type, sel, r.item, func(b *source.Bad) error {
		if err := r.ctx.Err(); err != nil {
			return context.Cause(r.ctx)
		}
		if b.Record < r.in.SkipRecords {
			return nil
		}
		return r.bad(BadRecord{Source: part.Name, Record: b.Record, Game: b.Game, Line: b.Line, Reason: b.Reason})
	})
	if err != nil {
		return records, err
	}
	if _, err := io.Copy(io.Discard, r.cr); err != nil {
		return records, fmt.Errorf("pipeline: read %s: %w", part.Name, err)
	}
	return records, nil
}
