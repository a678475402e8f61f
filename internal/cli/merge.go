package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/store"
)

// MergeOptions are the inputs of `lczerolens merge`.
type MergeOptions struct {
	Factory *Factory
	Dirs    []string
	Output  string
	Force   bool
	Quiet   bool
}

// NewCmdMerge builds `lczerolens merge`.
func NewCmdMerge(f *Factory, runF ...func(*MergeOptions) error) *cobra.Command {
	opts := &MergeOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "merge DIR... -o OUTDIR",
		Short: "Join the output directories of batch --shard runs into one",
		Long: `Join the output directories of "lczerolens batch --shard i/n" runs into OUTDIR, giving the files one run
over the whole input writes, byte for byte: NPY files, positions.jsonl, results.jsonl and errors.jsonl in
input order, and the manifest of the unsharded run. The directories may be given in any order.

Merge refuses (exit 2), naming the difference, unless every directory is a complete shard of the same run:
same input (name, size and sha256), model sha256, lens and options, format, plies, input format, history
fill and tool version, the same shard count, and every shard 0..n-1 exactly once. Rows are streamed: memory does not grow
with the size of the shards.`,
		Example: `  lczerolens merge out/shard-* -o out/all
  lczerolens merge /data/run1/shard-{0..7} -o /data/run1/merged --force`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dirs = args
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return runMerge(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Output, "output", "o", "", "output directory (required)")
	fl.BoolVar(&opts.Force, "force", false, "overwrite a non-empty OUTDIR")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "no summary line")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// shardDir is one directory given to merge.
type shardDir struct {
	dir      string
	m        *store.Manifest
	shard    shardInfo
	input    inputInfo
	rawInput json.RawMessage
}

func (s *shardDir) String() string {
	return fmt.Sprintf("%s (shard %d/%d)", s.dir, s.shard.Index, s.shard.Count)
}

func runMerge(opts *MergeOptions) error {
	shards := make([]*shardDir, len(opts.Dirs))
	for i, dir := range opts.Dirs {
		s, err := readShardDir(dir)
		if err != nil {
			return err
		}
		shards[i] = s
	}
	if err := checkShards(shards); err != nil {
		return err
	}
	slices.SortFunc(shards, func(a, b *shardDir) int { return a.shard.Index - b.shard.Index })
	first := shards[0].m
	extra := map[string]any{}
	for k, v := range first.Extra {
		if k != "shard" { // what sets a shard apart; the unsharded run has none
			extra[k] = v
		}
	}
	dirs := make([]string, len(shards))
	positions, bad := 0, 0
	for i, s := range shards {
		dirs[i] = s.dir
		positions += s.m.Count
		bad += s.m.Errors
	}
	err := store.Merge(opts.Output, dirs, store.Options{
		Format: first.Storage, Force: opts.Force, ToolVersion: first.ToolVersion,
		Model: first.Model, Lens: first.Lens, Extra: extra,
	})
	if err != nil {
		return storeError(err)
	}
	if !opts.Quiet {
		fmt.Fprintf(opts.Factory.IO.ErrOut, "merge: %d shards, %d positions, %d bad records -> %s\n", len(shards), positions, bad, opts.Output)
	}
	return nil
}

// readShardDir reads a directory's manifest and refuses anything but a complete shard.
func readShardDir(dir string) (*shardDir, error) {
	m, err := store.ReadManifest(dir)
	if err != nil {
		return nil, inputError(fmt.Errorf("merge: %s is not a batch output directory: %w", dir, err))
	}
	s := &shardDir{dir: dir, m: m, rawInput: m.Extra["input"]}
	raw, ok := m.Extra["shard"]
	if !ok {
		return nil, usageErrorf("merge: %s was not made with batch --shard", dir)
	}
	if err := json.Unmarshal(raw, &s.shard); err != nil || s.shard.Count < 1 || s.shard.Index < 0 || s.shard.Index >= s.shard.Count {
		return nil, usageErrorf("merge: %s: unreadable shard in its manifest: %s", dir, raw)
	}
	if !m.Complete {
		return nil, usageErrorf("merge: %s is not complete: its run did not finish (rerun it with --resume)", s)
	}
	if err := json.Unmarshal(s.rawInput, &s.input); err != nil || s.input.SHA256 == "" {
		return nil, usageErrorf("merge: %s: its manifest does not record the input's sha256", s)
	}
	return s, nil
}

// checkShards refuses shards that are not exactly the n parts of one run, naming what differs.
func checkShards(shards []*shardDir) error {
	a := shards[0]
	var diffs []string
	for _, b := range shards[1:] {
		diffs = append(diffs, shardDiffs(a, b)...)
	}
	if len(diffs) > 0 {
		const most = 6
		if len(diffs) > most {
			diffs = append(diffs[:most], fmt.Sprintf("and %d more differences", len(diffs)-most))
		}
		return usageErrorf("merge: the shards are not parts of one run: %s", strings.Join(diffs, "; "))
	}
	n := a.shard.Count
	seen := make([]*shardDir, n)
	for _, s := range shards {
		if prev := seen[s.shard.Index]; prev != nil {
			return usageErrorf("merge: shard %d/%d is given twice: %s and %s", s.shard.Index, n, prev.dir, s.dir)
		}
		seen[s.shard.Index] = s
	}
	var missing []string
	for i, s := range seen {
		if s == nil {
			missing = append(missing, fmt.Sprintf("%d/%d", i, n))
		}
	}
	if len(missing) > 0 {
		if len(missing) > 10 {
			missing = append(missing[:10], fmt.Sprintf("... (%d in all)", len(missing)))
		}
		return usageErrorf("merge: shard %s missing: %d of %d given", strings.Join(missing, ", "), len(shards), n)
	}
	return nil
}

// shardDiffs lists how shard b's run differs from shard a's.
func shardDiffs(a, b *shardDir) []string {
	var d []string
	differ := func(what string, x, y any) {
		d = append(d, fmt.Sprintf("%s is %v in %s but %v in %s", what, x, a, y, b))
	}
	if a.shard.Count != b.shard.Count {
		differ("the shard count", a.shard.Count, b.shard.Count)
	}
	ia, ib := a.input, b.input
	if ia.Name != ib.Name {
		differ("the input", fmt.Sprintf("%q", ia.Name), fmt.Sprintf("%q", ib.Name))
	}
	if ia.SHA256 != ib.SHA256 {
		differ("the input sha256", ia.SHA256, ib.SHA256)
	}
	if ia.Size != nil && ib.Size != nil && *ia.Size != *ib.Size {
		differ("the input size", *ia.Size, *ib.Size)
	}
	if ia.Type != ib.Type {
		differ("the input type", ia.Type, ib.Type)
	}
	if ia.Plies != ib.Plies {
		differ("--plies", ia.Plies, ib.Plies)
	}
	if ia.InputFormat != ib.InputFormat {
		differ("--input-format", ia.InputFormat, ib.InputFormat)
	}
	if ia.HistoryFill != ib.HistoryFill {
		differ("--history-fill", ia.HistoryFill, ib.HistoryFill)
	}
	if pa, pb := ia.policyTranspose(), ib.policyTranspose(); pa != pb {
		differ("--policy-transpose", pa, pb)
	}
	ma, mb := a.m, b.m
	if ma.Model.SHA256 != mb.Model.SHA256 {
		differ("the model", fmt.Sprintf("%s (sha256 %s)", ma.Model.Path, ma.Model.SHA256), fmt.Sprintf("%s (sha256 %s)", mb.Model.Path, mb.Model.SHA256))
	}
	if ma.Lens.Name != mb.Lens.Name {
		differ("the lens", fmt.Sprintf("%q", ma.Lens.Name), fmt.Sprintf("%q", mb.Lens.Name))
	} else {
		d = append(d, optionDiffs(a, b)...) // other lenses have other options anyway
	}
	if ma.Storage != mb.Storage {
		differ("--format", ma.Storage, mb.Storage)
	}
	if ma.ToolVersion != mb.ToolVersion {
		differ("the tool version", ma.ToolVersion, mb.ToolVersion)
	}
	if ma.Records != mb.Records {
		differ("the number of input records", ma.Records, mb.Records)
	}
	// Fields a later batch may add: they must agree too, or the merged manifest would misdescribe a shard.
	for _, k := range slices.Sorted(maps.Keys(ma.Extra)) {
		if k != "shard" && k != "input" && !bytes.Equal(ma.Extra[k], mb.Extra[k]) {
			differ(fmt.Sprintf("manifest field %q", k), string(ma.Extra[k]), string(mb.Extra[k]))
		}
	}
	if len(d) == 0 && !bytes.Equal(a.rawInput, b.rawInput) {
		differ(`manifest field "input"`, string(a.rawInput), string(b.rawInput))
	}
	return d
}

// optionDiffs names each lens option whose value differs between two shards.
func optionDiffs(a, b *shardDir) []string {
	oa, ob := a.m.Lens.Options, b.m.Lens.Options
	names := slices.Sorted(maps.Keys(oa))
	for k := range ob {
		if _, ok := oa[k]; !ok {
			names = append(names, k)
		}
	}
	var d []string
	for _, k := range names {
		x, y := optionValue(oa, k), optionValue(ob, k)
		if x != y {
			d = append(d, fmt.Sprintf("lens option %q is %s in %s but %s in %s", k, x, a, y, b))
		}
	}
	return d
}

func optionValue(opts map[string]any, k string) string {
	v, ok := opts[k]
	if !ok {
		return "unset"
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}
