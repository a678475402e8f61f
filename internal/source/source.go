// Package source turns batch inputs (PGN streams, FEN/EPD lists, JSONL of {"fen","moves"}, lichess puzzle
// CSV) into a stream of positions with their history and provenance, reporting bad records without stopping.
// Inputs may be compressed (gzip, bzip2, zstd: told by their first bytes) and a run may read several, one
// after the other, numbering their records as one input. It knows input formats and record numbering; the
// chess itself is internal/board's.
//
// Memory is bounded by one record, whatever the input: a PGN game beyond board.MaxPlies plies and a FEN or
// JSONL line beyond MaxLineBytes are bad records, read through without being held, and a game's positions
// are built only up to the last ply the selection keeps.
package source

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lczerolens/lczerolens/internal/board"
)

// Type is an input format.
type Type string

// The input types.
const (
	PGN   Type = "pgn"
	FEN   Type = "fen"
	JSONL Type = "jsonl"
	// Puzzles is the lichess puzzle CSV (PuzzleId,FEN,Moves,Rating,...; see Puzzle).
	Puzzles Type = "puzzles"
)

// TypeNames lists the input types for flag help and messages.
const TypeNames = "pgn, fen, jsonl or puzzles"

// DetectType picks the input type from an explicit --input-type or the file extension; stdin ("-") needs
// the explicit type.
func DetectType(path, explicit string) (Type, error) {
	switch explicit {
	case "pgn", "fen", "jsonl", "puzzles":
		return Type(explicit), nil
	case "":
	default:
		return "", fmt.Errorf("source: input type %q: want %s", explicit, TypeNames)
	}
	if path == "-" {
		return "", errors.New("source: reading stdin needs --input-type pgn|fen|jsonl|puzzles")
	}
	// A compressed file is named after what it holds: games.pgn.zst is a PGN.
	base := strings.ToLower(path)
	if c := filepath.Ext(base); c == ".gz" || c == ".bz2" || c == ".zst" {
		base = strings.TrimSuffix(base, c)
	}
	switch filepath.Ext(base) {
	case ".pgn":
		return PGN, nil
	case ".fen", ".epd", ".txt":
		return FEN, nil
	case ".jsonl", ".ndjson":
		return JSONL, nil
	case ".csv":
		// The only CSV read is lichess's puzzle file; Walk checks its header.
		return Puzzles, nil
	}
	return "", fmt.Errorf("source: cannot tell the type of %s from its extension: pass --input-type pgn|fen|jsonl|puzzles", path)
}

// Plies selects which positions of a game are analysed.
type Plies struct {
	kind string // all, first, last, every
	n    int
}

// ParsePlies parses all | first:N | last | every:N.
func ParsePlies(s string) (Plies, error) {
	switch {
	case s == "" || s == "all":
		return Plies{kind: "all"}, nil
	case s == "last":
		return Plies{kind: "last"}, nil
	case strings.HasPrefix(s, "first:"), strings.HasPrefix(s, "every:"):
		kind, num, _ := strings.Cut(s, ":")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			return Plies{}, fmt.Errorf("source: plies %q: %s needs a positive count", s, kind)
		}
		return Plies{kind: kind, n: n}, nil
	}
	return Plies{}, fmt.Errorf("source: plies %q: want all, first:N, last or every:N", s)
}

// String is the flag form.
func (p Plies) String() string {
	if p.kind == "first" || p.kind == "every" {
		return fmt.Sprintf("%s:%d", p.kind, p.n)
	}
	return p.kind
}

// through returns the last ply of a game of total plies that the selection can keep, so that no position
// after it is built.
func (p Plies) through(total int) int {
	if p.kind == "first" {
		return min(p.n-1, total)
	}
	return total
}

// keep says whether ply (0 = start position) of a game with total plies is selected.
func (p Plies) keep(ply, total int) bool {
	switch p.kind {
	case "first":
		return ply < p.n
	case "last":
		return ply == total
	case "every":
		return ply%p.n == 0
	}
	return true
}

// Item is one position to analyse.
type Item struct {
	Record  int // 0-based record (game for PGN, non-empty line for FEN/JSONL)
	Game    int // 0-based game index for PGN, -1 otherwise
	Ply     int // plies played from the record's start position
	Source  string
	History *board.Game     // positioned at Ply; valid only during the callback (it is reused)
	Pos     *board.Position // the position itself, a copy: keeping it does not keep the game's history
	Next    *board.Move     // the move played from it, when known
	// Corrupt is the record's corrupted counterpart (JSONL corrupt_fen/corrupt_moves, for activation
	// patching), positioned at its end; nil when the record has none.
	Corrupt *board.Game
	// Fields are a JSONL record's top-level fields as given (for labels read from a column); nil otherwise.
	Fields map[string]json.RawMessage
	// Puzzle is the lichess puzzle the position belongs to (puzzle input); nil otherwise.
	Puzzle *Puzzle
}

// Bad is a record that could not be read.
type Bad struct {
	Record int
	Game   int
	Line   int
	Reason string // at most MaxReason bytes
}

// MaxReason bounds Bad.Reason: a parser's message may quote the record, and a 50 MB line must not become a
// 50 MB line of errors.jsonl.
const MaxReason = 512

// reason is err's message cut to MaxReason bytes (on a UTF-8 boundary), saying how much was left out.
func reason(err error) string {
	msg := err.Error()
	if len(msg) <= MaxReason {
		return msg
	}
	cut := MaxReason - 40 // room for the suffix, whose count has at most 20 digits
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + fmt.Sprintf("... (%d bytes more)", len(msg)-cut)
}

// Shard selects one part of a deterministic partition of the input by record: record r belongs to shard
// r % Count. Records are dealt round-robin so that shards are balanced and need no coordination, and a game
// or line is never split. The zero value holds every record.
type Shard struct {
	Index, Count int
}

// ParseShard parses the flag form i/n (0 <= i < n).
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	i, ierr := strconv.Atoi(is)
	n, nerr := strconv.Atoi(ns)
	if !ok || ierr != nil || nerr != nil {
		return Shard{}, fmt.Errorf("source: shard %q: want i/n, e.g. 0/4 (i counts from 0)", s)
	}
	if n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("source: shard %q: want 0 <= i < n", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// String is the flag form, or "" for the zero value.
func (s Shard) String() string {
	if s.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Holds reports whether record belongs to the shard.
func (s Shard) Holds(record int) bool {
	return s.Count <= 1 || record%s.Count == s.Index
}

// Records returns how many of the records 0..total-1 the shard holds.
func (s Shard) Records(total int) int {
	if s.Count <= 1 {
		return total
	}
	if total <= s.Index {
		return 0
	}
	return (total-s.Index-1)/s.Count + 1
}

// Options selects what Walk reports; the zero value reports every position of every record.
type Options struct {
	Plies Plies
	Shard Shard
	// Offset is the number of the input's first record: the records of the inputs before it in a run of
	// several, so that numbering (and the shard a record falls in) is the run's, not the file's.
	Offset int
	// Solution makes a puzzle record yield every position of its line from the puzzle position (ply 1, after
	// the opponent's first move) to the last solution move, each with Next set to the solution's move there;
	// without it a puzzle yields only the puzzle position.
	Solution bool
}

// Walk reads every record of r, calling item for each selected position and bad for each record that fails
// to parse (the walk continues); records outside opts.Shard are read, so that numbering stays global, but
// not reported. A compressed input (gzip, bzip2, zstd) is decompressed on the way. It returns the number
// of records in the input plus opts.Offset (the next input's offset), and the first error either callback
// returns or a read error.
func Walk(r io.Reader, name string, typ Type, opts Options, item func(*Item) error, bad func(*Bad) error) (records int, err error) {
	switch typ {
	case PGN, FEN, JSONL, Puzzles:
	default:
		return opts.Offset, fmt.Errorf("source: unknown input type %q", typ)
	}
	dr, err := decompress(r)
	if err != nil {
		return opts.Offset, fmt.Errorf("source: %s: %w", name, err)
	}
	defer dr.Close()
	if typ == PGN {
		return walkPGN(dr, name, opts, item, bad)
	}
	return walkLines(dr, name, typ, opts, item, bad)
}

// errSelected stops a game's walk after the last selected ply.
var errSelected = errors.New("source: selected plies done")

func walkPGN(r io.Reader, name string, opts Options, item func(*Item) error, bad func(*Bad) error) (int, error) {
	pr := board.NewPGNReader(r)
	record := opts.Offset
	for ; ; record++ {
		// Every game is parsed, even outside the shard: only parsing finds where a game ends.
		g, err := pr.Next()
		if errors.Is(err, io.EOF) {
			return record, nil
		}
		var ge *board.GameError
		if errors.As(err, &ge) {
			if !opts.Shard.Holds(record) {
				continue
			}
			if err := bad(&Bad{Record: record, Game: ge.Game, Line: ge.Line, Reason: reason(ge)}); err != nil {
				return record, err
			}
			continue
		}
		if err != nil {
			return record, fmt.Errorf("source: %s: %w", name, err)
		}
		if !opts.Shard.Holds(record) {
			continue
		}
		total := len(g.Moves)
		last := opts.Plies.through(total)
		err = g.Positions(func(gm *board.Game, ply int, next *board.Move) error {
			if ply > last {
				return errSelected
			}
			if !opts.Plies.keep(ply, total) {
				return nil
			}
			pos := *gm.Current()
			return item(&Item{Record: record, Game: g.Index, Ply: ply, Source: name, History: gm, Pos: &pos, Next: next})
		})
		if err != nil && !errors.Is(err, errSelected) {
			return record, err
		}
	}
}

// lineRecord is one JSONL input object. A corrupted position starts from corrupt_fen, else from the
// record's own start, and plays corrupt_moves; it exists when either field is given.
type lineRecord struct {
	FEN          string          `json:"fen"`
	Moves        json.RawMessage `json:"moves"`
	CorruptFEN   string          `json:"corrupt_fen"`
	CorruptMoves json.RawMessage `json:"corrupt_moves"`
}

func walkLines(r io.Reader, name string, typ Type, opts Options, item func(*Item) error, bad func(*Bad) error) (int, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	line, record, shard := 0, opts.Offset, opts.Shard
	first := true
	var buf []byte
	for {
		var long bool
		var err error
		buf, long, err = readLine(br, buf)
		if len(buf) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return record, nil
			}
			return record, fmt.Errorf("source: %s: %w", name, err)
		}
		line++
		text := strings.TrimSpace(string(buf))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if typ == Puzzles {
			// A header is no record; it may come again where files were concatenated.
			hdr, err := puzzleHeader(text, first)
			first = false
			if err != nil {
				return record, fmt.Errorf("source: %s: %w", name, err)
			}
			if hdr {
				continue
			}
		}
		record++
		if !shard.Holds(record - 1) {
			continue
		}
		if long {
			if err := bad(&Bad{Record: record - 1, Game: -1, Line: line, Reason: fmt.Sprintf("source: line longer than %d bytes: skipped", MaxLineBytes)}); err != nil {
				return record, err
			}
			continue
		}
		if typ == Puzzles {
			if err := walkPuzzle(text, line, record-1, name, opts.Solution, item, bad); err != nil {
				return record, err
			}
			continue
		}
		it, perr := parseLine(text, typ)
		if perr != nil {
			if err := bad(&Bad{Record: record - 1, Game: -1, Line: line, Reason: reason(perr)}); err != nil {
				return record, err
			}
			continue
		}
		// A line is one position, the one after its moves; --plies applies to games only.
		pos := *it.History.Current()
		it.Record, it.Game, it.Ply, it.Source, it.Pos = record-1, -1, it.History.Ply(), name, &pos
		if err := item(it); err != nil {
			return record, err
		}
	}
}

// MaxLineBytes bounds a FEN or JSONL line; a longer one is a bad record. A position with the longest game
// allowed (board.MaxPlies) as UCI moves, in both moves and corrupt_moves, takes about a fifth of it.
const MaxLineBytes = 1 << 20

// readLine reads the next line into buf, keeping at most its first MaxLineBytes bytes (long reports that
// more were read and dropped), so that a line of any length costs no more memory than that.
func readLine(br *bufio.Reader, buf []byte) (line []byte, long bool, err error) {
	buf = buf[:0]
	for {
		chunk, err := br.ReadSlice('\n')
		if room := MaxLineBytes - len(buf); len(chunk) > room {
			chunk, long = chunk[:max(room, 0)], true
		}
		buf = append(buf, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, long, err
		}
	}
}

// parseLine reads one line into an item holding its game (History), and for JSONL its fields and
// corrupted counterpart.
func parseLine(text string, typ Type) (*Item, error) {
	if typ == FEN {
		pos, err := board.ParseEPD(text)
		if err != nil {
			return nil, err
		}
		return &Item{History: board.NewGame(pos)}, nil
	}
	var rec lineRecord
	if err := json.Unmarshal([]byte(text), &rec); err != nil {
		return nil, fmt.Errorf("source: invalid json: %w", err)
	}
	it := &Item{}
	if err := json.Unmarshal([]byte(text), &it.Fields); err != nil {
		return nil, fmt.Errorf("source: invalid json: %w", err)
	}
	start := rec.FEN
	if start == "" {
		start = "startpos"
	}
	moves, err := movesField(rec.Moves, "moves")
	if err != nil {
		return nil, err
	}
	if it.History, err = board.ParseGame(start, moves); err != nil {
		return nil, err
	}
	if rec.CorruptFEN == "" && len(rec.CorruptMoves) == 0 {
		return it, nil
	}
	if rec.CorruptFEN != "" {
		start = rec.CorruptFEN
	}
	if moves, err = movesField(rec.CorruptMoves, "corrupt_moves"); err != nil {
		return nil, err
	}
	if it.Corrupt, err = board.ParseGame(start, moves); err != nil {
		return nil, fmt.Errorf("source: corrupted position: %w", err)
	}
	return it, nil
}

// movesField accepts moves as a space-separated string or an array of strings.
func movesField(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", fmt.Errorf("source: %q must be a string or an array of strings", field)
	}
	return strings.Join(list, " "), nil
}
