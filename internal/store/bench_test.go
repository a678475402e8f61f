package store

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkWriterAdd measures writing positions with an activation-sized
// result (64x8x8) and an input-gradient-sized one (112x8x8), committing
// every 1024 positions as the batch command does.
func BenchmarkWriterAdd(b *testing.B) {
	for _, format := range []Format{FormatNPY, FormatJSON} {
		b.Run(string(format), func(b *testing.B) {
			w, err := Open(filepath.Join(b.TempDir(), "out"), testOptions(format))
			if err != nil {
				b.Fatal(err)
			}
			res := []Result{
				{Key: "block5/conv2/relu", Shape: []int{64, 8, 8}, Data: make([]float32, 64*8*8)},
				{Key: "input_grad", Shape: []int{112, 8, 8}, Data: make([]float32, 112*8*8)},
			}
			for _, r := range res {
				for i := range r.Data {
					r.Data[i] = float32(i%997)*0.0123 - 3.7
				}
			}
			mv := "e2e4"
			m := PositionMeta{Source: "games.pgn", Game: 12, Ply: 30, FEN: "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3", Move: &mv}
			b.SetBytes(int64(len(res[0].Data)+len(res[1].Data)) * 4)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if err := w.Add(m, res); err != nil {
					b.Fatal(err)
				}
				if n++; n%1024 == 0 {
					w.SetRecords(n)
					if err := w.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			}
			w.SetRecords(n)
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkMerge measures merging 4 shards of 1,024 positions each with an
// activation-sized result (64x8x8), i.e. the k-way merge of positions.jsonl
// and the streamed copy of 64 MiB of NPY rows.
func BenchmarkMerge(b *testing.B) {
	const parts, perPart = 4, 1024
	dir := b.TempDir()
	data := make([]float32, 64*8*8)
	for i := range data {
		data[i] = float32(i%997)*0.0123 - 3.7
	}
	mv := "e2e4"
	var dirs []string
	for i := range parts {
		d := filepath.Join(dir, fmt.Sprintf("part%d", i))
		w, err := Open(d, testOptions(FormatNPY))
		if err != nil {
			b.Fatal(err)
		}
		for r := i; r < parts*perPart; r += parts {
			m := PositionMeta{Source: "games.pgn", Record: r, Game: r, FEN: "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3", Move: &mv}
			if err := w.Add(m, []Result{{Key: "block5/conv2/relu", Shape: []int{64, 8, 8}, Data: data}}); err != nil {
				b.Fatal(err)
			}
		}
		w.SetRecords(parts * perPart)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	opts := testOptions(FormatNPY)
	opts.Force = true
	dst := filepath.Join(dir, "merged")
	b.SetBytes(parts * perPart * int64(len(data)) * 4)
	for b.Loop() {
		if err := Merge(dst, dirs, opts); err != nil {
			b.Fatal(err)
		}
	}
}
