package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/model"
)

// Factory hands commands their dependencies, built lazily so that commands which need no network (encode,
// lenses list, version) never load ONNX Runtime.
type Factory struct {
	IO      *IOStreams
	Version string

	// ConfigFile is the --config flag, set by the root command before any command runs.
	ConfigFile string

	mu       sync.Mutex
	cfg      *Config
	sessions *model.SessionCache
	nets     map[string]*model.Network
	logger   *slog.Logger
}

// NewFactory returns a Factory over the given streams.
func NewFactory(io *IOStreams, version string) *Factory {
	return &Factory{IO: io, Version: version, nets: map[string]*model.Network{}}
}

// Config returns the loaded configuration; the root command loads it before the command runs (commands
// that read none, and tests that build a command alone, get the defaults).
func (f *Factory) Config() *Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg == nil {
		f.cfg = defaultConfig()
	}
	return f.cfg
}

func (f *Factory) setConfig(cfg *Config) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg = cfg
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[cfg.LogLevel]
	f.logger = slog.New(slog.NewTextHandler(f.IO.ErrOut, &slog.HandlerOptions{Level: level}))
}

// Logger returns the logger writing to stderr at the configured level.
func (f *Factory) Logger() *slog.Logger {
	f.Config()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logger == nil {
		f.logger = slog.New(slog.NewTextHandler(f.IO.ErrOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return f.logger
}

// ORTLibraryCandidates lists where the ONNX Runtime library is looked for, in order: the configured path
// (flag, environment or file) alone when set; else third_party/onnxruntime/libonnxruntime.so in the current
// directory or any parent (a checkout), then beside the binary and in the checkout the binary was built in.
func (f *Factory) ORTLibraryCandidates() []string {
	if p := f.Config().ORTLib; p != "" {
		return []string{p}
	}
	const rel = "third_party/onnxruntime/libonnxruntime.so"
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if p = filepath.Clean(p); !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				add(filepath.Join(dir, rel))
				break
			}
			if filepath.Dir(dir) == dir {
				add(filepath.Join(wd, rel))
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dir := filepath.Dir(exe)
		add(filepath.Join(dir, "libonnxruntime.so"))
		add(filepath.Join(dir, "..", rel))
	}
	return out
}

// Sessions initialises ONNX Runtime once and returns the session cache for the configured device and threads.
func (f *Factory) Sessions() (*model.SessionCache, error) {
	cfg := f.Config()
	candidates := f.ORTLibraryCandidates()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sessions != nil {
		return f.sessions, nil
	}
	if _, err := model.InitRuntime(candidates); err != nil {
		return nil, err
	}
	rt, err := model.NewSessionCache(model.SessionOptions{Device: model.Device(cfg.Device), Threads: cfg.Threads})
	if err != nil {
		return nil, err
	}
	if n := rt.Notice(); n != "" {
		fmt.Fprintln(f.IO.ErrOut, "notice: "+n)
	}
	f.sessions = rt
	return rt, nil
}

// Network loads the configured model (or the embedded demo network, with a notice) once per path.
func (f *Factory) Network() (*model.Network, error) {
	return f.NetworkAt(f.Config().Model)
}

// NetworkAt loads the network at path ("" = the demo network) once, for commands that run more than one.
func (f *Factory) NetworkAt(path string) (*model.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.nets[path]; ok {
		return n, nil
	}
	var n *model.Network
	if path == "" {
		fmt.Fprintln(f.IO.ErrOut, "notice: no --model given: using the built-in demo network (material-count toy, not a chess engine)")
		n = model.Demo()
	} else {
		var err error
		if n, err = model.Load(path); err != nil {
			// A path that is wrong, or a file that is no network, is the user's; a failing disk is not.
			return nil, pathError(err)
		}
	}
	f.nets[path] = n
	return n, nil
}

// netSession is what running a network needs: the network, the runtime, and how positions are encoded for it.
type netSession struct {
	net *model.Network
	rt  *model.SessionCache
	enc encoding
	// ctx, when set, stops the passes an engine runs before it exists (ablation's --mean-from averaging).
	ctx context.Context
}

// Session loads the configured network, resolves its input encoding (--input-format against the network's
// own) and starts ONNX Runtime, in that order so input errors come before the runtime is loaded.
func (f *Factory) Session(inputFormat string) (*netSession, error) {
	return f.SessionFor(f.Config().Model, inputFormat)
}

// SessionFor is Session for the network at path rather than the configured one (commands that compare
// several networks).
func (f *Factory) SessionFor(path, inputFormat string) (*netSession, error) {
	return f.sessionWith(f.Config(), path, inputFormat)
}

// sessionWith is SessionFor with the encoding settings of cfg rather than the command's configuration
// (serve takes them per request).
func (f *Factory) sessionWith(cfg *Config, path, inputFormat string) (*netSession, error) {
	net, err := f.NetworkAt(path)
	if err != nil {
		return nil, err
	}
	enc, err := resolveEncoding(cfg, inputFormat, net)
	if err != nil {
		return nil, err
	}
	rt, err := f.Sessions()
	if err != nil {
		return nil, err
	}
	return &netSession{net: net, rt: rt, enc: enc}, nil
}

// engine prepares lenses on the session; a lens that cannot run on the network is an input error, a failure
// to build the run is not.
func (s *netSession) engine(specs []lens.Spec, savePlanes bool, keep ...string) (*lens.Engine, error) {
	if err := s.lensReferences(specs); err != nil {
		return nil, err
	}
	eng, err := lens.NewEngine(s.rt, s.net, specs, lens.EngineOptions{SavePlanes: savePlanes, Keep: keep})
	if err != nil {
		return nil, engineError(err)
	}
	return eng, nil
}

// engine1 prepares lenses that need no reference set (those lensReferences fills in).
func (s *netSession) engine1(specs []lens.Spec) (*lens.Engine, error) {
	eng, err := lens.NewEngine(s.rt, s.net, specs, lens.EngineOptions{})
	if err != nil {
		return nil, engineError(err)
	}
	return eng, nil
}

// Close releases ONNX Runtime sessions; safe to call when nothing was built.
func (f *Factory) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	if f.sessions != nil {
		errs = append(errs, f.sessions.Close())
		f.sessions = nil
		errs = append(errs, model.ShutdownRuntime())
	}
	return errors.Join(errs...)
}
