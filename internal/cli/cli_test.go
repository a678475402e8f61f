package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// readNPYFile reads a whole NPY file; a missing or malformed file fails the test.
func readNPYFile(t *testing.T, path string) (shape []int, data []float32) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shape, data, err = npy.Read(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return shape, data
}

// parseFlags runs the command newCmd builds with args, its run step replaced, and returns the options the
// flags filled in. With wantErr it instead checks that the command fails with an error mentioning wantErr,
// and returns nil.
func parseFlags[O any](t *testing.T, newCmd func(*Factory, ...func(*O) error) *cobra.Command, args []string, wantErr string) *O {
	t.Helper()
	io, _, _, _ := TestIO()
	var got *O
	cmd := newCmd(NewFactory(io, "test"), func(o *O) error { got = o; return nil })
	cmd.SetArgs(args)
	cmd.SetOut(io.Out)
	cmd.SetErr(io.ErrOut)
	err := cmd.Execute()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error %v, want one mentioning %q", err, wantErr)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// runCLI runs the CLI in-process with env as the only configuration variables (see setEnv).
func runCLI(t testing.TB, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	io, _, out, errOut := TestIO()
	setEnv(t, env)
	code = Run(args, io)
	return code, out.String(), errOut.String()
}

// setEnv makes env the only LCZEROLENS_* variables and XDG_CONFIG_HOME of the process for the rest of the
// test (the configuration reads the process environment; an empty value counts as unset), with HOME an empty
// directory unless env sets it, so that no user config file leaks in.
func setEnv(t testing.TB, env map[string]string) {
	t.Helper()
	if _, ok := env["HOME"]; !ok {
		t.Setenv("HOME", t.TempDir())
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, envPrefix+"_") || k == "XDG_CONFIG_HOME" {
			t.Setenv(k, "")
		}
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func TestExitCodesAndOneLineErrors(t *testing.T) {
	lib := testutil.ORTLib(t)
	env := map[string]string{"LCZEROLENS_ORT_LIB": lib}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"unknown command", env, []string{"frobnicate"}, ExitUsage, "unknown command"},
		{"unknown flag", env, []string{"encode", "--frob"}, ExitUsage, "unknown flag"},
		{"bad fen field", env, []string{"encode", "--fen", "8/8/8/8/8/8/8/8 x - - 0 1"}, ExitUsage, "fen"},
		{"illegal move names move and ply", env, []string{"encode", "--startpos", "--moves", "e2e4 e7e5 e1e3"}, ExitUsage, "e1e3"},
		{"unknown lens lists known", env, []string{"analyse", "--lens", "nosuch", "--startpos"}, ExitUsage, "activation"},
		{"pattern matching nothing", env, []string{"analyse", "--lens", "activation", "--pattern", "^nosuchmodule$", "--startpos"}, ExitUsage, "nosuchmodule"},
		{"invalid pattern", env, []string{"analyse", "--lens", "activation", "--pattern", "([", "--startpos"}, ExitUsage, "regular expression"},
		{"stray lens option", env, []string{"analyse", "--lens", "activation", "--target", "value", "--startpos"}, ExitUsage, "--target"},
		{"missing model file", env, []string{"analyse", "--model", "/nonexistent/net.onnx", "--startpos"}, ExitUsage, "/nonexistent/net.onnx"},
		{"model not onnx", env, []string{"analyse", "--model", "root_test_notonnx", "--startpos"}, ExitUsage, "root_test_notonnx"},
		{"missing ort library", map[string]string{"LCZEROLENS_ORT_LIB": "/nonexistent/libonnxruntime.so"}, []string{"analyse", "--startpos"}, ExitFailure, "make ort"},
		{"bad config key", env, []string{"version", "--config", "root_test_badcfg.yaml"}, ExitUsage, "unknown key"},
		{"bad device", env, []string{"analyse", "--device", "tpu", "--startpos"}, ExitUsage, "tpu"},
		{"illegal target move", env, []string{"analyse", "--lens", "gradient", "--target", "policy:e2e5", "--startpos"}, ExitUsage, "e2e5"},
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root_test_notonnx"), []byte("this is not a network"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root_test_badcfg.yaml"), []byte("batchsize: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q lacks %q", stderr, tt.want)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "lczerolens: ") || strings.Contains(stderr, "goroutine ") {
				t.Errorf("error is not one clean line: %q", stderr)
			}
		})
	}
}
