package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Format selects how results are stored.
type Format string

// The supported formats.
const (
	FormatNPY  Format = "npy"
	FormatJSON Format = "json"
)

// Names of the files in an output directory besides the per-key NPY files.
const (
	ManifestFile  = "manifest.json"
	ProgressFile  = "progress.json"
	PositionsFile = "positions.jsonl"
	ErrorsFile    = "errors.jsonl"
	ResultsFile   = "results.jsonl"
)

// ManifestFormat and FormatVersion identify the directory layout in
// manifest.json.
const (
	ManifestFormat = "lczerolens-batch"
	FormatVersion  = 1
)

// Sentinel errors callers branch on. ErrNotEmpty and ErrMismatch are usage errors; ErrLocked is a
// runtime condition (another process is writing the directory).
var (
	// ErrNotEmpty: the output directory holds files and neither Resume nor
	// Force was given, or Force was refused because of foreign files.
	ErrNotEmpty = errors.New("output directory is not empty")
	// ErrMismatch: Resume was asked for an output made with other settings
	// (model, lens, lens options, format, extra fields; see MismatchError).
	ErrMismatch = errors.New("output was made with different settings")
	// ErrLocked: another process holds the output directory's lock (see LockFile).
	ErrLocked = errors.New("output directory is in use")
)

// Options says what Open creates or resumes.
type Options struct {
	Format      Format // "" means npy
	Resume      bool   // continue the committed progress of an existing directory
	Force       bool   // wipe an existing lczerolens output directory first
	ToolVersion string
	Model       ModelInfo
	Lens        LensInfo
	// Extra holds additional top-level manifest fields; they must not reuse
	// the manifest's own field names. Resume refuses an output whose fields
	// differ (Manifest.Differences, but for ResumeExempt), so that the
	// output stays byte-identical to one uninterrupted run.
	Extra map[string]any
	// WrapFile, when set, wraps the file under each JSON Lines stream
	// (positions, errors, results) given its path: a seam for injecting
	// write faults (a full disk) in tests.
	WrapFile func(path string, w io.Writer) io.Writer
	// Lock, when set, is the directory's lock taken beforehand (LockDir): Open adopts it instead of
	// taking its own, and releases it if it fails. A Lock serves one Open.
	Lock *Lock
}

// ModelInfo identifies the network; only SHA256 must match on resume.
type ModelInfo struct{ Path, SHA256 string }

// LensInfo identifies the lens and its options; both must match on resume.
type LensInfo struct {
	Name    string
	Options map[string]any
}

// PositionMeta says where an analysed position came from.
type PositionMeta struct {
	Source string
	Record int // 0-based input record (game or line); Merge orders rows by it
	Game   int // -1 when not from a game
	Ply    int
	FEN    string
	Move   *string // the move played from the position, nil if none
	// Puzzle, for a position from a lichess puzzle, adds puzzle_id, rating, themes and solution to the row.
	Puzzle *PuzzleMeta
}

// PuzzleMeta is what positions.jsonl keeps of a lichess puzzle.
type PuzzleMeta struct {
	ID       string
	Rating   int
	Themes   []string
	Solution []string // UCI, the moves after the opponent's first
}

// Result is one named tensor of a position's analysis; Shape excludes the
// position axis. A JSON-only result (records rather than a tensor) has JSON
// set and no Shape or Data: the json format writes it among the results as
// {"dtype":"json","data":JSON}, the npy format leaves it out, and neither
// lists it among the keys.
type Result struct {
	Key   string
	Shape []int
	Data  []float32
	JSON  json.RawMessage
}

// tensors returns the results that are tensors, reusing buf.
func tensors(results []Result, buf []Result) []Result {
	out := buf[:0]
	for _, r := range results {
		if r.JSON == nil {
			out = append(out, r)
		}
	}
	return out
}

// ErrorRecord describes an input record that could not be analysed.
type ErrorRecord struct {
	Source string
	Record int
	Game   int
	Line   int
	Reason string
}

// KeyFileName returns the NPY file name of a result key: "/" becomes ".",
// any other character outside [A-Za-z0-9._-] becomes "_", and ".npy" is
// appended.
func KeyFileName(key string) string {
	var b strings.Builder
	b.Grow(len(key) + 4)
	for _, r := range key {
		switch {
		case r == '/':
			b.WriteByte('.')
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	b.WriteString(".npy")
	return b.String()
}

// validate checks opts and fills in defaults, returning the canonical JSON of the lens options.
func (opts *Options) validate() (json.RawMessage, error) {
	if opts.Format == "" {
		opts.Format = FormatNPY
	}
	if opts.Format != FormatNPY && opts.Format != FormatJSON {
		return nil, fmt.Errorf("store: unknown format %q: want npy or json", opts.Format)
	}
	if opts.Resume && opts.Force {
		return nil, fmt.Errorf("store: --resume and --force exclude each other")
	}
	lensOpts, err := canonicalJSON(opts.Lens.Options)
	if err != nil {
		return nil, fmt.Errorf("store: lens options: %w", err)
	}
	for k, v := range opts.Extra {
		if err := checkExtra(k, v); err != nil {
			return nil, err
		}
	}
	opts.Extra = maps.Clone(opts.Extra) // SetExtra must not write to the caller's map
	return lensOpts, nil
}

// checkExtra refuses an extra manifest field that would shadow one of the manifest's own or cannot be
// encoded.
func checkExtra(name string, value any) error {
	if slices.Contains(manifestFields, name) {
		return fmt.Errorf("store: extra manifest field %q collides with a field of the manifest", name)
	}
	if _, err := json.Marshal(value); err != nil {
		return fmt.Errorf("store: extra manifest field %q: %w", name, err)
	}
	return nil
}

// sentinelError carries an exact message and a sentinel for errors.Is (which says whether it is a usage
// error).
type sentinelError struct {
	msg  string
	kind error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.kind }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// canonicalJSON encodes v (or re-encodes raw JSON) with sorted keys and
// numbers as JSON reads them back, so options compare equal across a
// save/load trip (int 3 and float64 3 both become 3). nil becomes {}.
func canonicalJSON(v any) (json.RawMessage, error) {
	raw, err := canonicalValue(v)
	if err != nil {
		return nil, err
	}
	if string(raw) == "null" {
		return json.RawMessage("{}"), nil
	}
	return raw, nil
}

// canonicalValue is canonicalJSON for any value: nil stays null.
func canonicalValue(v any) (json.RawMessage, error) {
	raw, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, err
	}
	return json.Marshal(generic)
}
