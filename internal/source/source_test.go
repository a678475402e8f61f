package source

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

const twoGamesAndABadOne = `[Event "a"]
[Result "1-0"]

1. e4 e5 2. Nf3 {a comment} Nc6 (2... d6 3. d4) 3. Bb5 1-0

[Event "bad"]

1. e4 e5 2. Nf9 Nc6 *

[Event "c"]
[SetUp "1"]
[FEN "4k3/8/8/8/8/8/4P3/4K3 w - - 0 1"]

1. e4 Kd7 *
`

func collect(t *testing.T, input string, typ Type, plies string) ([]*Item, []*Bad) {
	t.Helper()
	p, err := ParsePlies(plies)
	if err != nil {
		t.Fatal(err)
	}
	items, bads, _ := collectOpts(t, input, typ, Options{Plies: p})
	return items, bads
}

// collectOpts walks input and returns its positions, bad records and record count.
func collectOpts(t *testing.T, input string, typ Type, opts Options) ([]*Item, []*Bad, int) {
	t.Helper()
	var items []*Item
	var bads []*Bad
	records, err := Walk(strings.NewReader(input), "x", typ, opts, func(it *Item) error {
		cp := *it
		cp.History = nil
		items = append(items, &cp)
		return nil
	}, func(b *Bad) error { bads = append(bads, b); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return items, bads, records
}

func TestWalkPGN(t *testing.T) {
	items, bads := collect(t, twoGamesAndABadOne, PGN, "all")
	// Game 0: 5 plies -> 6 positions; game 2: 2 plies -> 3 positions.
	if len(items) != 9 {
		t.Fatalf("%d positions, want 9", len(items))
	}
	if len(bads) != 1 || bads[0].Record != 1 || !strings.Contains(bads[0].Reason, "Nf9") {
		t.Fatalf("bad records %+v, want record 1 naming Nf9", bads)
	}
	last := items[5]
	if last.Record != 0 || last.Ply != 5 || last.Next != nil {
		t.Errorf("final position of game 0: %+v", last)
	}
	if items[0].Next == nil || items[0].Next.UCI() != "e2e4" {
		t.Errorf("first move should be e2e4")
	}
	g2 := items[6]
	if g2.Record != 2 || g2.Ply != 0 || g2.Pos.FEN() != "4k3/8/8/8/8/8/4P3/4K3 w - - 0 1" {
		t.Errorf("SetUp game start: %+v %s", g2, g2.Pos.FEN())
	}
}

func TestPlies(t *testing.T) {
	for _, tt := range []struct {
		plies string
		want  []int // plies of game 0 then game 2
	}{
		{"first:2", []int{0, 1, 0, 1}},
		{"last", []int{5, 2}},
		{"every:2", []int{0, 2, 4, 0, 2}},
	} {
		items, _ := collect(t, twoGamesAndABadOne, PGN, tt.plies)
		var got []int
		for _, it := range items {
			got = append(got, it.Ply)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("%s: plies %v, want %v", tt.plies, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("%s: plies %v, want %v", tt.plies, got, tt.want)
			}
		}
	}
	for _, bad := range []string{"first:0", "every:x", "some"} {
		if _, err := ParsePlies(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWalkLines(t *testing.T) {
	fen := "# a comment\nrnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq -\n\nnot a fen\n4k3/8/8/8/8/8/8/4K3 b - - bm Kd7; id \"x\";\n"
	items, bads := collect(t, fen, FEN, "all")
	if len(items) != 2 || len(bads) != 1 || bads[0].Line != 4 || bads[0].Record != 1 || items[1].Record != 2 {
		t.Fatalf("fen list: %d items, bads %+v", len(items), bads)
	}
	jsonl := `{"fen":"startpos","moves":"e2e4 e7e5"}
{"moves":["d2d4","d7d5","c2c4"]}
{"fen":"startpos","moves":"e2e5"}
{"fen":
`
	items, bads = collect(t, jsonl, JSONL, "all")
	if len(items) != 2 || len(bads) != 2 {
		t.Fatalf("jsonl: %d items %d bads", len(items), len(bads))
	}
	if items[0].Ply != 2 || items[1].Ply != 3 || items[1].Pos.FEN() != "rnbqkbnr/ppp1pppp/8/3p4/2PP4/8/PP2PPPP/RNBQKBNR b KQkq - 0 2" {
		t.Errorf("jsonl positions: %+v / %s", items[1], items[1].Pos.FEN())
	}
	if !strings.Contains(bads[0].Reason, "e2e5") {
		t.Errorf("illegal move reason %q", bads[0].Reason)
	}
}

func TestDetectType(t *testing.T) {
	for in, want := range map[string]Type{"a.pgn": PGN, "b.EPD": FEN, "c.fen": FEN, "d.txt": FEN, "e.jsonl": JSONL} {
		if got, err := DetectType(in, ""); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	if _, err := DetectType("-", ""); err == nil {
		t.Error("stdin without --input-type accepted")
	}
	if _, err := DetectType("x.bin", ""); err == nil {
		t.Error("unknown extension accepted")
	}
	if got, _ := DetectType("-", "jsonl"); got != JSONL {
		t.Error("explicit type ignored")
	}
}

func TestParseShard(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Shard
		ok   bool
	}{
		{"0/1", Shard{0, 1}, true},
		{"3/4", Shard{3, 4}, true},
		{"4/4", Shard{}, false},
		{"-1/4", Shard{}, false},
		{"0/0", Shard{}, false},
		{"1", Shard{}, false},
		{"a/b", Shard{}, false},
		{"1/2/3", Shard{}, false},
	} {
		got, err := ParseShard(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseShard(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}

// TestWalkShard checks that the shards of an input partition its records: each shard reports exactly the
// records r with r%n == i, with the positions and bad records of the unsharded walk and its global numbers.
func TestWalkShard(t *testing.T) {
	fen := "# c\nrnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq -\nnot a fen\n\n4k3/8/8/8/8/8/8/4K3 b - -\nbad\n8/8/8/8/8/8/8/K1k5 w - -\n"
	jsonl := "{\"moves\":\"e2e4\"}\n{\"moves\":\"e2e5\"}\n{\"fen\":\n{\"moves\":[\"d2d4\",\"d7d5\"]}\n"
	type key struct{ record, ply int }
	for _, tt := range []struct {
		name  string
		input string
		typ   Type
		total int
	}{
		{"pgn", twoGamesAndABadOne + "\n" + twoGamesAndABadOne, PGN, 6},
		{"fen", fen, FEN, 5},
		{"jsonl", jsonl, JSONL, 4},
	} {
		all, allBad, total := collectOpts(t, tt.input, tt.typ, Options{})
		if total != tt.total {
			t.Fatalf("%s: %d records, want %d", tt.name, total, tt.total)
		}
		want := map[key]string{}
		for _, it := range all {
			want[key{it.Record, it.Ply}] = it.Pos.FEN()
		}
		wantBad := map[int]string{}
		for _, b := range allBad {
			wantBad[b.Record] = b.Reason
		}
		for _, n := range []int{1, 2, 3, 7} {
			got, gotBad := map[key]string{}, map[int]string{}
			for i := range n {
				sh := Shard{Index: i, Count: n}
				items, bads, records := collectOpts(t, tt.input, tt.typ, Options{Shard: sh})
				if records != total {
					t.Errorf("%s shard %v: %d records, want %d", tt.name, sh, records, total)
				}
				held := map[int]bool{}
				for _, it := range items {
					if it.Record%n != i {
						t.Errorf("%s shard %v holds record %d", tt.name, sh, it.Record)
					}
					held[it.Record] = true
					got[key{it.Record, it.Ply}] = it.Pos.FEN()
				}
				for _, b := range bads {
					if b.Record%n != i {
						t.Errorf("%s shard %v holds bad record %d", tt.name, sh, b.Record)
					}
					held[b.Record] = true
					gotBad[b.Record] = b.Reason
				}
				if len(held) != sh.Records(total) {
					t.Errorf("%s shard %v: %d records reported, Records(%d) = %d", tt.name, sh, len(held), total, sh.Records(total))
				}
			}
			if !maps.Equal(got, want) || !maps.Equal(gotBad, wantBad) {
				t.Errorf("%s in %d shards: positions %v bad %v, want %v and %v", tt.name, n, got, gotBad, want, wantBad)
			}
		}
	}
}

func TestWalkJSONLCorruptAndFields(t *testing.T) {
	jsonl := `{"fen":"startpos","moves":"e2e4","corrupt_moves":"d2d4","label":3.5}
{"fen":"4k3/8/8/8/8/8/4P3/4K3 w - - 0 1","corrupt_fen":"4k3/8/8/8/8/8/8/4K3 w - - 0 1"}
{"moves":"e2e4"}
{"fen":"startpos","corrupt_moves":"e2e5"}
{"fen":"startpos","corrupt_moves":7}
`
	var items []*Item
	var corrupt []string
	var bads []*Bad
	_, err := Walk(strings.NewReader(jsonl), "x", JSONL, Options{}, func(it *Item) error {
		items = append(items, it)
		c := ""
		if it.Corrupt != nil {
			c = it.Corrupt.Current().FEN()
		}
		corrupt = append(corrupt, c)
		return nil
	}, func(b *Bad) error { bads = append(bads, b); return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"rnbqkbnr/pppppppp/8/8/3P4/8/PPP1PPPP/RNBQKBNR b KQkq - 0 1", // corrupt_moves from the record's start
		"4k3/8/8/8/8/8/8/4K3 w - - 0 1",
		"", // no corrupted position
	}
	if len(items) != 3 || !slices.Equal(corrupt, want) {
		t.Fatalf("corrupted positions %q, want %q", corrupt, want)
	}
	if string(items[0].Fields["label"]) != "3.5" || items[2].Fields["moves"] == nil {
		t.Errorf("fields %v / %v", items[0].Fields, items[2].Fields)
	}
	if len(bads) != 2 || !strings.Contains(bads[0].Reason, "e2e5") || !strings.Contains(bads[1].Reason, "corrupt_moves") {
		t.Errorf("bad records %+v", bads)
	}
}

// TestBadReasonBounded: a record whose parser quotes it (a 512 KiB FEN or JSONL line of multi-byte runes,
// under MaxLineBytes so that the parser sees it) gives a reason of at most MaxReason bytes, valid UTF-8, saying how much was left out; short
// reasons are kept whole.
func TestBadReasonBounded(t *testing.T) {
	huge := strings.Repeat("é", 1<<18) // 512 KiB of two-byte runes: long, yet within MaxLineBytes
	for _, tc := range []struct {
		name, input string
		typ         Type
	}{
		{"fen", huge + " w - - 0 1\n", FEN},
		{"jsonl", `{"fen": "` + huge + `"}` + "\n", JSONL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, bads, _ := collectOpts(t, tc.input, tc.typ, Options{})
			if len(bads) != 1 {
				t.Fatalf("%d bad records, want 1", len(bads))
			}
			r := bads[0].Reason
			if len(r) > MaxReason || !utf8.ValidString(r) || !strings.Contains(r, "bytes more)") {
				t.Errorf("reason of %d bytes (valid UTF-8 %v): %.80q...", len(r), utf8.ValidString(r), r)
			}
		})
	}
	_, bads := collect(t, "not a fen\n", FEN, "all")
	if len(bads) != 1 || strings.Contains(bads[0].Reason, "bytes more") || bads[0].Reason == "" {
		t.Errorf("short reason changed: %+v", bads)
	}
}
