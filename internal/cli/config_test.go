package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("batch_size: 32\ndevice: auto\nthreads: 3\nlens: [gradient]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	newFlags := func(args ...string) *pflag.FlagSet {
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		fs.Int("batch-size", 256, "")
		fs.String("device", "cpu", "")
		fs.StringSlice("lens", nil, "")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return fs
	}
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		args    []string
		batch   int
		device  string
		threads int
		lens    string
	}{
		{name: "defaults", batch: 256, device: "cpu", lens: "activation"},
		{name: "file", file: file, batch: 32, device: "auto", threads: 3, lens: "gradient"},
		{name: "env over file", file: file, env: map[string]string{"LCZEROLENS_BATCH_SIZE": "64", "LCZEROLENS_LENS": "saliency,gradient"}, batch: 64, device: "auto", threads: 3, lens: "saliency,gradient"},
		{name: "flag over env", file: file, env: map[string]string{"LCZEROLENS_BATCH_SIZE": "64"}, args: []string{"--batch-size", "8", "--lens", "activation"}, batch: 8, device: "auto", threads: 3, lens: "activation"},
		{name: "unset flag keeps file", file: file, args: []string{}, batch: 32, device: "auto", threads: 3, lens: "gradient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			cfg, _, err := LoadConfig(tt.file, newFlags(tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.BatchSize != tt.batch || cfg.Device != tt.device || cfg.Threads != tt.threads || strings.Join(cfg.Lens, ",") != tt.lens {
				t.Errorf("got batch=%d device=%s threads=%d lens=%v, want %d %s %d %s", cfg.BatchSize, cfg.Device, cfg.Threads, cfg.Lens, tt.batch, tt.device, tt.threads, tt.lens)
			}
		})
	}
}

func TestConfigXDGFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "lczerolens"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lczerolens", "config.yaml"), []byte("format: json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	setEnv(t, map[string]string{"XDG_CONFIG_HOME": dir})
	cfg, path, err := LoadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Format != "json" || path == "" {
		t.Errorf("XDG config not read: format=%s path=%q", cfg.Format, path)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, body, want string }{
		{"unknown keys named", "batch_size: 3\nbatchsize: 4\nmodle: x\n", "unknown key(s) batchsize, modle"},
		{"bad device", "device: tpu\n", `device "tpu"`},
		{"bad yaml", "batch_size: [\n", "invalid yaml"},
		{"bad batch", "batch_size: 0\n", "batch-size 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".yaml")
			if err := os.WriteFile(file, []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			setEnv(t, nil)
			_, _, err := LoadConfig(file, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want error containing %q", err, tt.want)
			}
			if ExitCode(err) != ExitUsage {
				t.Errorf("exit code %d, want %d", ExitCode(err), ExitUsage)
			}
		})
	}
}

// TestShippedConfigMatchesDefaults keeps configs/lczerolens.yaml complete and in step with the defaults.
func TestShippedConfigMatchesDefaults(t *testing.T) {
	file := filepath.Join("..", "..", "configs", "lczerolens.yaml")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := checkConfigFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ConfigKeys() {
		if _, ok := vals[k]; !ok && defaults[k] != "" {
			t.Errorf("configs/lczerolens.yaml lacks key %q", k)
		}
	}
	setEnv(t, nil)
	cfg, _, err := LoadConfig(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	def := defaultConfig()
	if strings.Join(cfg.Lens, ",") != strings.Join(def.Lens, ",") || cfg.BatchSize != def.BatchSize || cfg.Device != def.Device || cfg.Format != def.Format || cfg.HistoryFill != def.HistoryFill {
		t.Errorf("shipped config %+v differs from defaults %+v", cfg, def)
	}
}

// commandFlags parses args with the flags of the CLI command at path, as the root does before loading.
func commandFlags(t *testing.T, path []string, args ...string) *pflag.FlagSet {
	t.Helper()
	root := NewCmdRoot(NewFactory(&IOStreams{}, "test"))
	cmd, _, err := root.Find(path)
	if err != nil || cmd == root {
		t.Fatalf("no command %v: %v", path, err)
	}
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return cmd.Flags()
}

// TestConfigLayers checks flags > environment > file > defaults through the flags of the real commands,
// for the tool's keys and the lens options, and that each command binds only the flags that mean the key.
func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	body := "format: npy\ntarget: policy:e2e4\nsave_inputs: true\nepsilon: 0.01\npattern: '^block0/'\nthreads: 2.0\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	analyse := []string{"analyse"}
	tests := []struct {
		name    string
		path    []string
		env     map[string]string
		args    []string
		format  string
		options map[string]string // lens options expected (all of them)
		threads int
	}{
		{name: "file", path: analyse, format: "npy", threads: 2,
			options: map[string]string{"target": "policy:e2e4", "save-inputs": "true", "epsilon": "0.01", "pattern": "^block0/"}},
		{name: "env over file", path: analyse, env: map[string]string{"LCZEROLENS_TARGET": "wdl:w", "LCZEROLENS_FORMAT": "json", "LCZEROLENS_SAVE_INPUTS": "false"}, format: "json", threads: 2,
			options: map[string]string{"target": "wdl:w", "save-inputs": "false", "epsilon": "0.01", "pattern": "^block0/"}},
		{name: "flags over env", path: analyse, env: map[string]string{"LCZEROLENS_TARGET": "wdl:w", "LCZEROLENS_THREADS": "1"}, args: []string{"--target", "value", "--format", "json", "--epsilon", "0.5"}, format: "json", threads: 1,
			options: map[string]string{"target": "value", "save-inputs": "true", "epsilon": "0.5", "pattern": "^block0/"}},
		// encode's --format is about planes, probe train's --pattern about the modules probed: neither sets
		// the key, which keeps the file's value.
		{name: "encode format is its own", path: []string{"encode"}, args: []string{"--format", "json"}, format: "npy", threads: 2,
			options: map[string]string{"target": "policy:e2e4", "save-inputs": "true", "epsilon": "0.01", "pattern": "^block0/"}},
		{name: "probe pattern is its own", path: []string{"probe", "train"}, args: []string{"--pattern", "^x$", "--threads", "3"}, format: "npy", threads: 3,
			options: map[string]string{"target": "policy:e2e4", "save-inputs": "true", "epsilon": "0.01", "pattern": "^block0/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			cfg, _, err := LoadConfig(file, commandFlags(t, tt.path, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Format != tt.format || cfg.Threads != tt.threads {
				t.Errorf("format %q threads %d, want %q %d", cfg.Format, cfg.Threads, tt.format, tt.threads)
			}
			if !maps.Equal(cfg.LensOptions, tt.options) {
				t.Errorf("lens options %v, want %v", cfg.LensOptions, tt.options)
			}
		})
	}
	// Without the file, each command keeps its own --format default; a command without one has none.
	for path, want := range map[string]string{"analyse": "json", "batch": "npy", "encode": "", "predict": ""} {
		setEnv(t, nil)
		cfg, _, err := LoadConfig("", commandFlags(t, strings.Fields(path)))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Format != want || len(cfg.LensOptions) != 0 {
			t.Errorf("%s: format %q, lens options %v; want %q and none", path, cfg.Format, cfg.LensOptions, want)
		}
	}
}

// TestConfigValueErrors checks that a bad value names the setting and where it came from, and the bounds.
func TestConfigValueErrors(t *testing.T) {
	dir := t.TempDir()
	n := 0
	file := func(body string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("c%d.yaml", n))
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		file string
		env  map[string]string
		args []string
		want []string // substrings of the one-line error; nil: no error
	}{
		{name: "env not an integer", env: map[string]string{"LCZEROLENS_BATCH_SIZE": "abc"}, want: []string{`batch-size "abc": not an integer`, "(LCZEROLENS_BATCH_SIZE)"}},
		{name: "fractional threads in file", file: file("threads: 1.5\n"), want: []string{"threads 1.5: not an integer", "key threads"}},
		{name: "whole float is an integer", file: file("threads: 2.0\n")},
		{name: "string where a number goes", file: file("batch_size: many\n"), want: []string{`batch-size "many": not an integer`, "key batch_size"}},
		{name: "list of numbers", file: file("lens: [1, 2]\n"), want: []string{"want a list of names", "key lens"}},
		{name: "bad device from env", env: map[string]string{"LCZEROLENS_DEVICE": "tpu"}, want: []string{`device "tpu"`, "(LCZEROLENS_DEVICE)"}},
		{name: "bad device from flag", args: []string{"--device", "tpu"}, want: []string{`device "tpu"`, "(--device)"}},
		{name: "bad lens option in file", file: file("epsilon: -2\n"), want: []string{"option epsilon", "-2: want a finite number > 0", "key epsilon"}},
		{name: "bad lens option in env", env: map[string]string{"LCZEROLENS_TARGET": "banana"}, want: []string{"option target", `"banana"`, "(LCZEROLENS_TARGET)"}},
		{name: "bad bool lens option", env: map[string]string{"LCZEROLENS_PER_SQUARE": "yes please"}, want: []string{"option per-square", "(LCZEROLENS_PER_SQUARE)"}},
		{name: "batch at the bound", args: []string{"--batch-size", strconv.Itoa(MaxBatchSize)}},
		{name: "batch past the bound", args: []string{"--batch-size", strconv.Itoa(MaxBatchSize + 1)}, want: []string{fmt.Sprintf("want at most %d", MaxBatchSize), "(--batch-size)"}},
		{name: "huge batch names its bytes", env: map[string]string{"LCZEROLENS_BATCH_SIZE": "1000000000"}, want: []string{"28.7 TB", "28672 bytes per position"}},
		{name: "threads at the bound", args: []string{"--threads", strconv.Itoa(maxThreads())}},
		{name: "threads past the bound", args: []string{"--threads", strconv.Itoa(maxThreads() + 1)}, want: []string{fmt.Sprintf("want at most %d", maxThreads()), "(--threads)"}},
		{name: "bad history fill", file: file("history_fill: sometimes\n"), want: []string{`history-fill "sometimes"`, "key history_fill"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			_, _, err := LoadConfig(tt.file, commandFlags(t, []string{"batch"}, tt.args...))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one naming %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if ExitCode(err) != ExitUsage || strings.Contains(err.Error(), "\n") {
				t.Errorf("exit code %d for %q, want %d and one line", ExitCode(err), err, ExitUsage)
			}
		})
	}
}

// TestUserConfigSparesVersionHelpCompletion: a bad key in the user's config file stops the commands that
// read the configuration, naming the file, but not version, help or completion; an explicit --config is
// always read.
func TestUserConfigSparesVersionHelpCompletion(t *testing.T) {
	xdg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(xdg, "lczerolens"), 0o755); err != nil {
		t.Fatal(err)
	}
	user := filepath.Join(xdg, "lczerolens", "config.yaml")
	if err := os.WriteFile(user, []byte("batchsize: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"XDG_CONFIG_HOME": xdg}
	for _, args := range [][]string{{"version"}, {"help"}, {"help", "batch"}, {"batch", "--help"}, {"completion", "bash"}, {"lenses"}, {"__complete", "analyse", "--le"}} {
		if code, stdout, stderr := runCLI(t, env, args...); code != 0 || stdout == "" {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q; want 0 and output", args, code, len(stdout), stderr)
		}
	}
	for _, args := range [][]string{{"encode", "--startpos"}, {"lenses", "list"}, {"version", "--config", user}} {
		if code, _, stderr := runCLI(t, env, args...); code != ExitUsage || !strings.Contains(stderr, user) || !strings.Contains(stderr, "batchsize") {
			t.Errorf("%v: exit %d, stderr %q; want %d naming %s and the key", args, code, stderr, ExitUsage, user)
		}
	}
}

// TestAnalyseHonoursConfig runs analyse with the format key and lens options from the config file.
func TestAnalyseHonoursConfig(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("format: npy\nlens: [saliency]\ntarget: policy:e2e4\nnormalize: max-abs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The format key makes analyse write NPY, which needs a directory.
	if code, _, stderr := runCLI(t, env, "analyse", "--startpos", "--config", file); code != ExitUsage || !strings.Contains(stderr, "--format npy needs -o DIR") {
		t.Fatalf("exit %d, stderr %q: the format key was not honoured", code, stderr)
	}
	out := filepath.Join(dir, "out")
	if code, _, stderr := runCLI(t, env, "analyse", "--startpos", "--config", file, "-o", out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Lens struct {
			Name    string            `json:"name"`
			Options map[string]string `json:"options"`
		} `json:"lens"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.Lens.Name != "saliency" || m.Lens.Options["target"] != "policy:e2e4" || m.Lens.Options["normalize"] != "max-abs" {
		t.Errorf("manifest lens %+v: want saliency with the file's target and normalize", m.Lens)
	}
	// Flags win: --format json prints the envelope, --target overrides the file's.
	code, stdout, stderr := runCLI(t, env, "analyse", "--startpos", "--config", file, "--format", "json", "--target", "value")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var envl struct {
		Lens struct {
			Options map[string]string `json:"options"`
		} `json:"lens"`
	}
	if err := json.Unmarshal([]byte(stdout), &envl); err != nil {
		t.Fatal(err)
	}
	if envl.Lens.Options["target"] != "value" || envl.Lens.Options["normalize"] != "max-abs" {
		t.Errorf("envelope lens options %v: want target value (flag) and normalize max-abs (file)", envl.Lens.Options)
	}
	// A lens option in the file that the chosen lens lacks is a default for other lenses, not an error.
	if code, _, stderr := runCLI(t, env, "analyse", "--startpos", "--config", file, "--format", "json", "--lens", "activation"); code != 0 {
		t.Errorf("file's target refused for lens activation: exit %d: %s", code, stderr)
	}
}
