// Package web serves the local explorer of `lczerolens serve`: a JSON API (POST /api/analyse, answered by
// an Analyser the command layer provides, POST /api/board drawing boards with internal/render, GET
// /api/lenses) and one embedded page that uses it. It bounds what a request may cost (body size, requests
// analysed at once, requests waiting) and answers every bad request with a 400 and a JSON error.
package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/render"
)

//go:embed assets/index.html
var assets embed.FS

// Analyser analyses one request: fields are the body's top-level keys (the analyse command's flag names)
// with their raw JSON values. It returns the analyse --format json envelope.
type Analyser func(ctx context.Context, fields map[string]json.RawMessage) ([]byte, error)

// Options configure a Server.
type Options struct {
	Analyse Analyser
	// BadRequest reports whether an error of Analyse is the request's fault (answered 400) rather than the
	// server's (500).
	BadRequest func(error) bool
	// Model names the network in the page's header.
	Model string
	// MaxBody bounds a request body in bytes (0 means DefaultMaxBody).
	MaxBody int64
	// Concurrency bounds the analyses run at once (0 means 2); MaxWaiting bounds the requests queued behind
	// them (0 means 256); more are answered 503.
	Concurrency int
	MaxWaiting  int
}

// DefaultMaxBody is the default bound on a request body: a FEN, a few hundred moves and lens options fit
// many times over.
const DefaultMaxBody = 64 << 10

// Server is the explorer's HTTP handler.
type Server struct {
	opts    Options
	slots   chan struct{}
	waiting atomic.Int64
	mux     *http.ServeMux
}

// New returns a Server; Analyse is required.
func New(o Options) (*Server, error) {
	if o.Analyse == nil {
		return nil, errors.New("web: no analyser")
	}
	if o.BadRequest == nil {
		o.BadRequest = func(error) bool { return false }
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.MaxWaiting <= 0 {
		o.MaxWaiting = 256
	}
	s := &Server{opts: o, slots: make(chan struct{}, o.Concurrency), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", s.page)
	s.mux.HandleFunc("GET /api/lenses", s.lenses)
	s.mux.HandleFunc("POST /api/analyse", s.analyse)
	s.mux.HandleFunc("POST /api/board", s.board)
	return s, nil
}

// ServeHTTP recovers from a panic in a handler so that one request can never take the server down.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("internal error: %v", v))
		}
	}()
	s.mux.ServeHTTP(w, r)
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"web: encode answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The page loads nothing from elsewhere; say so to the browser too.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; img-src 'self' data:")
	_, _ = w.Write(bytes.Replace(b, []byte("{{MODEL}}"), []byte(htmlEscape(s.opts.Model)), 1))
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// lensJSON describes a lens for the page's picker.
type lensJSON struct {
	Name    string       `json:"name"`
	Doc     string       `json:"doc"`
	Options []optionJSON `json:"options"`
}

type optionJSON struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Default string   `json:"default"`
	Help    string   `json:"help"`
	Choices []string `json:"choices,omitempty"`
}

func (s *Server) lenses(w http.ResponseWriter, _ *http.Request) {
	out := []lensJSON{}
	for _, l := range lens.Lenses {
		lj := lensJSON{Name: l.Name, Doc: l.Doc, Options: []optionJSON{}}
		for _, o := range l.Options {
			lj.Options = append(lj.Options, optionJSON{Name: o.Name, Kind: string(o.Kind), Default: o.Default, Help: o.Help, Choices: o.Choices})
		}
		out = append(out, lj)
	}
	writeJSON(w, http.StatusOK, out)
}

// readObject reads a bounded body holding one JSON object.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			// 400 like every other refused body: clients branch on one code for "fix the request".
			writeError(w, http.StatusBadRequest, fmt.Sprintf("request body over %d bytes (serve --max-body)", s.opts.MaxBody))
		} else {
			writeError(w, http.StatusBadRequest, "read request body: "+err.Error())
		}
		return nil, false
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil || fields == nil {
		msg := "request body: want one JSON object"
		if err != nil {
			msg += ": " + err.Error()
		}
		writeError(w, http.StatusBadRequest, msg)
		return nil, false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "request body: want one JSON object, found more after it")
		return nil, false
	}
	return fields, true
}

// acquire waits for an analysis slot; false when the queue is full (answered 503) or the client left.
func (s *Server) acquire(w http.ResponseWriter, r *http.Request) bool {
	if s.waiting.Add(1) > int64(s.opts.MaxWaiting) {
		s.waiting.Add(-1)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("busy: %d requests are waiting; retry later", s.opts.MaxWaiting))
		return false
	}
	defer s.waiting.Add(-1)
	select {
	case s.slots <- struct{}{}:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *Server) analyse(w http.ResponseWriter, r *http.Request) {
	fields, ok := s.readObject(w, r)
	if !ok {
		return
	}
	if !s.acquire(w, r) {
		return
	}
	defer func() { <-s.slots }()
	env, err := s.opts.Analyse(r.Context(), fields)
	if err != nil {
		code := http.StatusInternalServerError
		if s.opts.BadRequest(err) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(env)
}

// boardRequest asks for a board drawn as SVG.
type boardRequest struct {
	FEN      string    `json:"fen"`
	Heat     []float32 `json:"heat"`
	Arrows   []string  `json:"arrows"`
	Title    string    `json:"title"`
	Colormap string    `json:"colormap"`
	Flip     bool      `json:"flip"`
}

// board draws a position, an optional [8,8] map and arrows with internal/render: the page shows exactly the
// boards the render command draws.
func (s *Server) board(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
	var req boardRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "board request: "+err.Error())
		return
	}
	svg, err := BoardSVG(req.FEN, req.Heat, req.Arrows, req.Title, req.Colormap, req.Flip)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	_, _ = w.Write(svg)
}

// BoardSVG draws fen's pieces, heat (64 values a1 first, or nil) and arrows (UCI moves; illegal ones are
// skipped) as an SVG document.
func BoardSVG(fen string, heat []float32, arrows []string, title, colormap string, flip bool) ([]byte, error) {
	o := render.Options{Heat: heat, Title: title, Colormap: render.Colormap(colormap), BlackBottom: flip, SquareSize: 48}
	if len(heat) == 0 {
		o.Heat = nil
	}
	if fen != "" {
		pos, err := board.ParseFEN(fen)
		if err != nil {
			return nil, fmt.Errorf("board: %w", err)
		}
		o.Position = pos
		for _, a := range arrows {
			if m, err := pos.ParseMove(a); err == nil {
				o.Arrows = append(o.Arrows, m)
			}
		}
	}
	var buf bytes.Buffer
	if err := render.SVG(&buf, o); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Serve answers on ln until ctx ends, then stops accepting and lets requests in flight finish (for at most
// grace) before returning. It returns nil after such a shutdown.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("web: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("web: shutdown: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web: serve: %w", err)
	}
	return nil
}
