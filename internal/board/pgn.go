package board

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// PGNGame is one game read from a PGN stream (main line only).
type PGNGame struct {
	Index    int         // 0-based position of the game in the stream, counting malformed games
	Line     int         // line of the first tag (or of the first move for a game without tags)
	Tags     [][2]string // tag pairs in file order
	Start    *Position   // from the FEN tag, else the standard starting position
	StartFEN string      // Start.FEN()
	Moves    []Move
	Result   string // the game termination marker; the Result tag when the marker is missing; else "*"
}

// Tag returns the value of the first tag called name, or "".
func (g *PGNGame) Tag(name string) string {
	for _, t := range g.Tags {
		if t[0] == name {
			return t[1]
		}
	}
	return ""
}

// Game returns the game replayed to its final position.
func (g *PGNGame) Game() *Game {
	gm := NewGame(g.Start)
	for _, m := range g.Moves {
		gm.Play(m)
	}
	return gm
}

// Positions calls fn for every position of the game, from the start (ply 0)
// to the final position (ply len(Moves), next == nil), with gm holding the
// full history up to that ply; next is the move played from there. gm is
// reused between calls: do not keep it. An error from fn stops the walk and
// is returned.
func (g *PGNGame) Positions(fn func(gm *Game, ply int, next *Move) error) error {
	gm := NewGame(g.Start)
	for ply := 0; ; ply++ {
		var next *Move
		if ply < len(g.Moves) {
			m := g.Moves[ply]
			next = &m
		}
		if err := fn(gm, ply, next); err != nil {
			return err
		}
		if next == nil {
			return nil
		}
		gm.Play(*next)
	}
}

// MaxPlies bounds the length of a game read from PGN (and of a move list given to ParseGame): a longer game
// is refused as a bad record (ErrTooLong) rather than held in memory. No game is legal beyond 17,697 plies
// under FIDE's automatic 75-move and fivefold-repetition rules, so the bound refuses no real game.
const MaxPlies = 20000

// MaxTags bounds the tag pairs of one PGN game; a game with more is refused (ErrTooLong).
const MaxTags = 1000

// ErrTooLong is wrapped by the errors for a game beyond MaxPlies or MaxTags.
var ErrTooLong = errors.New("game too long")

const (
	// maxTagLine is how much of a tag line is kept; the rest of a longer one is read and dropped.
	maxTagLine = 1 << 20
	// maxToken is the longest move-text token read as such; no move, move number or result comes close,
	// and a longer one is reported as unparsable without being held whole.
	maxToken = 256
	// quoteLen is how much of a bad token an error message quotes.
	quoteLen = 40
)

// GameError reports a malformed game; the reader goes on with the next game.
type GameError struct {
	Game   int    // 1-based game number in the stream
	Line   int    // line of the offending token or tag
	Reason string // e.g. `illegal move "Nf9" at ply 7`
	Err    error  // underlying error (ErrIllegalMove, a FEN error, ...), may be nil
}

// Error formats the error as documented on the type.
func (e *GameError) Error() string {
	return fmt.Sprintf("board: pgn game %d (line %d): %s", e.Game, e.Line, e.Reason)
}

// Unwrap returns Err.
func (e *GameError) Unwrap() error { return e.Err }

// PGNReader reads games from a PGN stream one at a time. It accepts what real
// files contain: comments {...} and ; comments, NAGs, nested variations
// (skipped), % escape lines, CRLF, lines of any length, a UTF-8 BOM, games
// without tags or without moves, and move text in SAN or UCI.
//
// Its memory is bounded whatever the input: a line is read in pieces of the
// read buffer's size, never whole (a tag line keeps its first MiB), and a game
// beyond MaxPlies or MaxTags is a *GameError wrapping ErrTooLong, whose rest is
// read through without being kept.
type PGNReader struct {
	r      *bufio.Reader
	line   []byte // current piece of the current line, without its end of line
	more   bool   // the current line goes on beyond line
	carry  []byte // start of a token cut by the end of the previous piece (at most maxToken+1 bytes)
	pos    int    // next byte of line to look at
	lineNo int
	have   bool // line holds unread data
	fresh  bool // line not yet checked for a tag or % escape
	eof    bool
	err    error // read error other than io.EOF

	inComment bool
	inBracket bool // skipping a stray [...] in the move text, which ends at ']' or the end of the line
	inNAG     bool // reading the digits of a NAG cut by the end of a piece
	depth     int  // variation nesting
	games     int  // games returned so far, good or bad
}

// NewPGNReader returns a reader of the PGN stream r.
func NewPGNReader(r io.Reader) *PGNReader {
	return newPGNReaderSize(r, 64<<10)
}

// newPGNReaderSize reads lines in pieces of size bytes (tests use tiny pieces to cut every line).
func newPGNReaderSize(r io.Reader, size int) *PGNReader {
	return &PGNReader{r: bufio.NewReaderSize(r, size)}
}

// nextLine loads the next line, or its first piece when it is longer than the
// read buffer; false at the end of the stream.
func (r *PGNReader) nextLine() bool {
	r.restOfLine(0)
	r.inBracket, r.inNAG = false, false
	r.carry = r.carry[:0]
	if !r.read() {
		return false
	}
	r.lineNo++
	if r.lineNo == 1 {
		r.line = bytes.TrimPrefix(r.line, []byte("\xef\xbb\xbf"))
	}
	return true
}

// read loads the next piece of the stream, up to the end of its line or the
// size of the read buffer, after the carried start of a cut token; false when
// nothing is left.
func (r *PGNReader) read() bool {
	var chunk []byte
	r.more = false
	if !r.eof {
		var err error
		chunk, err = r.r.ReadSlice('\n')
		r.more = errors.Is(err, bufio.ErrBufferFull)
		r.readErr(err)
	}
	if len(chunk) == 0 && len(r.carry) == 0 {
		return false
	}
	r.line = append(append(r.line[:0], r.carry...), chunk...)
	r.carry = r.carry[:0]
	if !r.more {
		r.line = bytes.TrimRight(r.line, "\r\n")
	}
	r.pos = 0
	r.have = true
	return true
}

// readErr records the end of the stream or a read error; a full buffer is neither.
func (r *PGNReader) readErr(err error) {
	if err == nil || errors.Is(err, bufio.ErrBufferFull) {
		return
	}
	r.eof = true
	if !errors.Is(err, io.EOF) {
		r.err = err
	}
}

// restOfLine reads the rest of a line longer than the read buffer, appending
// at most keep bytes of it to line and dropping the others.
func (r *PGNReader) restOfLine(keep int) {
	if !r.more {
		return
	}
	for r.more {
		chunk, err := r.r.ReadSlice('\n')
		r.more = errors.Is(err, bufio.ErrBufferFull)
		r.readErr(err)
		n := min(len(chunk), max(keep, 0))
		r.line = append(r.line, chunk[:n]...)
		keep -= n
	}
	r.line = bytes.TrimRight(r.line, "\r\n")
}

// pgnGame is the state of the game being read.
type pgnGame struct {
	g        PGNGame
	started  bool // any tag, move or result seen
	movetext bool // any move or result seen
	setUp    bool // start position decided
	cur      Position
	err      *GameError
	tagLines []int // line of each tag
}

// Next returns the next game, io.EOF at the end of the stream, or a
// *GameError for a malformed game; the call after a *GameError continues with
// the following game.
func (r *PGNReader) Next() (*PGNGame, error) {
	var st pgnGame
	r.inComment, r.depth = false, 0
	for {
		if !r.have || r.pos >= len(r.line) {
			if r.have && r.more && r.read() {
				continue // the next piece of a long line
			}
			r.have = false
			if !r.nextLine() {
				if r.err != nil && !st.started {
					err := r.err
					r.err = nil
					return nil, fmt.Errorf("board: pgn read: %w", err)
				}
				if !st.started {
					return nil, io.EOF
				}
				return r.finish(&st)
			}
			r.fresh = true
		}
		if r.fresh {
			r.fresh = false
			if !r.inComment {
				if len(r.line) > 0 && r.line[0] == '%' {
					r.have = false
					continue
				}
				t := bytes.TrimLeft(r.line, " \t")
				for len(t) == 0 && r.more && r.read() {
					t = bytes.TrimLeft(r.line, " \t")
				}
				if len(t) > 0 && t[0] == '[' {
					if r.more {
						r.restOfLine(maxTagLine - len(r.line))
						t = bytes.TrimLeft(r.line, " \t")
					}
					name, value, ok := parseTag(t)
					if !ok {
						r.have = false
						continue
					}
					if st.movetext || st.hasTag(name) {
						// This tag opens the next game: keep the line for it.
						r.fresh = true
						return r.finish(&st)
					}
					if !st.started {
						st.started = true
						st.g.Line = r.lineNo
					}
					if len(st.g.Tags) >= MaxTags {
						if st.err == nil {
							st.err = &GameError{Line: r.lineNo, Reason: fmt.Sprintf("more than %d tags", MaxTags), Err: ErrTooLong}
						}
						r.have = false
						continue
					}
					st.g.Tags = append(st.g.Tags, [2]string{name, value})
					st.tagLines = append(st.tagLines, r.lineNo)
					r.have = false
					continue
				}
			}
		}
		done := r.scanMovetext(&st)
		if done {
			return r.finish(&st)
		}
	}
}

func (st *pgnGame) hasTag(name string) bool {
	for _, t := range st.g.Tags {
		if t[0] == name {
			return true
		}
	}
	return false
}

// parseTag parses `[Name "value"]` leniently: the value runs from the first
// to the last double quote, so unescaped quotes and brackets inside survive.
func parseTag(t []byte) (name, value string, ok bool) {
	t = bytes.TrimSpace(t)
	t = bytes.TrimPrefix(t, []byte("["))
	i := 0
	for i < len(t) && t[i] != ' ' && t[i] != '\t' && t[i] != '"' && t[i] != ']' {
		i++
	}
	if i == 0 {
		return "", "", false
	}
	name = string(t[:i])
	q1 := bytes.IndexByte(t, '"')
	q2 := bytes.LastIndexByte(t, '"')
	if q1 < 0 || q2 <= q1 {
		return name, "", true
	}
	v := t[q1+1 : q2]
	if bytes.IndexByte(v, '\\') >= 0 {
		var b []byte
		for j := 0; j < len(v); j++ {
			if v[j] == '\\' && j+1 < len(v) && (v[j+1] == '"' || v[j+1] == '\\') {
				j++
			}
			b = append(b, v[j])
		}
		v = b
	}
	return name, string(v), true
}

// skipPast moves past the next c in this piece of line and reports whether it found one; without one it
// consumes the rest of the piece, so a comment or bracket open across pieces stays open.
func (r *PGNReader) skipPast(line []byte, c byte) bool {
	j := bytes.IndexByte(line[r.pos:], c)
	if j < 0 {
		r.pos = len(line)
		return false
	}
	r.pos += j + 1
	return true
}

// scanMovetext consumes movetext from the current piece of a line; true when a
// game termination marker ended the game.
func (r *PGNReader) scanMovetext(st *pgnGame) bool {
	line := r.line
	for r.pos < len(line) {
		if r.inComment {
			if r.inComment = !r.skipPast(line, '}'); r.inComment {
				return false
			}
			continue
		}
		if r.inBracket {
			if r.inBracket = !r.skipPast(line, ']'); r.inBracket {
				return false
			}
			continue
		}
		if r.inNAG {
			for r.pos < len(line) && line[r.pos] >= '0' && line[r.pos] <= '9' {
				r.pos++
			}
			r.inNAG = r.pos == len(line) && r.more
			continue
		}
		c := line[r.pos]
		switch c {
		case ' ', '\t', '\r', '\n', '\v', '\f':
			r.pos++
			continue
		case '{':
			r.inComment = true
			r.pos++
			continue
		case ';':
			r.have = false // the comment runs to the end of the line
			return false
		case '(':
			r.depth++
			r.pos++
			continue
		case ')':
			if r.depth > 0 {
				r.depth--
			}
			r.pos++
			continue
		case '$':
			r.pos++
			r.inNAG = true
			continue
		case '[':
			// A stray tag or bracket inside the move text: skip it, up to the end of the line at most.
			r.pos++
			r.inBracket = true
			continue
		}
		start := r.pos
		for r.pos < len(line) && !isDelim(line[r.pos]) {
			r.pos++
		}
		if r.pos == start { // a lone delimiter such as '}' or ']'
			r.pos++
			continue
		}
		if r.pos == len(line) && r.more {
			// The token may go on in the next piece: carry its start over, enough of it to tell it is too long.
			r.carry = append(r.carry[:0], line[start:min(r.pos, start+maxToken+1)]...)
			return false
		}
		if r.depth > 0 {
			continue
		}
		tok := line[start:r.pos]
		if len(tok) > maxToken {
			tok = tok[:maxToken+1]
		}
		if r.token(st, string(tok)) {
			return true
		}
	}
	return false
}

// quote quotes a token for an error message, cut to quoteLen bytes so that garbage input cannot make a long
// message.
func quote(tok string) string {
	if len(tok) > quoteLen {
		return fmt.Sprintf("%q...", tok[:quoteLen])
	}
	return fmt.Sprintf("%q", tok)
}

func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '\v', '\f', '{', '}', '(', ')', ';', '$', '[', ']':
		return true
	}
	return false
}

// token handles one main-line token; true at a game termination marker.
func (r *PGNReader) token(st *pgnGame, tok string) bool {
	switch tok {
	case "1-0", "0-1", "1/2-1/2", "*", "½-½":
		if tok == "½-½" {
			tok = "1/2-1/2"
		}
		r.begin(st)
		st.g.Result = tok
		return true
	}
	// Move numbers, possibly glued to the move: "12.", "12...", "1.e4", "1...O-O".
	i := 0
	for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
		i++
	}
	if i > 0 && (i == len(tok) || tok[i] == '.') {
		for i < len(tok) && tok[i] == '.' {
			i++
		}
		tok = tok[i:]
		if tok == "" {
			return false
		}
	}
	tok = strings.TrimLeft(tok, ".")
	if tok == "" || tok == "e.p." || strings.Trim(tok, "!?+-=/~") == "" {
		return false // annotation glyphs such as "!?", "+-", "=", a detached "e.p."
	}
	r.begin(st)
	if st.err != nil {
		return false
	}
	ply := len(st.g.Moves) + 1
	if len(tok) > maxToken {
		st.err = &GameError{Line: r.lineNo, Reason: fmt.Sprintf("unparsable move %s at ply %d (longer than %d bytes)", quote(tok), ply, maxToken), Err: ErrBadMove}
		return false
	}
	if ply > MaxPlies {
		st.err = &GameError{Line: r.lineNo, Reason: fmt.Sprintf("game longer than %d plies, more than any legal game: skipped", MaxPlies), Err: ErrTooLong}
		return false
	}
	m, reason, err := st.cur.parseMove(tok)
	if err != nil {
		what := reason
		switch {
		case errors.Is(err, ErrIllegalMove):
			what = "illegal move"
		case errors.Is(err, ErrAmbiguousMove):
			what = "ambiguous move"
		case reason == "not a move":
			what = "unparsable move"
		}
		msg := fmt.Sprintf("%s %s at ply %d", what, quote(tok), ply)
		if what == reason {
			msg = fmt.Sprintf("unparsable move %s at ply %d (%s)", quote(tok), ply, reason)
		}
		st.err = &GameError{Line: r.lineNo, Reason: msg, Err: err}
		return false
	}
	st.g.Moves = append(st.g.Moves, m)
	st.cur.play(m)
	return false
}

// begin marks the move text as started and sets up the start position from
// the tags on the first move or result.
func (r *PGNReader) begin(st *pgnGame) {
	if !st.started {
		st.started = true
		st.g.Line = r.lineNo
	}
	st.movetext = true
	if st.setUp {
		return
	}
	st.setUp = true
	st.cur = startPos
	if v := st.tagValue("Variant"); v != "" && !standardVariant(v) {
		st.err = &GameError{Line: st.g.Line, Reason: fmt.Sprintf("unsupported variant %q", v)}
		return
	}
	if fen := strings.TrimSpace(st.tagValue("FEN")); fen != "" {
		p, err := ParseFEN(fen)
		if err != nil {
			st.err = &GameError{Line: st.tagLine("FEN"), Reason: fmt.Sprintf("bad FEN tag: %v", err), Err: err}
			return
		}
		st.cur = *p
	}
}

func (st *pgnGame) tagValue(name string) string {
	for _, t := range st.g.Tags {
		if t[0] == name {
			return t[1]
		}
	}
	return ""
}

func (st *pgnGame) tagLine(name string) int {
	for i, t := range st.g.Tags {
		if t[0] == name {
			return st.tagLines[i]
		}
	}
	return st.g.Line
}

func standardVariant(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "standard", "chess", "normal", "from position", "fromposition":
		return true
	}
	return false
}

// finish completes the game being read.
func (r *PGNReader) finish(st *pgnGame) (*PGNGame, error) {
	r.games++
	num := r.games
	if !st.setUp {
		r.begin(st)
	}
	if st.err != nil {
		st.err.Game = num
		return nil, st.err
	}
	g := st.g
	g.Index = num - 1
	start := st.startPosition()
	g.Start = &start
	g.StartFEN = start.FEN()
	if g.Result == "" {
		g.Result = "*"
		if v := st.tagValue("Result"); v == "1-0" || v == "0-1" || v == "1/2-1/2" {
			g.Result = v
		}
	}
	return &g, nil
}

func (st *pgnGame) startPosition() Position {
	if fen := strings.TrimSpace(st.tagValue("FEN")); fen != "" {
		if p, err := ParseFEN(fen); err == nil {
			return *p
		}
	}
	return startPos
}
