package cli

import (
	"encoding/json"
	"errors"
	"strings"

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
