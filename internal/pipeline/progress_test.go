package pipeline

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeClock is a settable clock for Progress.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestProgressLog(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Unix(1000, 0)}
	p := NewProgress(&buf, false, "batch", 1000, 100)
	p.now = clock.now
	p.begin()
	step := func(d time.Duration, s *Summary) string {
		clock.t = clock.t.Add(d)
		if s != nil {
			p.Update(*s)
		}
		buf.Reset()
		p.tick()
		return buf.String()
	}
	if got := step(5*time.Second, &Summary{Positions: 500, Bad: 2, Bytes: 250}); got != "" {
		t.Errorf("a line before 10 s: %q", got)
	}
	// 500 positions in 10 s; a quarter of the input in 10 s leaves 30 s at that rate. The resumed 100 count.
	want := "batch: 600 positions, 50 positions/s, 2 bad records, 10 s elapsed, 25% of the input, ETA 30 s\n"
	if got := step(5*time.Second, nil); got != want {
		t.Errorf("at 10 s: %q, want %q", got, want)
	}
	if got := step(5*time.Second, &Summary{Positions: 900, Bad: 3, Bytes: 500}); got != "" {
		t.Errorf("a line 5 s after the last: %q", got)
	}
	want = "batch: 1000 positions, 45 positions/s, 3 bad records, 20 s elapsed, 50% of the input, ETA 20 s\n"
	if got := step(5*time.Second, nil); got != want {
		t.Errorf("at 20 s: %q, want %q", got, want)
	}
	// Unknown size (stdin): no share, no ETA; long runs in minutes.
	p.size = 0
	want = "batch: 1000 positions, 4 positions/s, 3 bad records, 3m40s elapsed\n"
	if got := step(200*time.Second, nil); got != want {
		t.Errorf("unknown size: %q, want %q", got, want)
	}
	p.Stop() // never started: nothing to stop, nothing to erase
	if buf.Len() != len(want) {
		t.Errorf("Stop wrote to a log: %q", buf.String())
	}
}

func TestProgressTerminal(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Unix(1000, 0)}
	p := NewProgress(&buf, true, "probe train", 0, 0)
	p.now = clock.now
	p.Start()
	clock.t = clock.t.Add(2 * time.Second)
	p.Update(Summary{Positions: 64})
	clock.t = clock.t.Add(100 * time.Millisecond)
	p.Update(Summary{Positions: 128}) // too soon to redraw
	clock.t = clock.t.Add(100 * time.Millisecond)
	p.Update(Summary{Positions: 192, Bad: 1})
	p.Stop()
	want := "\r\033[Kprobe train: 64 positions, 32 positions/s, 0 bad records, 2 s elapsed" +
		"\r\033[Kprobe train: 192 positions, 87 positions/s, 1 bad records, 2 s elapsed" +
		"\r\033[K"
	if got := buf.String(); got != want {
		t.Errorf("terminal output %q, want %q", got, want)
	}
	if strings.Contains(buf.String(), "\n") {
		t.Error("a terminal line must be redrawn in place, not scrolled")
	}
}
