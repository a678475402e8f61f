package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/source"
)

// nopEngine analyses nothing: the tests of reading need no network.
type nopEngine struct{}

func (nopEngine) Run(*lens.Batch) (*lens.Outputs, []lens.BatchResult, error) { return nil, nil, nil }

// rows runs in and returns one line per position and bad record: record, source, FEN, and the batches' record
// counts, in order.
func rows(t *testing.T, in Input, opts Options) []string {
	t.Helper()
	sink := &testSink{failAt: -1}
	if _, err := Run(context.Background(), in, nopEngine{}, sink, opts); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range sink.consumed {
		for _, bad := range b.Bad {
			out = append(out, fmt.Sprintf("bad %d %s line %d", bad.Record, bad.Source, bad.Line))
		}
		for _, it := range b.Items {
			out = append(out, fmt.Sprintf("%d %s ply %d %s", it.Record, it.Source, it.Ply, it.Pos.FEN()))
		}
		out = append(out, fmt.Sprintf("records %d", b.Records))
	}
	return out
}

// TestPartsEqualConcatenation: several inputs give the positions of their concatenation, records numbered
// across the parts (so shards and resumes count the same), each naming its own file.
func TestPartsEqualConcatenation(t *testing.T) {
	a, b := lines(5), lines(7)
	for _, opts := range []Options{{BatchSize: 3}, {BatchSize: 4, Strict: false}} {
		for _, sel := range []source.Options{{}, {Shard: source.Shard{Index: 1, Count: 3}}} {
			whole := rows(t, Input{R: strings.NewReader(a + b), Name: "ab", Type: source.JSONL, Select: sel, SkipRecords: 2}, opts)
			parts := rows(t, Input{Parts: []Part{{Name: "a", R: strings.NewReader(a)}, {Name: "b", R: strings.NewReader(b)}},
				Type: source.JSONL, Select: sel, SkipRecords: 2}, opts)
			if len(whole) != len(parts) {
				t.Fatalf("%d rows from the concatenation, %d from the parts", len(whole), len(parts))
			}
			for i := range whole {
				// The concatenation names "ab"; the parts name a for records 0-4, b after.
				w := whole[i]
				var rec int
				if _, err := fmt.Sscanf(w, "%d", &rec); err == nil {
					name := "a"
					if rec >= 5 {
						name = "b"
					}
					w = strings.Replace(w, " ab ", " "+name+" ", 1)
				}
				if w != parts[i] {
					t.Fatalf("row %d: parts %q, concatenation %q", i, parts[i], w)
				}
			}
		}
	}
}

// TestPuzzlePartsRepeatHeader: puzzle CSVs read as several inputs, each with its header, are the puzzles of
// both, numbered across them.
func TestPuzzlePartsRepeatHeader(t *testing.T) {
	const csv = "PuzzleId,FEN,Moves,Rating,RatingDeviation,Popularity,NbPlays,Themes,GameUrl,OpeningTags\n" +
		"p1,6k1/p4ppp/8/8/8/8/5PPP/3R2K1 b - - 0 1,a7a6 d1d8,900,80,90,100,mate mateIn1,u,\n"
	got := rows(t, Input{Parts: []Part{{Name: "a.csv", R: strings.NewReader(csv)}, {Name: "b.csv", R: strings.NewReader(csv)}},
		Type: source.Puzzles}, Options{BatchSize: 8})
	want := []string{
		"0 a.csv ply 1 6k1/5ppp/p7/8/8/8/5PPP/3R2K1 w - - 0 2",
		"1 b.csv ply 1 6k1/5ppp/p7/8/8/8/5PPP/3R2K1 w - - 0 2",
		"records 2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
