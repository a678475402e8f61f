package source

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Compression is told by the stream's first bytes rather than the file's name, so that stdin and files
// named without a suffix decompress too; none of these magics begins a PGN, FEN, JSON or CSV text.
var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicBzip2 = []byte("BZh")
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// maxZstdWindow bounds the memory a zstd frame may ask for (lichess's dumps use 8 MiB windows at most), so
// that a hostile header cannot make the reader allocate gigabytes.
const maxZstdWindow = 128 << 20

// decompress returns r decompressed when it starts with a gzip, bzip2 or zstd magic, else r itself. Close
// frees the decoder; it does not close r.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return struct {
			io.Reader
			io.Closer
		}{&wrapErr{r: zr, what: "gzip"}, zr}, nil
	case bytes.HasPrefix(head, magicBzip2):
		return io.NopCloser(&wrapErr{r: bzip2.NewReader(br), what: "bzip2"}), nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return &zstdReader{wrapErr{r: zr, what: "zstd"}, zr}, nil
	}
	return io.NopCloser(br), nil
}

// wrapErr names the codec in a read error, so that a truncated download reads as such.
type wrapErr struct {
	r    io.Reader
	what string
}

func (w *wrapErr) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%s: %w", w.what, err)
	}
	return n, err
}

type zstdReader struct {
	wrapErr
	dec *zstd.Decoder
}

func (z *zstdReader) Close() error {
	z.dec.Close()
	return nil
}
