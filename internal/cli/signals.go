package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// signalContext returns a context that the first SIGINT or SIGTERM cancels, with a *signalError as its
// cause, so a long command can commit what is complete and say how to go on. The first signal also restores
// the default handling: a second one ends the process at once. stop releases the handler.
func signalContext() (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			signal.Stop(ch)
			s, _ := sig.(syscall.Signal)
			cancel(&signalError{sig: s})
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		signal.Stop(ch)
		cancel(nil)
	}
}

// signalError is the cause of a run stopped by a signal.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string { return "interrupted by " + e.sig.String() }

// interruptedError is a command stopped by a signal (or its test stand-in) after committing what was
// complete: one line saying how far it got and what to do, and the shell's exit status for the signal.
type interruptedError struct {
	cmd       string
	positions int
	hint      string
	cause     error
}

func (e *interruptedError) Error() string {
	return fmt.Sprintf("%s: interrupted after %d positions: %s", e.cmd, e.positions, e.hint)
}

func (e *interruptedError) Unwrap() error { return e.cause }

// ExitCode is 128 + the signal number (130 for SIGINT, 143 for SIGTERM), as a shell reports a process the
// signal killed; 130 when no signal is known.
func (e *interruptedError) ExitCode() int {
	var s *signalError
	if errors.As(e.cause, &s) && s.sig > 0 {
		return 128 + int(s.sig)
	}
	return 128 + int(syscall.SIGINT)
}
