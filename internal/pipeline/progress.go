package pipeline

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress reports a run to a person or to a log. On a terminal it draws a progress bar
// (github.com/schollz/progressbar) over the input bytes: the description counts positions, positions per
// second and bad records, the bar the share of the input read, and the ETA comes from the bytes consumed,
// which grow steadily where positions per batch do not. Elsewhere (a batch system's log) it writes one
// plain line every LogInterval: positions, rate, bad records, elapsed time, with an ETA from the input
// bytes at the run's average rate.
type Progress struct {
	w     io.Writer
	tty   bool
	what  string // the command, first on every line
	size  int64  // input bytes; <= 0 when unknown (stdin)
	start int    // positions already done before this run (a resume)
	now   func() time.Time

	mu      sync.Mutex
	began   time.Time
	lastLog time.Time
	sum     Summary
	bar     *progressbar.ProgressBar // the terminal's bar, from Start to Stop
	stop    chan struct{}
	done    chan struct{}
}

// LogInterval is how often a Progress writing to a log (not a terminal) reports.
const LogInterval = 10 * time.Second

// drawInterval bounds how often the terminal bar is redrawn.
const drawInterval = 200 * time.Millisecond

// NewProgress returns a Progress writing to w (a terminal when tty) for the command what, over an input of
// size bytes (<= 0: unknown), with start positions already done (a resume). Call Start, then Update with
// each Summary (Options.Progress), then Stop.
func NewProgress(w io.Writer, tty bool, what string, size int64, start int) *Progress {
	return &Progress{w: w, tty: tty, what: what, size: size, start: start, now: time.Now}
}

// Start begins timing and, for a log, the periodic lines (which come even while a long batch runs).
func (p *Progress) Start() {
	p.begin()
	if p.tty {
		p.startBar()
		return
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.tick()
			case <-p.stop:
				return
			}
		}
	}()
}

func (p *Progress) begin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.began, p.lastLog = p.now(), p.now()
}

// startBar makes the terminal's bar, drawn at the first Update. Its maximum is the input's size (unknown:
// a spinner). It redraws in place with ANSI codes, at most every drawInterval, and is erased when it
// stops; with no spinner interval it draws only when Update asks, so nothing draws after Stop.
func (p *Progress) startBar() {
	p.mu.Lock()
	defer p.mu.Unlock()
	max := p.size
	if max <= 0 {
		max = -1
	}
	p.bar = progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(p.describe()),
		progressbar.OptionSetWidth(20), // shrunk by the library to fit a narrower terminal
		progressbar.OptionThrottle(drawInterval),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetSpinnerChangeInterval(0),
	)
	p.bar.StartWithoutRender() // the rate and the ETA count from now
}

// Update records the totals so far and redraws the terminal bar (at most every drawInterval).
func (p *Progress) Update(s Summary) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sum = s
	if p.bar == nil {
		return
	}
	desc := p.describe()
	// The description is set without a draw, so that the one draw below shows it with the bytes: Set64
	// draws when the share of the input moved, Describe otherwise (the second is then throttled).
	progressbar.OptionSetDescription(desc)(p.bar)
	bytes := s.Bytes
	if p.size > 0 {
		bytes = min(bytes, p.size) // a file that grew while it was read
	}
	_ = p.bar.Set64(bytes) // errors are the bar's own (a write to the terminal); the run goes on
	p.bar.Describe(desc)
}

// describe is the bar's description: "batch: 1234 positions, 456/s, 2 bad records".
func (p *Progress) describe() string {
	rate := float64(p.sum.Positions) / max(p.now().Sub(p.began).Seconds(), 1e-9)
	return fmt.Sprintf("%s: %d positions, %.0f/s, %d bad records", p.what, p.start+p.sum.Positions, rate, p.sum.Bad)
}

// tick writes the log line when LogInterval has passed since the last.
func (p *Progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.now().Sub(p.lastLog) >= LogInterval {
		p.lastLog = p.now()
		fmt.Fprintln(p.w, p.line())
	}
}

// Stop ends the report; the terminal bar is erased, leaving no stray characters before what comes next
// (the summary, or the line saying why the run stopped, an interrupt's included), and later Updates draw
// nothing.
func (p *Progress) Stop() {
	if p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish() // with OptionClearOnFinish: erases the line the bar drew, if it drew one
		p.bar = nil
	}
}

// line is one report: "batch: 1234 positions, 456 positions/s, 2 bad records, 10 s elapsed, 37% of the
// input, ETA 17 s".
func (p *Progress) line() string {
	el := p.now().Sub(p.began)
	rate := float64(p.sum.Positions) / max(el.Seconds(), 1e-9)
	s := fmt.Sprintf("%s: %d positions, %.0f positions/s, %d bad records, %s elapsed", p.what, p.start+p.sum.Positions, rate, p.sum.Bad, duration(el))
	if p.size > 0 && p.sum.Bytes > 0 {
		frac := min(float64(p.sum.Bytes)/float64(p.size), 1)
		s += fmt.Sprintf(", %.0f%% of the input", 100*frac)
		if frac < 1 {
			s += ", ETA " + duration(time.Duration(float64(el)*(1-frac)/frac))
		}
	}
	return s
}

// duration is d rounded to whole seconds in the largest units that fit: "7 s", "3m05s", "2h04m".
func duration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
}
