package cli

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are the command's standard streams, swappable in tests.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// StderrTTY says whether ErrOut is a terminal: progress bars there, plain log lines otherwise.
	StderrTTY bool
	// StdoutTTY says whether Out is a terminal: analyse and predict then show people a board rather than
	// JSON meant for programs.
	StdoutTTY bool
	// Color says whether Out shows colour (a terminal, NO_COLOR unset, TERM not dumb).
	Color bool
}

// SystemIO returns the process's streams.
func SystemIO() *IOStreams {
	outTTY := term.IsTerminal(int(os.Stdout.Fd()))
	color := outTTY && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb" && os.Getenv("TERM") != ""
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, StderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		StdoutTTY: outTTY, Color: color}
}

// TestIO returns in-memory streams and the buffers behind them.
func TestIO() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}
