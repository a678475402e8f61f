package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/store"
)

// Exit codes: one place decides them (Main).
const (
	ExitOK      = 0
	ExitFailure = 1 // runtime failure: ONNX Runtime, I/O, a job that could not finish
	ExitUsage   = 2 // usage or input error: bad flag, FEN, move, PGN, model file, lens, pattern
)

// UsageError marks an error caused by what the user gave (flags, positions, files); it exits with code 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// usageErrorf builds a UsageError.
func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// inputError marks err (from a lower package) as the user's input being wrong.
func inputError(err error) error {
	if err == nil {
		return nil
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return err
	}
	return &UsageError{Err: err}
}

// storeError marks the output-directory refusals (not empty, made with other settings) as usage errors;
// other store failures are runtime failures.
func storeError(err error) error {
	if errors.Is(err, store.ErrNotEmpty) || errors.Is(err, store.ErrMismatch) {
		return inputError(err)
	}
	return err
}

// ExitCode maps an error to the process exit status.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var coded interface{ ExitCode() int } // a signal's status (130, 143)
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	// A move the user named (a --target move found illegal only when a position is analysed) is input too.
	if errors.Is(err, board.ErrIllegalMove) || errors.Is(err, board.ErrAmbiguousMove) || errors.Is(err, board.ErrBadMove) {
		return ExitUsage
	}
	return ExitFailure
}

// oneLine folds an error message to a single line so scripts can rely on one line per failure.
func oneLine(msg string) string {
	msg = strings.TrimSpace(msg)
	return strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ")), " ")
}
