package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/web"
)

// ServeOptions are the inputs of `lczerolens serve`.
type ServeOptions struct {
	Factory     *Factory
	Port        int
	Listen      string
	Concurrency int
	MaxBody     int64
	// MaxEngines bounds the lens configurations kept warm (each holds prepared ONNX Runtime sessions).
	MaxEngines int
	// Interrupt stops the server when done; nil means SIGINT/SIGTERM (tests pass their own).
	Interrupt context.Context
	// Listening is told the address served once the listener is open (tests read the port from it).
	Listening func(addr string)
}

// NewCmdServe builds `lczerolens serve`.
func NewCmdServe(f *Factory, runF ...func(*ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a local web explorer and a JSON API (POST /api/analyse) for one network",
		Long: `Serve a web page for exploring one network (paste a FEN or PGN, step through the moves, pick
a lens and its options, see heatmaps, top moves and attention rows on the board) and a JSON API:

  POST /api/analyse  body {"fen": "...", "moves": "e2e4 e7e5", "lens": "saliency", ...}: the fields
                     are analyse's flags (fen, startpos, moves, lens, every lens option, top,
                     corrupt-fen, corrupt-moves, save-planes, history-fill, input-format,
                     policy-transpose; "-" or "_" in names); the answer is the envelope of
                     "analyse --format json"
  POST /api/board    body {"fen", "heat": [64 values, a1 first], "arrows": ["e2e4"], "title"}: SVG
  GET  /api/lenses   the lenses and their options

Each lens configuration is prepared once and kept warm, so later positions answer in milliseconds.
Bad requests get 400 and {"error": "..."}. Listens on 127.0.0.1 unless --listen says otherwise;
fields naming files on the server (probe, direction, mean-from) are refused when it is not loopback.`,
		Example: `  lczerolens serve --model maia-1100.onnx
  lczerolens serve --model maia-1100.onnx --port 9000 --listen 0.0.0.0
  curl localhost:8080/api/analyse -d '{"lens":"saliency","fen":"8/8/8/4k3/8/8/4P3/4K3 w - - 0 1"}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runServe(opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&opts.Port, "port", 8080, "TCP port (0 = any free port, printed at start)")
	fl.StringVar(&opts.Listen, "listen", "127.0.0.1", "address to listen on (0.0.0.0: every interface)")
	fl.IntVar(&opts.Concurrency, "concurrency", 2, "analyses run at once; more wait (up to 256, then 503)")
	fl.Int64Var(&opts.MaxBody, "max-body", web.DefaultMaxBody, "largest request body in bytes")
	fl.IntVar(&opts.MaxEngines, "max-lens-configs", 32, "lens configurations kept warm; more are refused")
	return cmd
}

func runServe(opts *ServeOptions) error {
	switch {
	case opts.Port < 0 || opts.Port > 65535:
		return usageErrorf("serve: --port %d: want 0-65535", opts.Port)
	case opts.Concurrency < 1:
		return usageErrorf("serve: --concurrency %d: want 1 or more", opts.Concurrency)
	case opts.MaxBody < 1024:
		return usageErrorf("serve: --max-body %d: want 1024 bytes or more", opts.MaxBody)
	case opts.MaxEngines < 1:
		return usageErrorf("serve: --max-lens-configs %d: want 1 or more", opts.MaxEngines)
	}
	f := opts.Factory
	// Load the network and ONNX Runtime now: a wrong --model is said before anything listens.
	sess, err := f.Session("")
	if err != nil {
		return err
	}
	h, err := opts.handler()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(opts.Listen, strconv.Itoa(opts.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return inputError(fmt.Errorf("serve: listen on %s: %w (another server on that port? try --port)", addr, err))
	}
	ctx := opts.Interrupt
	if ctx == nil {
		var stop func()
		ctx, stop = signalContext()
		defer stop()
	}
	fmt.Fprintf(f.IO.ErrOut, "serving %s on http://%s/ (Ctrl-C stops)\n", sess.net.Path, ln.Addr())
	if opts.Listening != nil {
		opts.Listening(ln.Addr().String())
	}
	if err := web.Serve(ctx, ln, h, 10*time.Second); err != nil {
		return err
	}
	var sig *signalError
	if errors.As(context.Cause(ctx), &sig) {
		return &serveStopped{sig: sig}
	}
	return nil
}

// serveStopped is a server shut down by a signal: it finished the requests in flight, so the message is
// brief, and the exit status is the signal's.
type serveStopped struct{ sig *signalError }

func (e *serveStopped) Error() string {
	name := map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[e.sig.sig]
	if name == "" {
		name = e.sig.sig.String()
	}
	return "serve: stopped by " + name + " after answering the requests in flight"
}

func (e *serveStopped) ExitCode() int {
	return (&interruptedError{cause: e.sig}).ExitCode()
}

// handler builds the web server over the analyse command's code path.
func (opts *ServeOptions) handler() (*web.Server, error) {
	f := opts.Factory
	cache := &engineCache{max: opts.MaxEngines, m: map[string]*warmEngine{}}
	base := f.Config()
	files := loopback(opts.Listen)
	analyser := func(_ context.Context, fields map[string]json.RawMessage) ([]byte, error) {
		aopts, cfg, err := analyseRequest(f, base, fields, files)
		if err != nil {
			return nil, err
		}
		a, err := f.analyse(aopts, cfg, cache.engine)
		if err != nil {
			return nil, err
		}
		env := a.env
		env.Results = resultsJSON(a.results, 0)
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(env); err != nil {
			return nil, fmt.Errorf("serve: encode envelope: %w", err)
		}
		return buf.Bytes(), nil
	}
	model := base.Model
	if model == "" {
		model = "built-in demo network"
	}
	return web.New(web.Options{
		Analyse:     analyser,
		BadRequest:  func(err error) bool { return ExitCode(err) == ExitUsage },
		Model:       model,
		MaxBody:     opts.MaxBody,
		Concurrency: opts.Concurrency,
	})
}

// serveRefused are analyse's flags a request may not set: they name files on the server or a format other
// than the JSON envelope.
var serveRefused = map[string]bool{"output": true, "force": true, "svg": true}

// serveFileFields are the lens options that name a file on the server's machine. They are read only when
// the server listens on a loopback address: anyone else who can reach it could make it read any file.
var serveFileFields = map[string]bool{"probe": true, "direction": true, "mean-from": true}

// loopback reports whether addr ("" means the default, 127.0.0.1) is reachable from this machine alone.
func loopback(addr string) bool {
	if addr == "" || addr == "localhost" {
		return true
	}
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// analyseRequest turns an API request into analyse's options and a configuration: every field is set on a
// fresh analyse command's flags, so that the API takes exactly the flags' names, types and checks.
func analyseRequest(f *Factory, base *Config, fields map[string]json.RawMessage, files bool) (*AnalyseOptions, *Config, error) {
	var opts *AnalyseOptions
	cmd := NewCmdAnalyse(f, func(o *AnalyseOptions) error { opts = o; return nil })
	fl := cmd.Flags()
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		name := flagOf(k)
		flag := fl.Lookup(name)
		if flag == nil || serveRefused[name] {
			return nil, nil, usageErrorf("serve: request field %q is not an analyse option (see lczerolens analyse --help)", k)
		}
		if serveFileFields[name] && !files {
			return nil, nil, usageErrorf("serve: request field %q names a file on the server: read only when serve listens on 127.0.0.1", k)
		}
		val, err := flagValue(fields[k])
		if err != nil {
			return nil, nil, usageErrorf("serve: request field %q: %v", k, err)
		}
		if name == "format" {
			if val != "json" {
				return nil, nil, usageErrorf("serve: request field \"format\": the API answers json only")
			}
			continue
		}
		if err := fl.Set(name, val); err != nil {
			return nil, nil, usageErrorf("serve: request field %q: %v", k, err)
		}
	}
	cmd.SetArgs(nil)
	// RunE fills corruptFENSet from the flags, as on the command line.
	if err := cmd.RunE(cmd, nil); err != nil {
		return nil, nil, err
	}
	cfg := *base
	cfg.LensOptions = maps.Clone(base.LensOptions)
	if cfg.LensOptions == nil {
		cfg.LensOptions = map[string]string{}
	}
	if fl.Changed("lens") {
		cfg.Lens, _ = fl.GetStringSlice("lens")
	}
	for _, o := range lens.Lenses.Options() {
		if fl.Changed(o.Name) {
			cfg.LensOptions[o.Name] = fl.Lookup(o.Name).Value.String()
		}
	}
	if fl.Changed("history-fill") {
		cfg.HistoryFill = fl.Lookup("history-fill").Value.String()
	}
	if fl.Changed("policy-transpose") {
		cfg.PolicyTranspose = fl.Lookup("policy-transpose").Value.String()
	}
	if opts.Top < 0 {
		return nil, nil, usageErrorf("serve: top %d: want 0 (all legal moves) or more", opts.Top)
	}
	return opts, &cfg, nil
}

// flagValue is a JSON value as a flag takes it: strings as they are, numbers and booleans as written, a list
// of strings joined by commas (the lens list).
func flagValue(raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strings.TrimSpace(string(raw)), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", errors.New("want a list of strings")
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", errors.New("want a string, number, boolean or list of strings")
}

// engineCache keeps one prepared engine per lens configuration (lenses and their options), so that a
// configuration pays for preparing its graphs and ONNX Runtime sessions once.
type engineCache struct {
	mu  sync.Mutex
	m   map[string]*warmEngine
	max int
}

type warmEngine struct {
	ready chan struct{}
	eng   *lens.Engine
	err   error
	run   sync.Mutex // one analysis at a time per engine: lenses keep no promise of concurrent runs
}

func (c *engineCache) engine(s *netSession, specs []lens.Spec, savePlanes bool, keep []string) (*lens.Engine, func(), error) {
	name, opts := lensInfo(specs)
	key := fmt.Sprintf("%s|%v|%t|%q", name, opts, savePlanes, keep) // fmt prints maps with sorted keys
	c.mu.Lock()
	w := c.m[key]
	if w == nil {
		if len(c.m) >= c.max {
			c.mu.Unlock()
			return nil, nil, usageErrorf("serve: %d lens configurations are warm already (--max-lens-configs): reuse one, or restart serve", c.max)
		}
		w = &warmEngine{ready: make(chan struct{})}
		c.m[key] = w
		c.mu.Unlock()
		w.eng, w.err = s.engine(specs, savePlanes, keep...)
		if w.err != nil {
			// A configuration that fails is not kept: it would only fill the cache.
			c.mu.Lock()
			delete(c.m, key)
			c.mu.Unlock()
		}
		close(w.ready)
	} else {
		c.mu.Unlock()
		<-w.ready
	}
	if w.err != nil {
		return nil, nil, w.err
	}
	w.run.Lock()
	return w.eng, w.run.Unlock, nil
}
