// Package source turns batch inputs (PGN streams, FEN/EPD lists, JSONL of {"fen","moves"}) into a stream of
// positions with their history and provenance, reporting bad records without stopping. It knows input formats
// and record numbering; the chess itself is internal/board's.
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

	"github.com/lczerolens/lczerolens/internal/board"
)

// Type is an input format.
type Type string

// The input types.
const (
	PGN   Type = "pgn"
	FEN   Type = "fen"
	JSONL Type = "jsonl"
)

// DetectType picks the input type from an explicit --input-type or the file extension; stdin ("-") needs
// the explicit type.
func DetectType(path, explicit string) (Type, error) {
	switch explicit {
	case "pgn", "fen", "jsonl":
		return Type(explicit), nil
	case "":
	default:
		return "", fmt.Errorf("source: input type %q: want pgn, fen or jsonl", explicit)
	}
	if path == "-" {
		return "", errors.New("source: reading stdin needs --input-type pgn|fen|jsonl")
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".pgn":
		return PGN, nil
	case ".fen", ".epd", ".txt":
		return FEN, nil
	case ".jsonl", ".ndjson":
		return JSONL, nil
	}
	return "", fmt.Errorf("source: cannot tell the type of %s from its extension: pass --input-type pgn|fen|jsonl", path)
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
	Pos     *board.Position // the position itself (immutable)
	Next    *board.Move     // the move played from it, when known
}

// Bad is a record that could not be read.
type Bad struct {
	Record int
	Game   int
	Line   int
	Reason string
}

// Walk reads every record of r, calling item for each selected position and bad for each record that fails
// to parse (the walk continues). It returns the first error either callback returns, or a read error.
func Walk(r io.Reader, name string, typ Type, plies Plies, item func(*Item) error, bad func(*Bad) error) error {
	switch typ {
	case PGN:
		return walkPGN(r, name, plies, item, bad)
	case FEN, JSONL:
		return walkLines(r, name, typ, item, bad)
	}
	return fmt.Errorf("source: unknown input type %q", typ)
}

func walkPGN(r io.Reader, name string, plies Plies, item func(*Item) error, bad func(*Bad) error) error {
	pr := board.NewPGNReader(r)
	record := 0
	for {
		g, err := pr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var ge *board.GameError
		if errors.As(err, &ge) {
			if err := bad(&Bad{Record: record, Game: ge.Game, Line: ge.Line, Reason: ge.Error()}); err != nil {
				return err
			}
			record++
			continue
		}
		if err != nil {
			return fmt.Errorf("source: %s: %w", name, err)
		}
		total := len(g.Moves)
		err = g.Positions(func(gm *board.Game, ply int, next *board.Move) error {
			if !plies.keep(ply, total) {
				return nil
			}
			return item(&Item{Record: record, Game: g.Index, Ply: ply, Source: name, History: gm, Pos: gm.Current(), Next: next})
		})
		if err != nil {
			return err
		}
		record++
	}
}

// lineRecord is one JSONL input object.
type lineRecord struct {
	FEN   string          `json:"fen"`
	Moves json.RawMessage `json:"moves"`
}

func walkLines(r io.Reader, name string, typ Type, item func(*Item) error, bad func(*Bad) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	line, record := 0, 0
	for {
		text, err := br.ReadString('\n')
		if text == "" && err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("source: %s: %w", name, err)
		}
		line++
		text = strings.TrimSpace(text)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		g, perr := parseLine(text, typ)
		if perr != nil {
			if err := bad(&Bad{Record: record, Game: -1, Line: line, Reason: perr.Error()}); err != nil {
				return err
			}
			record++
			continue
		}
		// A line is one position, the one after its moves; --plies applies to games only.
		if err := item(&Item{Record: record, Game: -1, Ply: g.Ply(), Source: name, History: g, Pos: g.Current()}); err != nil {
			return err
		}
		record++
	}
}

func parseLine(text string, typ Type) (*board.Game, error) {
	if typ == FEN {
		pos, err := board.ParseEPD(text)
		if err != nil {
			return nil, err
		}
		return board.NewGame(pos), nil
	}
	var rec lineRecord
	if err := json.Unmarshal([]byte(text), &rec); err != nil {
		return nil, fmt.Errorf("source: invalid json: %w", err)
	}
	start := rec.FEN
	if start == "" {
		start = "startpos"
	}
	moves, err := movesField(rec.Moves)
	if err != nil {
		return nil, err
	}
	return board.ParseGame(start, moves)
}

// movesField accepts moves as a space-separated string or an array of strings.
func movesField(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", errors.New(`source: "moves" must be a string or an array of strings`)
	}
	return strings.Join(list, " "), nil
}
