package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/store"
)

// Exit codes: one place decides them (ExitCode).
const (
	ExitOK      = 0
	ExitFailure = 1 // runtime failure: ONNX Runtime, I/O, a job that could not finish, a bug
	ExitUsage   = 2 // usage or input error: bad flag, FEN, move, PGN, model file, lens, pattern, config
)

// UsageError marks an error caused by what the user gave (flags, positions, files, configuration); it exits
// with code 2. It is created where the cause is known (flag and argument validators, parsers of what the user
// named), never inferred from an error's text.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode makes a UsageError choose exit code 2.
func (e *UsageError) ExitCode() int { return ExitUsage }

// exitCoder is an error that chooses its own exit code: UsageError, and errors of other packages that know
// better than "runtime failure" (an interrupted run, for instance), without depending on this package.
type exitCoder interface{ ExitCode() int }

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

// pathError classifies a failure to open or read a file the user named: a path that does not exist, is a
// directory (or not one), is too long or may not be read is the user's input (exit 2); any other I/O error
// (EIO, EINVAL, ...) is a failure of the machine (exit 1). Errors that are not about a path (the file's
// content is not what it should be) are input errors.
func pathError(err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && !isPathMistake(err) {
		return err
	}
	return inputError(err)
}

// isPathMistake reports whether an OS error is about the path itself rather than the device behind it.
func isPathMistake(err error) bool {
	for _, target := range []error{fs.ErrNotExist, fs.ErrPermission, fs.ErrExist, syscall.EISDIR, syscall.ENOTDIR, syscall.ENAMETOOLONG, syscall.ELOOP} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// storeError marks the output-directory refusals (not empty, made with other settings) as usage errors;
// other store failures are runtime failures.
func storeError(err error) error {
	if errors.Is(err, store.ErrNotEmpty) || errors.Is(err, store.ErrMismatch) {
		return inputError(err)
	}
	return err
}

// engineError sorts the failures of preparing lenses: a lens that cannot run as asked on the network (a
// missing head, an unsupported op, a pattern matching nothing, a probe file for another network) is an
// input error; failing to build the run (a bug, ONNX Runtime) is a runtime failure.
func engineError(err error) error {
	var ne *lens.NetworkError
	var ke *lens.KeepError
	if errors.As(err, &ne) || errors.As(err, &ke) {
		return inputError(err)
	}
	return err
}

// ExitCode maps an error to the process exit status; it is the one place that decides.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
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

// Cobra returns its own usage errors (unknown command, bad argument count, unknown flag, bad flag value,
// missing required flag) as plain errors. The hooks below make each one a UsageError where cobra creates it,
// so no error's text is ever inspected.

// flagError is the root's FlagErrorFunc, inherited by every command: flag parsing failed.
func flagError(c *cobra.Command, err error) error {
	return &UsageError{Err: fmt.Errorf("%w (see %q)", err, c.CommandPath()+" --help")}
}

// wrapArgs makes the argument validator of c and of every command below it return UsageErrors.
func wrapArgs(c *cobra.Command) {
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				var ue *UsageError
				if errors.As(err, &ue) {
					return err // a group command's, which names the command itself
				}
				return inputError(fmt.Errorf("%s: %w", commandName(cmd), err))
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// groupCommand makes c, a command that only holds subcommands, refuse an unknown subcommand as a usage error
// (cobra would print the help and exit 0 for `lczerolens model frob`) and print its help otherwise.
func groupCommand(c *cobra.Command) *cobra.Command {
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // cobra's own default, set only on its path
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += " (did you mean " + strings.Join(s, " or ") + "?)"
		}
		return usageErrorf("%s", msg)
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	c.DisableFlagsInUseLine = true // its usage is its subcommands'
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[annNoConfig] = "true"
	return c
}

// Annotations on commands read by the root's checks.
const (
	// annExclusive lists groups of mutually exclusive flags: "fen startpos;resume force".
	annExclusive = "lczerolens/exclusive"
	// annNoConfig marks a command that reads no configuration (version, group commands), so that a bad user
	// config file does not stop it; an explicit --config is still read.
	annNoConfig = "lczerolens/no-config"
)

// mutuallyExclusive declares flags that cannot be given together. The root checks them before anything
// runs, naming the flags in one line (cobra's own check, kept for completions, never gets to fire).
func mutuallyExclusive(c *cobra.Command, names ...string) {
	c.MarkFlagsMutuallyExclusive(names...)
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	group := strings.Join(names, " ")
	if prev := c.Annotations[annExclusive]; prev != "" {
		group = prev + ";" + group
	}
	c.Annotations[annExclusive] = group
}

// validateFlags validates what cobra would otherwise report as plain errors after the persistent pre-run:
// conflicting and missing required flags.
func validateFlags(c *cobra.Command) error {
	if groups := c.Annotations[annExclusive]; groups != "" {
		for _, g := range strings.Split(groups, ";") {
			var set []string
			for _, name := range strings.Fields(g) {
				if f := c.Flags().Lookup(name); f != nil && f.Changed {
					set = append(set, "--"+name)
				}
			}
			if len(set) > 1 {
				return usageErrorf("%s: %s cannot be used together", commandName(c), strings.Join(set, " and "))
			}
		}
	}
	if err := c.ValidateRequiredFlags(); err != nil {
		return inputError(fmt.Errorf("%s: %w", commandName(c), err))
	}
	if err := c.ValidateFlagGroups(); err != nil {
		return inputError(fmt.Errorf("%s: %w", commandName(c), err))
	}
	return nil
}

// commandName is a command's path without the tool's name ("probe train"), which starts every message.
func commandName(c *cobra.Command) string {
	if !c.HasParent() {
		return c.Name()
	}
	return strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
}
