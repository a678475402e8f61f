package cli

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// benchPGN writes the first games of a real PGN holding at least minPositions positions.
func benchPGN(b *testing.B, minPositions int) (string, int) {
	b.Helper()
	src := testutil.Shared(b, "data/pgn/educhess-Kasparov.pgn")
	raw, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	// Cut at a game boundary once enough positions are in.
	r := board.NewPGNReader(&byteReader{raw: raw})
	positions, end := 0, 0
	for positions < minPositions {
		g, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			continue
		}
		positions += len(g.Moves) + 1
		end = g.Line
	}
	_ = end
	// Write the whole prefix of games read: simplest is the file up to the next game's tag line.
	lines := 0
	cut := len(raw)
	g, err := r.Next()
	if err == nil {
		for i, c := range raw {
			if c == '\n' {
				lines++
				if lines == g.Line-1 {
					cut = i + 1
					break
				}
			}
		}
	}
	path := filepath.Join(b.TempDir(), "bench.pgn")
	if err := os.WriteFile(path, raw[:cut], 0o644); err != nil {
		b.Fatal(err)
	}
	return path, positions
}

type byteReader struct {
	raw []byte
	off int
}

func (r *byteReader) Read(p []byte) (int, error) {
	if r.off >= len(r.raw) {
		return 0, io.EOF
	}
	n := copy(p, r.raw[r.off:])
	r.off += n
	return n, nil
}

// BenchmarkBatchActivation is the end-to-end `batch` throughput with the activation lens on maia-1100 (PGN
// read, encoded, run, NPY written); compare with BenchmarkForwardMaia at the same batch size.
func BenchmarkBatchActivation(b *testing.B) {
	maia := testutil.Shared(b, "models/maia-1100.onnx")
	lib := testutil.ORTLib(b)
	pgn, positions := benchPGN(b, 4096)
	out := filepath.Join(b.TempDir(), "out")
	env := map[string]string{"LCZEROLENS_ORT_LIB": lib}
	args := []string{"batch", pgn, "-o", out, "--force", "--quiet", "--model", maia, "--lens", "activation", "--pattern", "^block5/conv2/relu$", "--batch-size", "256"}
	if code, _, stderr := runCLI(b, env, args...); code != 0 { // warm-up: session compile, page cache
		b.Fatalf("exit %d: %s", code, stderr)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if code, _, stderr := runCLI(b, env, args...); code != 0 {
			b.Fatalf("exit %d: %s", code, stderr)
		}
	}
	b.ReportMetric(float64(positions*b.N)/b.Elapsed().Seconds(), "positions/s")
}

// BenchmarkForwardMaia is the bare forward pass of maia-1100 at batch 256 through the same runtime,
// the baseline for BenchmarkBatchActivation.
func BenchmarkForwardMaia(b *testing.B) {
	maia := testutil.Shared(b, "models/maia-1100.onnx")
	if _, err := model.InitRuntime([]string{testutil.ORTLib(b)}); err != nil {
		b.Fatal(err)
	}
	n, err := model.Load(maia)
	if err != nil {
		b.Fatal(err)
	}
	rt, err := model.NewSessionCache(model.SessionOptions{Device: "cpu"})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	const batch = 256
	planes := make([]float32, batch*board.NumPlanes*64)
	g := board.NewGame(board.StartPosition())
	for i := 0; i < batch; i++ {
		g.Encode(board.FillFENOnly, planes[i*board.NumPlanes*64:(i+1)*board.NumPlanes*64])
	}
	if _, err := n.Forward(rt, planes, batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := n.Forward(rt, planes, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "positions/s")
}
