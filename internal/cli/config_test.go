package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
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
