// Package cli wires lczerolens's commands to the packages that do the work: flags and configuration in,
// board/model/lens calls, results out. It holds no chess, ONNX or analysis logic of its own.
package cli

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version is the tool version, set at build time with -ldflags "-X .../internal/cli.Version=v1.2.3".
var Version = "dev"

// toolVersion adds the VCS revision when the binary was built from a checkout.
func toolVersion() string {
	v := Version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

// NewCmdRoot builds the root command with every subcommand.
func NewCmdRoot(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lczerolens",
		Short: "Interpretability lenses for Leela Chess Zero networks",
		Long: `lczerolens runs lc0 networks through ONNX Runtime and applies lenses to them: named analyses
(activations, gradients, saliency, ...) that select network modules by a regular expression and return
named tensors per position, as JSON or NPY.`,
		Example: `  lczerolens encode --startpos --moves "e2e4 e7e5"
  lczerolens predict --model maia-1100.onnx --fen "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"
  lczerolens analyse --lens saliency --startpos
  lczerolens batch games.pgn --lens activation -o out/
  lczerolens merge out/shard-* -o out/all
  lczerolens lenses list`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateFlags(cmd); err != nil {
				return err
			}
			if !readsConfig(cmd) && f.ConfigFile == "" {
				return nil
			}
			cfg, path, err := LoadConfig(f.ConfigFile, cmd.Flags())
			if err != nil {
				return err
			}
			f.setConfig(cfg)
			if path != "" {
				f.Logger().Debug("config loaded", "file", path)
			}
			return nil
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.ConfigFile, "config", "", "config file (default $XDG_CONFIG_HOME/lczerolens/config.yaml if present)")
	pf.String("model", "", "lc0 network: weight file (.pb, .pb.gz) or ONNX (.onnx); empty = the built-in demo network")
	pf.String("device", "cpu", "execution device: cpu, cuda or auto (cuda if available, else cpu)")
	pf.String("ort-lib", "", "path to libonnxruntime.so (default: third_party/onnxruntime/ of the checkout; run \"make ort\")")
	pf.Int("threads", 0, fmt.Sprintf("intra-op threads for ONNX Runtime (0 = one per CPU the process may use, its affinity; at most %d per CPU)", threadsPerCPU))
	pf.String("log-level", "info", "log level: debug, info, warn or error")
	cmd.SetFlagErrorFunc(flagError)

	// The command set, listed explicitly.
	cmd.AddCommand(
		NewCmdVersion(f),
		NewCmdEncode(f),
		NewCmdPredict(f),
		NewCmdAnalyse(f),
		NewCmdBatch(f),
		NewCmdProbe(f),
		NewCmdSAE(f),
		NewCmdRender(f),
		NewCmdMerge(f),
		NewCmdLenses(f),
		NewCmdModel(f),
		NewCmdConvert(f),
		NewCmdDirection(f),
		NewCmdPuzzles(f),
		NewCmdCompare(f),
		NewCmdPlay(f),
		NewCmdCorrupt(f),
		NewCmdServe(f),
		NewCmdReport(f),
	)
	// Cobra's usage errors become UsageErrors where cobra makes them: argument validators are wrapped, and
	// commands that only hold subcommands refuse unknown ones (the completion command included, made here
	// rather than at Execute, after the streams it captures are set).
	cmd.SetIn(f.IO.In)
	cmd.SetOut(f.IO.Out)
	cmd.SetErr(f.IO.ErrOut)
	cmd.InitDefaultCompletionCmd()
	strictHelp(cmd)
	groupCommands(cmd)
	wrapArgs(cmd)
	fitHelp(cmd)
	return cmd
}

// groupCommands makes every command that only holds subcommands a group command (see groupCommand).
func groupCommands(c *cobra.Command) {
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		groupCommand(c)
	}
	for _, sub := range c.Commands() {
		groupCommands(sub)
	}
}

// strictHelp makes `lczerolens help TOPIC` refuse a topic that names no command (exit 2), as an unknown
// command is refused; cobra's own help command prints the usage and exits 0, which hides a typo in a script.
func strictHelp(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	help, _, err := root.Find([]string{"help"})
	if err != nil || help.Name() != "help" {
		return
	}
	help.Run = nil
	help.RunE = func(c *cobra.Command, args []string) error {
		target, rest, _ := c.Root().Find(args)
		if len(rest) > 0 {
			msg := fmt.Sprintf("help: unknown help topic %q", strings.Join(args, " "))
			if target.SuggestionsMinimumDistance <= 0 {
				target.SuggestionsMinimumDistance = 2 // cobra's own default, set only on its path
			}
			if s := target.SuggestionsFor(rest[0]); len(s) > 0 {
				msg += " (did you mean " + strings.Join(s, " or ") + "?)"
			}
			return usageErrorf("%s: see %q for the commands", msg, c.Root().Name()+" help")
		}
		target.InitDefaultHelpFlag()
		target.InitDefaultVersionFlag()
		if err := target.Help(); err != nil {
			return fmt.Errorf("help: write: %w", err)
		}
		return nil
	}
}

// readsConfig reports whether cmd reads the configuration. Version, help, completion and the group commands
// do not, so a bad user config file cannot stop them (an explicit --config is still read).
func readsConfig(cmd *cobra.Command) bool {
	if cmd.Annotations[annNoConfig] != "" {
		return false
	}
	switch cmd.Name() {
	case "help", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
		return false
	}
	return !(cmd.HasParent() && cmd.Parent().Name() == "completion")
}

// NewCmdVersion builds `lczerolens version`.
func NewCmdVersion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:         "version",
		Short:       "Print the tool version",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{annNoConfig: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := fmt.Fprintf(f.IO.Out, "lczerolens %s\n", toolVersion()); err != nil {
				return fmt.Errorf("version: write: %w", err)
			}
			return nil
		},
	}
}

// Main runs the CLI with the process's streams, arguments and environment and returns the exit code. It is
// the one place where errors become exit codes and one-line messages.
func Main(args []string) int {
	return Run(args, SystemIO())
}

// Run is Main over given streams (tests call it directly; the environment is the process's, which the
// configuration reads through Viper).
func Run(args []string, io *IOStreams) (code int) {
	f := NewFactory(io, toolVersion())
	defer func() {
		// A bug must still end as one line, not a stack trace; results already written stay on disk.
		if r := recover(); r != nil {
			fmt.Fprintf(io.ErrOut, "lczerolens: internal error: %v (please report it)\n", r)
			code = ExitFailure
		}
	}()
	root := NewCmdRoot(f)
	root.SetArgs(args)
	err := root.Execute()
	err = errors.Join(err, f.Close())
	if err != nil {
		fmt.Fprintf(io.ErrOut, "lczerolens: %s\n", oneLine(err.Error()))
	}
	return ExitCode(err)
}
