package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
)

// Config is the typed configuration every command reads. It is filled once per run by a local Viper
// instance from, in order of precedence: flags, LCZEROLENS_* environment variables, the config file, and the
// defaults below.
type Config struct {
	Model       string
	Device      string
	ORTLib      string
	Threads     int
	LogLevel    string
	BatchSize   int
	Format      string // "" on commands without --format
	HistoryFill string
	Lens        []string
	// LensOptions are the lens options set by a flag, an LCZEROLENS_* variable or the config file, by option
	// name as on the command line (save-inputs); an option not set takes each lens's own default.
	LensOptions map[string]string
	// PolicyTranspose is board.ParsePolicyTranspose's input, checked where encodings are resolved.
	PolicyTranspose string

	// sources says where each key that is not at its default came from, for messages.
	sources map[string]string
}

// defaults are the values used when nothing else sets a key; configs/lczerolens.yaml documents each one.
// An empty format means each command's own (npy for batch, json for analyse).
var defaults = map[string]any{
	"model":        "",
	"device":       "cpu",
	"ort_lib":      "",
	"threads":      0,
	"log_level":    "info",
	"batch_size":   256,
	"format":       "",
	"history_fill": "fen-only",
	"lens":         []string{"activation"},

	"policy_transpose": "planes",
}

// MaxBatchSize bounds batch_size (--batch-size). The input planes of one batch alone take 28,672 bytes per
// position (112 planes x 64 squares x 4 bytes), 448 MiB at the bound, before the activations, gradients and
// results the lenses add; larger batches do not run faster on any device we know.
const MaxBatchSize = 16384

// planeBytes is the size of one position's input planes.
const planeBytes = board.NumPlanes * 64 * 4

// threadsPerCPU bounds threads (--threads) at this many per CPU available to the process: ONNX Runtime
// starts one OS thread per unit, and beyond the cores they only add memory and contention.
const threadsPerCPU = 4

// maxThreads is the largest threads setting accepted on this machine.
func maxThreads() int { return threadsPerCPU * runtime.NumCPU() }

// ConfigKeys lists the tool's configuration keys, sorted. Lens options are keys too (see lensOptionKeys).
func ConfigKeys() []string {
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lensOptionKeys maps the config key of every lens option (save_inputs) to the option.
func lensOptionKeys() map[string]lens.Option {
	out := map[string]lens.Option{}
	for _, o := range lens.Lenses.Options() {
		out[keyOf(o.Name)] = o
	}
	return out
}

// keyOf is the config key of a flag name (batch-size -> batch_size); flagOf the reverse.
func keyOf(flag string) string { return strings.ReplaceAll(flag, "-", "_") }
func flagOf(key string) string { return strings.ReplaceAll(key, "_", "-") }

// envPrefix is the prefix of environment variables that set configuration keys (LCZEROLENS_BATCH_SIZE).
const envPrefix = "LCZEROLENS"

func envName(key string) string { return envPrefix + "_" + strings.ToUpper(key) }

// Flag annotations that decide which flags set configuration keys. A flag named like one of the tool's keys
// sets it unless marked annNotConfig (encode's --format is about planes, not results); a lens option's flag
// sets the option's key only when marked annLensOption, so that other commands' --pattern stays their own.
const (
	annNotConfig  = "lczerolens/not-config"
	annLensOption = "lczerolens/lens-option"
)

// configPath returns the config file to read: the explicit one, else the user's XDG file when it exists.
func configPath(explicit string) (string, bool) {
	if explicit != "" {
		return explicit, true
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := os.Getenv("HOME")
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

// LoadConfig builds the configuration with a local Viper instance that binds the flags (flags may be nil),
// the LCZEROLENS_* environment variables and the config file itself; it returns the file read ("" for none).
// A flag's value counts only when the user set it; unset, the key's default applies, or for a key whose
// default is empty (format) the flag's own default, so each command keeps its own.
func LoadConfig(explicitFile string, flags *pflag.FlagSet) (*Config, string, error) {
	return loadConfig(explicitFile, flags, true)
}

// defaultConfig is the configuration of nothing but the defaults.
func defaultConfig() *Config {
	cfg, _, err := loadConfig("", nil, false)
	if err != nil {
		panic(err) // the defaults are valid by construction, as TestConfigDefaults checks
	}
	return cfg
}

// loader reads typed values out of a Viper instance, naming where a bad value came from.
type loader struct {
	v     *viper.Viper
	file  string
	flags map[string]*pflag.Flag // bound flags by key
	env   bool
}

func loadConfig(explicitFile string, flags *pflag.FlagSet, env bool) (*Config, string, error) {
	l := &loader{v: viper.New(), flags: map[string]*pflag.Flag{}, env: env}
	lensKeys := lensOptionKeys()
	var keys []string
	keys = append(keys, ConfigKeys()...)
	for k := range lensKeys {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if env {
			if err := l.v.BindEnv(k, envName(k)); err != nil {
				return nil, "", fmt.Errorf("config: bind %s: %w", envName(k), err)
			}
		}
		if f := l.flagFor(flags, k, lensKeys); f != nil {
			if err := l.v.BindPFlag(k, f); err != nil {
				return nil, "", fmt.Errorf("config: bind --%s: %w", f.Name, err)
			}
			l.flags[k] = f
		}
		if d, ok := defaults[k]; ok && (d != "" || l.flags[k] == nil) {
			l.v.SetDefault(k, d)
		}
	}
	if env {
		if path, ok := configPath(explicitFile); ok {
			raw, err := os.ReadFile(path)
			if err != nil {
				return nil, "", pathError(fmt.Errorf("config: read %s: %w", path, err))
			}
			vals, err := checkConfigFile(raw)
			if err != nil {
				return nil, "", usageErrorf("config: %s: %w", path, err)
			}
			if err := l.v.MergeConfigMap(vals); err != nil {
				return nil, "", usageErrorf("config: %s: %w", path, err)
			}
			l.file = path
		}
	}
	cfg, err := l.config(lensKeys)
	if err != nil {
		return nil, "", err
	}
	return cfg, l.file, nil
}

// flagFor returns the flag that sets key, if the command has one.
func (l *loader) flagFor(flags *pflag.FlagSet, key string, lensKeys map[string]lens.Option) *pflag.Flag {
	if flags == nil {
		return nil
	}
	f := flags.Lookup(flagOf(key))
	if f == nil {
		return nil
	}
	if _, isLens := lensKeys[key]; isLens {
		if _, ok := f.Annotations[annLensOption]; !ok {
			return nil
		}
		return f
	}
	if _, ok := f.Annotations[annNotConfig]; ok {
		return nil
	}
	return f
}

// source says where key's value comes from, in Viper's order: "--batch-size", "LCZEROLENS_BATCH_SIZE",
// "config.yaml, key batch_size", or "" for the default.
func (l *loader) source(key string) string {
	if f := l.flags[key]; f != nil && f.Changed {
		return "--" + f.Name
	}
	if l.env && os.Getenv(envName(key)) != "" {
		return envName(key)
	}
	if l.file != "" && l.v.InConfig(key) {
		return l.file + ", key " + key
	}
	return ""
}

// valueError reports a bad value of key, naming the setting and where the value came from.
func (l *loader) valueError(key string, val any, problem string) error {
	shown := fmt.Sprint(val)
	if s, ok := val.(string); ok {
		shown = strconv.Quote(s)
	}
	msg := fmt.Sprintf("config: %s %s: %s", flagOf(key), shown, problem)
	if src := l.source(key); src != "" {
		msg += " (" + src + ")"
	}
	return usageErrorf("%s", msg)
}

func (l *loader) str(key string) (string, error) {
	switch x := l.v.Get(key).(type) {
	case string:
		return x, nil
	case nil:
		return "", nil
	default:
		return "", l.valueError(key, x, "want a string")
	}
}

func (l *loader) int(key string) (int, error) {
	switch x := l.v.Get(key).(type) {
	case int:
		return x, nil
	case int64:
		if x >= math.MinInt && x <= math.MaxInt {
			return int(x), nil
		}
	case float64:
		// YAML reads 2.0 as a float: a whole number is fine, 1.5 is not silently cut to 1.
		if x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
			return int(x), nil
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(x)); err == nil {
			return n, nil
		}
	default:
		return 0, l.valueError(key, x, "not an integer")
	}
	return 0, l.valueError(key, l.v.Get(key), "not an integer")
}

func (l *loader) list(key string) ([]string, error) {
	switch x := l.v.Get(key).(type) {
	case []string:
		return x, nil
	case string: // an environment variable, or "a,b" in the file
		return splitList(x), nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, l.valueError(key, x, "want a list of names")
			}
			out[i] = strings.TrimSpace(s)
		}
		return out, nil
	case nil:
		return nil, nil
	default:
		return nil, l.valueError(key, x, "want a list of names")
	}
}

// scalar is a lens option's value as the user would type it on the command line.
func (l *loader) scalar(key string) (string, error) {
	switch x := l.v.Get(key).(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	default:
		return "", l.valueError(key, x, "want a single value")
	}
}

// config reads and checks every key.
func (l *loader) config(lensKeys map[string]lens.Option) (*Config, error) {
	c := &Config{LensOptions: map[string]string{}, sources: map[string]string{}}
	for _, s := range []struct {
		dst *string
		key string
	}{{&c.Model, "model"}, {&c.Device, "device"}, {&c.ORTLib, "ort_lib"}, {&c.LogLevel, "log_level"}, {&c.Format, "format"}, {&c.HistoryFill, "history_fill"}, {&c.PolicyTranspose, "policy_transpose"}} {
		v, err := l.str(s.key)
		if err != nil {
			return nil, err
		}
		*s.dst = v
	}
	var err error
	if c.Threads, err = l.int("threads"); err != nil {
		return nil, err
	}
	if c.BatchSize, err = l.int("batch_size"); err != nil {
		return nil, err
	}
	if c.Lens, err = l.list("lens"); err != nil {
		return nil, err
	}
	for _, k := range ConfigKeys() {
		if src := l.source(k); src != "" {
			c.sources[k] = src
		}
	}
	for k, o := range lensKeys {
		if !l.v.IsSet(k) {
			continue
		}
		s, err := l.scalar(k)
		if err != nil {
			return nil, err
		}
		src := l.source(k)
		// A value from the environment or the file is checked here, where its origin is known; one from a
		// flag is checked by the lenses that read it, whose messages name the lens.
		if !strings.HasPrefix(src, "--") {
			if _, err := o.Parse(s); err != nil {
				return nil, usageErrorf("config: option %s: %v (%s)", o.Name, err, src)
			}
		}
		c.LensOptions[o.Name] = s
		c.sources[k] = src
	}
	if err := l.validate(c); err != nil {
		return nil, err
	}
	return c, nil
}

// validate checks the values' ranges, naming the setting and its source.
func (l *loader) validate(c *Config) error {
	switch c.Device {
	case "cpu", "cuda", "auto":
	default:
		return l.valueError("device", c.Device, "want cpu, cuda or auto")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return l.valueError("log_level", c.LogLevel, "want debug, info, warn or error")
	}
	switch {
	case c.Threads < 0:
		return l.valueError("threads", c.Threads, "want 0 (all cores) or more")
	case c.Threads > maxThreads():
		return l.valueError("threads", c.Threads, fmt.Sprintf("want at most %d, %d per CPU available to the process (%d)", maxThreads(), threadsPerCPU, runtime.NumCPU()))
	}
	switch {
	case c.BatchSize < 1:
		return l.valueError("batch_size", c.BatchSize, "want at least 1")
	case c.BatchSize > MaxBatchSize:
		return l.valueError("batch_size", c.BatchSize, fmt.Sprintf("want at most %d: the input planes alone would take %s (%d bytes per position), and the lenses' tensors more",
			MaxBatchSize, humanBytes(float64(c.BatchSize)*planeBytes), planeBytes))
	}
	switch c.Format {
	case "", "npy", "json":
	default:
		return l.valueError("format", c.Format, "want npy or json")
	}
	if _, err := board.ParseHistoryFill(c.HistoryFill); err != nil {
		return l.valueError("history_fill", c.HistoryFill, "want fen-only, always, no or current")
	}
	return nil
}

// humanBytes renders a byte count as 1.5 GB.
func humanBytes(n float64) string {
	for _, u := range []string{"bytes", "kB", "MB", "GB", "TB"} {
		if n < 1000 || u == "TB" {
			if u == "bytes" {
				return fmt.Sprintf("%.0f %s", n, u)
			}
			return fmt.Sprintf("%.1f %s", n, u)
		}
		n /= 1000
	}
	return ""
}

// source says where a key's value came from ("" for the default).
func (c *Config) source(key string) string { return c.sources[key] }

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
	lensKeys := lensOptionKeys()
	var unknown []string
	for k, val := range vals {
		d, known := defaults[k]
		if _, isLens := lensKeys[k]; !known && !isLens {
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
		known := ConfigKeys()
		for k := range lensKeys {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("unknown key(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return vals, nil
}
