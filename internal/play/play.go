package play

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/lczerolens/lczerolens/internal/board"
)

// Player is one side of a match: a name for the records, a network to read positions and a sampler.
type Player struct {
	Name    string
	Eval    Evaluator
	Sampler Sampler
}

// Options shape a match.
type Options struct {
	Games    int    // games to play; openings are cycled, each played with both colours in turn
	MaxPlies int    // plies the players may play after the opening before the game is drawn; 0 = no limit
	Seed     uint64 // each game draws from its own stream (Seed, game index), so results do not depend on batching
}

// MoveNote is what the mover's network said about the move it chose.
type MoveNote struct {
	P float32 // the policy's probability of the move played
	V float32 // the network's value (Q) of the position before the move, for the mover
}

// Record is one finished game.
type Record struct {
	Index       int
	Opening     Opening
	WhiteIsA    bool // players[0] had white
	Game        *board.Game
	Book        int        // plies of the opening at the start of Game
	Notes       []MoveNote // one per ply after the book
	Termination board.Termination
	MaxPlies    bool   // stopped by Options.MaxPlies (Termination is NotOver) and scored a draw
	Result      string // "1-0", "0-1", "1/2-1/2"
}

// ScoreA is players[0]'s score in the game: 1, 0.5 or 0.
func (r *Record) ScoreA() float64 {
	switch {
	case r.Result == "1/2-1/2":
		return 0.5
	case (r.Result == "1-0") == r.WhiteIsA:
		return 1
	}
	return 0
}

type live struct {
	rec  *Record
	rng  *rand.Rand
	done bool
}

// Run plays opts.Games games between players[0] and players[1] from the openings (nil: the standard start),
// game i from opening i/2 (cycled) with players[0] white when i is even. Every ply, the live games whose
// side to move belongs to one player are read in one batched call of its evaluator (with every child
// position too for a look-ahead sampler). progress, when not nil, is called with the games finished so far.
func Run(ctx context.Context, players [2]Player, openings []Opening, opts Options, progress func(done int)) ([]*Record, error) {
	if len(openings) == 0 {
		openings = []Opening{{Name: "startpos", Start: board.StartPosition()}}
	}
	for _, p := range players {
		if err := p.Sampler.Validate(); err != nil {
			return nil, err
		}
	}
	games := make([]*live, opts.Games)
	recs := make([]*Record, opts.Games)
	for i := range games {
		op := openings[(i/2)%len(openings)]
		g := board.NewGame(op.Start)
		for _, m := range op.Moves {
			g.Play(m)
		}
		recs[i] = &Record{Index: i, Opening: op, WhiteIsA: i%2 == 0, Game: g, Book: len(op.Moves)}
		games[i] = &live{rec: recs[i], rng: rand.New(rand.NewPCG(opts.Seed, uint64(i)))}
	}
	finished := 0
	for {
		// Adjudicate first: an opening may end in a finished position.
		var byPlayer [2][]*live
		for _, l := range games {
			if l.done {
				continue
			}
			r := l.rec
			if term, res := r.Game.Outcome(); term != board.NotOver {
				r.Termination, r.Result, l.done = term, res, true
			} else if opts.MaxPlies > 0 && r.Game.Ply()-r.Book >= opts.MaxPlies {
				r.MaxPlies, r.Result, l.done = true, "1/2-1/2", true
			}
			if l.done {
				finished++
				if progress != nil {
					progress(finished)
				}
				continue
			}
			white := r.Game.Current().SideToMove() == board.White
			who := 1
			if white == r.WhiteIsA {
				who = 0
			}
			byPlayer[who] = append(byPlayer[who], l)
		}
		if len(byPlayer[0])+len(byPlayer[1]) == 0 {
			return recs, nil
		}
		for who, ls := range byPlayer {
			if len(ls) == 0 {
				continue
			}
			if err := step(ctx, players[who], ls); err != nil {
				return nil, err
			}
		}
	}
}

// step reads the positions of ls (and their children for a look-ahead sampler) in one evaluator call and
// plays one move in each.
func step(ctx context.Context, p Player, ls []*live) error {
	look := p.Sampler.LookAhead()
	var batch []*board.Game
	var inCheck []bool
	for _, l := range ls {
		g := l.rec.Game
		batch = append(batch, g)
		if look {
			for _, m := range g.Current().LegalMoves() {
				c := g.Clone()
				c.Play(m)
				batch = append(batch, c)
				inCheck = append(inCheck, c.Current().InCheck())
			}
		}
	}
	evs, err := p.Eval.Evaluate(ctx, batch)
	if err != nil {
		return err
	}
	if len(evs) != len(batch) {
		return fmt.Errorf("play: %s: %d evaluations for %d positions", p.Name, len(evs), len(batch))
	}
	k, c := 0, 0
	for _, l := range ls {
		parent := evs[k]
		k++
		var children []Eval
		var checks []bool
		if look {
			n := len(parent.Moves)
			children, checks = evs[k:k+n], inCheck[c:c+n]
			k, c = k+n, c+n
		}
		u := p.Sampler.Utilities(parent, children, checks)
		i := p.Sampler.Choose(parent, u, l.rng)
		l.rec.Game.Play(parent.Moves[i])
		l.rec.Notes = append(l.rec.Notes, MoveNote{P: parent.P[i], V: parent.Q})
	}
	return nil
}
