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

// TestProgressTerminal: on a terminal the first Update draws the bar in place (a carriage return, no new
// line) with the positions, their rate and the bad records (on the settable clock) and the share of the
// input read; Stop erases the line, and nothing is drawn after it. Later draws are throttled on the wall
// clock, so the test asserts only their form.
func TestProgressTerminal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int64
		share string // in the first draw
	}{{"known size", 1000, " 25% |"}, {"stdin", 0, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			clock := &fakeClock{t: time.Unix(1000, 0)}
			p := NewProgress(&buf, true, "probe train", tc.size, 10)
			p.now = clock.now
			p.Start()
			if buf.Len() != 0 {
				t.Fatalf("Start drew %q before any position", buf.String())
			}
			clock.t = clock.t.Add(2 * time.Second)
			p.Update(Summary{Positions: 64, Bad: 3, Bytes: 250})
			first := buf.String()
			if !strings.HasPrefix(first, "\r") || !strings.Contains(first, "probe train: 74 positions, 32/s, 3 bad records") || !strings.Contains(first, tc.share) {
				t.Fatalf("first draw %q: want the positions (with the 10 resumed), the rate, the bad records and %q", first, tc.share)
			}
			for i := range 20 {
				clock.t = clock.t.Add(100 * time.Millisecond)
				p.Update(Summary{Positions: 64 * (i + 2), Bad: 3, Bytes: int64(250 + 30*i)})
			}
			p.Stop()
			out := buf.String()
			const clear = "\033[2K\r"
			if !strings.HasSuffix(out, clear) {
				t.Errorf("Stop did not erase the line: output ends %q", out[max(0, len(out)-40):])
			}
			if strings.Contains(out, "\n") || strings.Count(out, clear) != 1 {
				t.Errorf("the bar must be redrawn in place and erased once: %q", out)
			}
			n := buf.Len()
			p.Update(Summary{Positions: 10000, Bytes: 900})
			p.Stop()
			if buf.Len() != n {
				t.Errorf("drawn after Stop: %q", buf.String()[n:])
			}
		})
	}
}
