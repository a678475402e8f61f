package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/lczerolens/lczerolens/internal/pipeline"
	"github.com/lczerolens/lczerolens/internal/source"
)

// inputFiles are the positional inputs of a command that reads positions: files, plain or compressed, or
// "-" for stdin, read one after the other as one input of one type.
type inputFiles struct {
	names []string
	typ   source.Type
	size  int64 // bytes on disk of all files, -1 when reading stdin
	parts []pipeline.Part
	files []*os.File
}

// inputTypeHelp documents --input-type for every command that reads positions.
const inputTypeHelp = "input type: pgn, fen, jsonl or puzzles (default: from the extension, .pgn .fen/.epd .jsonl .csv, " +
	"also under .gz/.bz2/.zst; required for stdin)"

// openInputs opens names for cmd; explicit is --input-type. Every file must be of one type.
func openInputs(cmd string, names []string, explicit string, stdin io.Reader) (in *inputFiles, err error) {
	if len(names) == 0 {
		return nil, usageErrorf("%s: no input: give a file, several, or - for stdin", cmd)
	}
	in = &inputFiles{names: names}
	defer func() {
		if err != nil {
			in.Close()
			in = nil
		}
	}()
	for i, name := range names {
		typ, err := source.DetectType(name, explicit)
		if err != nil {
			return in, inputError(err)
		}
		if i > 0 && typ != in.typ {
			return in, usageErrorf("%s: %s is %s but %s is %s: give inputs of one type", cmd, names[0], in.typ, name, typ)
		}
		in.typ = typ
		if name == "-" {
			if len(names) > 1 {
				return in, usageErrorf("%s: - (stdin) must be the only input", cmd)
			}
			in.size = -1
			in.parts = append(in.parts, pipeline.Part{Name: name, R: stdin})
			continue
		}
		file, err := os.Open(name)
		if err != nil {
			return in, pathError(fmt.Errorf("%s: %w", cmd, err))
		}
		in.files = append(in.files, file)
		if st, err := file.Stat(); err == nil && in.size >= 0 {
			in.size += st.Size()
		} else {
			in.size = -1
		}
		in.parts = append(in.parts, pipeline.Part{Name: name, R: file})
	}
	return in, nil
}

// name is the inputs as one name, for manifests and messages.
func (in *inputFiles) name() string { return strings.Join(in.names, " ") }

// tee copies every byte read from the inputs to w (a hash of the input).
func (in *inputFiles) tee(w io.Writer) {
	for i := range in.parts {
		in.parts[i].R = io.TeeReader(in.parts[i].R, w)
	}
}

// rewind reopens the files at their start for another pass (a second network); stdin cannot be reread.
func (in *inputFiles) rewind() error {
	for i, f := range in.files {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("input: rewind %s: %w", f.Name(), err)
		}
		in.parts[i].R = f
	}
	if len(in.files) < len(in.parts) {
		return usageErrorf("input: stdin can be read only once: give a file")
	}
	return nil
}

// Close closes the files; safe on nil.
func (in *inputFiles) Close() {
	if in == nil {
		return
	}
	for _, f := range in.files {
		f.Close()
	}
}
