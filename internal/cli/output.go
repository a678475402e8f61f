package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/lczerolens/lczerolens/internal/atomicfile"
	"github.com/lczerolens/lczerolens/internal/source"
	"github.com/lczerolens/lczerolens/internal/store"
)

// resumeError words the store's refusal to resume an output of another shard in the terms of --shard
// ("it holds shard 1/3, not the whole input"); other errors pass unchanged.
func resumeError(err error) error {
	var me *store.MismatchError
	if !errors.As(err, &me) {
		return err
	}
	for _, d := range me.Diffs {
		if d.Setting == "shard" || strings.HasPrefix(d.Setting, "shard.") {
			return usageErrorf("batch: cannot resume %s: it holds %s, not %s", me.Dir, describeShard(manifestShard(me.Had)), describeShard(manifestShard(me.Want)))
		}
	}
	return err
}

// manifestShard reads the shard a manifest records; the zero Shard (the whole input) when none.
func manifestShard(m *store.Manifest) source.Shard {
	var s shardInfo
	if raw, ok := m.Extra["shard"]; ok && json.Unmarshal(raw, &s) == nil {
		return source.Shard{Index: s.Index, Count: s.Count}
	}
	return source.Shard{}
}

func describeShard(s source.Shard) string {
	if s.Count == 0 {
		return "the whole input"
	}
	return "shard " + s.String()
}

// checkOutputFile refuses an existing output file unless force (exit 2, naming --force), before a command
// does its work; "" and "-" (stdout) pass.
func checkOutputFile(cmd, path string, force bool) error {
	if path == "" || path == "-" {
		return nil
	}
	if err := atomicfile.Check(path, force); err != nil {
		return outputFileError(cmd, path, err)
	}
	return nil
}

// writeOutput writes a command's single-file output: to stdout for "" and "-", else to path in one
// piece (a temporary file in the same directory, synced and renamed), so that a failed or interrupted
// write never leaves a partial file, and an existing file is replaced only with force.
func writeOutput(cmd string, stdout io.Writer, path string, force bool, write func(io.Writer) error) error {
	if path == "" || path == "-" {
		if err := write(stdout); err != nil {
			return fmt.Errorf("%s: write: %w", cmd, err)
		}
		return nil
	}
	if err := atomicfile.Write(path, force, write); err != nil {
		return outputFileError(cmd, path, err)
	}
	return nil
}

func outputFileError(cmd, path string, err error) error {
	if errors.Is(err, atomicfile.ErrExists) {
		return usageErrorf("%s: %s already exists: pass --force to replace it", cmd, path)
	}
	return fmt.Errorf("%s: %w", cmd, err)
}
