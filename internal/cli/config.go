package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Config is the typed configuration every command reads. It is filled once per run from, in order of
// precedence: flags, LCZEROLENS_* environment variables, the config file, and the defaults below.
type Config struct {
	Model       string   `mapstructure:"model"`
	Device      string   `mapstructure:"device"`
	ORTLib      string   `mapstructure:"ort_lib"`
	Threads     int      `mapstructure:"threads"`
	LogLevel    string   `mapstructure:"log_level"`
	BatchSize   int      `mapstructure:"batch_size"`
	Format      string   `mapstructure:"format"`
	HistoryFill string   `mapstructure:"history_fill"`
	Lens        []string `mapstructure:"lens"`

	// PolicyTranspose is board.ParsePolicyTranspose's input, checked where encodings are resolved.
	PolicyTranspose string `mapstructure:"policy_transpose"`
}

// defaults are the values used when nothing else sets a key; configs/lczerolens.yaml documents each one.
var defaults = map[string]any{
	"model":        "",
	"device":       "cpu",
	"ort_lib":      "",
	"threads":      0,
	"log_level":    "info",
	"batch_size":   256,
	"format":       "npy",
	"history_fill": "fen-only",
	"lens":         []string{"activation"},

	"policy_transpose": "planes",
}

// ConfigKeys lists every configuration key, sorted.
func ConfigKeys() []string {
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// envPrefix is the prefix of environment variables that set configuration keys (LCZEROLENS_BATCH_SIZE).
const envPrefix = "LCZEROLENS"

// configPath returns the config file to read: the explicit one, else the user's XDG file when it exists.
func configPath(explicit string, getenv func(string) string) (string, bool) {
	if explicit != "" {
		return explicit, true
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return "", false
		}
		dir = filepath.Join(home, ".config")
	}
	p := filepath.Join(dir, "lczerolens", "config.yaml")
	if _, err := os.Stat(p); err == nil {
		return p, true
	}
	return "", false
}

// LoadConfig builds the configuration from a local Viper instance. flags may be nil; only flags whose name
// (with '-' as '_') is a config key are bound, and only when the user set them, so a flag's own default never
// hides the environment or the file.
func LoadConfig(explicitFile string, flags *pflag.FlagSet, getenv func(string) string) (*Config, string, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	for _, k := range ConfigKeys() {
		env := envPrefix + "_" + strings.ToUpper(k)
		if val := getenv(env); val != "" {
			v.Set(k, envValue(k, val))
		}
	}
	path, ok := configPath(explicitFile, getenv)
	if ok {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, "", usageErrorf("config: read %s: %w", path, err)
		}
		fileVals, err := checkConfigFile(raw)
		if err != nil {
			return nil, "", usageErrorf("config: %s: %w", path, err)
		}
		for k, val := range fileVals {
			// The environment outranks the file.
			if getenv(envPrefix+"_"+strings.ToUpper(k)) == "" {
				v.Set(k, val)
			}
		}
	}
	if flags != nil {
		flags.Visit(func(f *pflag.Flag) {
			key := strings.ReplaceAll(f.Name, "-", "_")
			if _, known := defaults[key]; !known {
				return
			}
			if sv, isSlice := f.Value.(pflag.SliceValue); isSlice {
				v.Set(key, sv.GetSlice())
				return
			}
			v.Set(key, f.Value.String())
		})
	}
	cfg := &Config{}
	if err := v.Unmarshal(cfg); err != nil {
		return nil, "", usageErrorf("config: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return nil, "", err
	}
	return cfg, path, nil
}

// envValue turns an environment string into the key's type (lists are comma-separated).
func envValue(key, val string) any {
	if _, isList := defaults[key].([]string); isList {
		return splitList(val)
	}
	return val
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// checkConfigFile parses a YAML config and rejects keys the tool does not know, naming them.
func checkConfigFile(raw []byte) (map[string]any, error) {
	vals := map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&vals); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("invalid yaml: %w", err)
	}
	var unknown []string
	for k, val := range vals {
		d, known := defaults[k]
		if !known {
			unknown = append(unknown, k)
			continue
		}
		if val == nil {
			delete(vals, k)
			continue
		}
		if _, isList := d.([]string); isList {
			if s, isStr := val.(string); isStr {
				vals[k] = splitList(s)
			} else if reflect.TypeOf(val).Kind() != reflect.Slice {
				return nil, fmt.Errorf("key %q: want a list", k)
			}
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown key(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(ConfigKeys(), ", "))
	}
	return vals, nil
}

func (c *Config) validate() error {
	switch c.Device {
	case "cpu", "cuda", "auto":
	default:
		return usageErrorf("config: device %q: want cpu, cuda or auto", c.Device)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return usageErrorf("config: log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.Threads < 0 {
		return usageErrorf("config: threads %d: want 0 (all cores) or more", c.Threads)
	}
	if c.BatchSize < 1 {
		return usageErrorf("config: batch-size %d: want at least 1", c.BatchSize)
	}
	switch c.Format {
	case "npy", "json":
	default:
		return usageErrorf("config: format %q: want npy or json", c.Format)
	}
	return nil
}
