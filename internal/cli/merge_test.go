package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// Bad games for the sharding tests: an illegal move, a move into check, a bad FEN tag.
var badGames = []string{
	"[Event \"bad 1\"]\n\n1. e4 e5 2. Qh5 Ke7 3. Qxf9 *\n",
	"[Event \"bad 2\"]\n\n1. e4 f6 2. d4 g5 3. Qh5+ Kf7 4. Qh6 *\n",
	"[Event \"bad 3\"]\n[SetUp \"1\"]\n[FEN \"8/8/8/8/8/8/8/8 w - - 0 1\"]\n\n1. e4 *\n",
}

// shardingPGN writes a copy of a real PGN with bad games placed before, among and after its games, so that
// every shard of a 4-way split holds some bad records.
func shardingPGN(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(testutil.Shared(t, "data/pgn/educhess-Morphy.pgn"))
	if err != nil {
		t.Fatal(err)
	}
	games := strings.SplitAfter(string(raw), "\n\n[Event ")
	var b strings.Builder
	b.WriteString(badGames[0] + "\n")
	for i, g := range games {
		if i > 0 {
			g = "[Event " + g
		}
		b.WriteString(strings.TrimSuffix(g, "[Event "))
		if i == len(games)/2 {
			b.WriteString("\n" + badGames[1] + "\n")
		}
	}
	b.WriteString("\n\n" + strings.Join(badGames, "\n"))
	path := filepath.Join(t.TempDir(), "games.pgn")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMergeShardsEqualUnsharded is the acceptance test of sharding: 4 shards run as parallel processes and
// merged give exactly the files of one unsharded run, manifest and progress included, bad games included.
func TestMergeShardsEqualUnsharded(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in -short mode")
	}
	lib := testutil.ORTLib(t)
	pgn := shardingPGN(t)
	games, _, bad := pgnCounts(t, pgn)
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"npy", []string{"--lens", "activation,saliency", "--batch-size", "64", "--plies", "every:2"}},
		{"json", []string{"--lens", "activation", "--format", "json", "--plies", "every:3"}},
		{"json-logit-lens-ablation", []string{"--lens", "logit-lens,ablation", "--channels", "0-1", "--format", "json", "--plies", "every:3"}},
		{"ig-keep", []string{"--lens", "integrated-gradients", "--steps", "4", "--keep", "heatmap,ig_gap", "--plies", "every:4"}},
		{"npy-sae", []string{"--lens", "sae", "--sae", saeExitFixture(t, t.TempDir()), "--plies", "every:3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			run := func(out string, extra ...string) []string {
				return append(append([]string{"batch", pgn, "-o", out, "--quiet"}, tt.args...), extra...)
			}
			whole := filepath.Join(dir, "whole")
			if out, err := cliProcess(t, run(whole)...).CombinedOutput(); err != nil {
				t.Fatalf("unsharded run: %v\n%s", err, out)
			}
			const n = 4
			var procs []*exec.Cmd
			var outs []*bytes.Buffer
			var shardDirs []string
			for i := range n {
				sd := filepath.Join(dir, fmt.Sprintf("shard-%d", i))
				cmd := cliProcess(t, run(sd, "--shard", fmt.Sprintf("%d/%d", i, n))...)
				var buf bytes.Buffer
				cmd.Stdout, cmd.Stderr = &buf, &buf
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				procs, outs, shardDirs = append(procs, cmd), append(outs, &buf), append(shardDirs, sd)
			}
			for i, cmd := range procs {
				if err := cmd.Wait(); err != nil {
					t.Fatalf("shard %d: %v\n%s", i, err, outs[i])
				}
			}
			// Each shard is a complete output of its own records.
			held, heldBad := 0, 0
			for i, sd := range shardDirs {
				var m struct {
					Complete bool `json:"complete"`
					Records  int  `json:"records"`
					Errors   int  `json:"errors"`
					Shard    struct {
						Index, Count int
						Records      struct{ First, Stride, Count int }
					} `json:"shard"`
				}
				raw, err := os.ReadFile(filepath.Join(sd, "manifest.json"))
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatal(err)
				}
				if !m.Complete || m.Records != games+bad || m.Shard.Index != i || m.Shard.Count != n ||
					m.Shard.Records.First != i || m.Shard.Records.Stride != n {
					t.Errorf("shard %d manifest: %s", i, raw)
				}
				if m.Errors == 0 {
					t.Errorf("shard %d holds no bad record: the test input should spread them", i)
				}
				for _, row := range readLines(t, filepath.Join(sd, "positions.jsonl")) {
					var p struct{ Record, Game int }
					if err := json.Unmarshal([]byte(row), &p); err != nil || p.Record%n != i || p.Game != p.Record {
						t.Fatalf("shard %d row %s: not one of its records (%v)", i, row, err)
					}
				}
				held += m.Shard.Records.Count
				heldBad += m.Errors
			}
			if held != games+bad || heldBad != bad {
				t.Errorf("shards hold %d records (%d bad), the input has %d (%d bad)", held, heldBad, games+bad, bad)
			}
			merged := filepath.Join(dir, "merged")
			env := map[string]string{"LCZEROLENS_ORT_LIB": lib}
			rev := slices.Clone(shardDirs)
			slices.Reverse(rev) // the order of the arguments does not matter
			code, _, stderr := runCLI(t, env, append([]string{"merge", "-o", merged}, rev...)...)
			if code != 0 {
				t.Fatalf("merge: exit %d: %s", code, stderr)
			}
			compareDirs(t, whole, merged)
			if len(readLines(t, filepath.Join(merged, "errors.jsonl"))) != bad {
				t.Errorf("merged errors.jsonl does not hold the %d bad games", bad)
			}
		})
	}
}

// compareDirs fails unless a and b hold the same files with the same bytes.
func compareDirs(t *testing.T, a, b string) {
	t.Helper()
	names := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	na, nb := names(a), names(b)
	if !slices.Equal(na, nb) {
		t.Fatalf("%s holds %v, %s holds %v", a, na, b, nb)
	}
	for _, n := range na {
		if x, y := fileSum(t, filepath.Join(a, n)), fileSum(t, filepath.Join(b, n)); x != y {
			t.Errorf("%s differs: %s vs %s", n, x, y)
		}
	}
}

// smallPGN writes 9 short games, 2 of them bad, to dir/name.
func smallPGN(t *testing.T, dir, name string) string {
	t.Helper()
	good := []string{"1. e4 e5 2. Nf3 Nc6 *", "1. d4 d5 2. c4 *", "1. c4 e5 *", "1. Nf3 d5 2. g3 *", "1. e4 c5 2. Nf3 d6 3. d4 *",
		"1. d4 Nf6 *", "1. e4 e6 *"}
	var b strings.Builder
	for i, g := range good {
		fmt.Fprintf(&b, "[Event \"g%d\"]\n\n%s\n\n", i, g)
		if i == 2 || i == 5 {
			b.WriteString(badGames[i/3] + "\n")
		}
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMergeRefuses checks that merge refuses directories that are not the complete shards of one run,
// with exit code 2 and a message naming the difference.
func TestMergeRefuses(t *testing.T) {
	lib := testutil.ORTLib(t)
	env := map[string]string{"LCZEROLENS_ORT_LIB": lib}
	dir := t.TempDir()
	pgn := smallPGN(t, dir, "games.pgn")
	other := smallPGN(t, dir, "other.pgn")
	if err := os.WriteFile(other, append([]byte("[Event \"x\"]\n\n1. e4 *\n\n"), must(os.ReadFile(other))...), 0o644); err != nil {
		t.Fatal(err)
	}
	n := 0
	shard := func(input, spec string, extra ...string) string {
		t.Helper()
		n++
		out := filepath.Join(dir, fmt.Sprintf("out%d", n))
		args := append([]string{"batch", input, "-o", out, "--quiet"}, extra...)
		if !slices.Contains(extra, "--lens") {
			args = append(args, "--lens", "activation")
		}
		if spec != "" {
			args = append(args, "--shard", spec)
		}
		if code, _, stderr := runCLI(t, env, args...); code != 0 {
			t.Fatalf("batch %v: exit %d: %s", args, code, stderr)
		}
		return out
	}
	s0, s1 := shard(pgn, "0/2"), shard(pgn, "1/2")
	copyOf0 := filepath.Join(dir, "copy-of-0")
	if err := os.CopyFS(copyOf0, os.DirFS(s0)); err != nil {
		t.Fatal(err)
	}
	incomplete := filepath.Join(dir, "incomplete")
	if code, _, _ := runCLI(t, env, "batch", pgn, "-o", incomplete, "--lens", "activation", "--shard", "1/2", "--strict"); code != ExitUsage {
		t.Fatalf("--strict on a bad game: exit %d", code)
	}
	// The same file name with other bytes: only the checksum tells.
	changed := filepath.Join(dir, "changed")
	if err := os.Mkdir(changed, 0o755); err != nil {
		t.Fatal(err)
	}
	samePath := smallPGN(t, changed, "games.pgn")
	sameName := func() string {
		t.Helper()
		n++
		out := filepath.Join(dir, fmt.Sprintf("out%d", n))
		if err := os.WriteFile(samePath, must(os.ReadFile(other)), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := runCLI(t, env, "batch", samePath, "-o", out, "--lens", "activation", "--shard", "1/2", "--quiet"); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		return out
	}
	s0same := func() string { // shard 0 of the original bytes under the name samePath
		t.Helper()
		if err := os.WriteFile(samePath, must(os.ReadFile(pgn)), 0o644); err != nil {
			t.Fatal(err)
		}
		n++
		out := filepath.Join(dir, fmt.Sprintf("out%d", n))
		if code, _, stderr := runCLI(t, env, "batch", samePath, "-o", out, "--lens", "activation", "--shard", "0/2", "--quiet"); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		return out
	}()
	tests := []struct {
		name string
		dirs []string
		want []string
	}{
		{"missing shard", []string{s1}, []string{"shard 0/2 missing"}},
		{"repeated shard", []string{s0, s1, copyOf0}, []string{"shard 0/2 is given twice", s0, copyOf0}},
		{"other lens", []string{s0, shard(pgn, "1/2", "--lens", "saliency")}, []string{`the lens is "activation" in ` + s0 + ` (shard 0/2) but "saliency" in `}},
		{"other lens options", []string{s0, shard(pgn, "1/2", "--save-inputs")}, []string{`lens option "save-inputs" is false`, "but true"}},
		{"other plies", []string{s0, shard(pgn, "1/2", "--plies", "last")}, []string{"--plies is all", "but last"}},
		{"other history fill", []string{s0, shard(pgn, "1/2", "--history-fill", "always")}, []string{"--history-fill is fen-only", "but always"}},
		{"other format", []string{s0, shard(pgn, "1/2", "--format", "json")}, []string{"--format is npy", "but json"}},
		{"other input", []string{s0, shard(other, "1/2")}, []string{"the input is", "other.pgn", "the input sha256 is"}},
		{"same name, other bytes", []string{s0same, sameName()}, []string{"the input sha256 is", "the input size is"}},
		{"other shard count", []string{s0, s1, shard(pgn, "2/3")}, []string{"the shard count is 2", "but 3"}},
		{"incomplete shard", []string{s0, incomplete}, []string{incomplete, "is not complete"}},
		{"not a shard", []string{s0, shard(pgn, "")}, []string{"was not made with batch --shard"}},
		{"not an output", []string{s0, t.TempDir()}, []string{"is not a batch output directory"}},
	}
	if model := filepath.Join(testutil.Root(t), "..", "shared", "models", "maia-1100.onnx"); fileExists(model) {
		tests = append(tests, struct {
			name string
			dirs []string
			want []string
		}{"other model", []string{s0, shard(pgn, "1/2", "--model", model)}, []string{"the model is demo (built-in) (sha256 ", "maia-1100.onnx (sha256 "}})
	} else {
		t.Logf("not testing a merge across models: %s absent", model)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "merged")
			code, _, stderr := runCLI(t, env, append([]string{"merge", "-o", out}, tt.dirs...)...)
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d: %s", code, ExitUsage, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("message %q does not contain %q", stderr, w)
				}
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("message is not one line: %q", stderr)
			}
		})
	}
	// The two good shards merge, and a second merge into the same directory needs --force.
	out := filepath.Join(dir, "merged")
	if code, _, stderr := runCLI(t, env, "merge", s1, s0, "-o", out); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, env, "merge", s1, s0, "-o", out); code != ExitUsage || !strings.Contains(stderr, "--force") {
		t.Errorf("merge into a non-empty directory: exit %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, env, "merge", s1, s0, "-o", out, "--force"); code != 0 {
		t.Errorf("merge --force: exit %d %q", code, stderr)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestBatchShardFlag checks --shard values and that an output is resumed only as the shard it holds.
func TestBatchShardFlag(t *testing.T) {
	lib := testutil.ORTLib(t)
	env := map[string]string{"LCZEROLENS_ORT_LIB": lib}
	dir := t.TempDir()
	pgn := smallPGN(t, dir, "games.pgn")
	for _, bad := range []string{"4/4", "1", "-1/2", "a/b", "0/0"} {
		code, _, stderr := runCLI(t, env, "batch", pgn, "-o", filepath.Join(dir, "x"), "--shard", bad)
		if code != ExitUsage || !strings.Contains(stderr, "shard") {
			t.Errorf("--shard %s: exit %d %q", bad, code, stderr)
		}
	}
	out := filepath.Join(dir, "s1")
	if code, _, stderr := runCLI(t, env, "batch", pgn, "-o", out, "--shard", "1/3", "--quiet"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// A shard stopped at its bad record (record 7) and resumed ends identical to one run straight through.
	stopped := filepath.Join(dir, "stopped")
	if code, _, stderr := runCLI(t, env, "batch", pgn, "-o", stopped, "--shard", "1/3", "--strict"); code != ExitUsage || !strings.Contains(stderr, "bad record 7") {
		t.Fatalf("--strict: exit %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, env, "batch", pgn, "-o", stopped, "--shard", "1/3", "--resume", "--quiet"); code != 0 {
		t.Fatalf("resume: exit %d %s", code, stderr)
	}
	compareDirs(t, out, stopped)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--shard", "2/3"}, ExitUsage, "holds shard 1/3, not shard 2/3"},
		{nil, ExitUsage, "holds shard 1/3, not the whole input"},
		{[]string{"--shard", "1/3"}, ExitOK, ""},
	} {
		args := append([]string{"batch", pgn, "-o", out, "--resume", "--quiet"}, tt.args...)
		code, _, stderr := runCLI(t, env, args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d %q, want %d %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}

func TestNewCmdMerge(t *testing.T) {
	tests := []struct {
		args    []string
		want    MergeOptions
		wantErr string
	}{
		{[]string{"a", "b", "-o", "out"}, MergeOptions{Dirs: []string{"a", "b"}, Output: "out"}, ""},
		{[]string{"a", "--output", "out", "--force", "-q"}, MergeOptions{Dirs: []string{"a"}, Output: "out", Force: true, Quiet: true}, ""},
		{[]string{"a"}, MergeOptions{}, `required flag(s) "output"`},
		{[]string{"-o", "out"}, MergeOptions{}, "requires at least 1 arg"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var got *MergeOptions
			cmd := NewCmdMerge(&Factory{}, func(o *MergeOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Factory = nil
			if !slices.Equal(got.Dirs, tt.want.Dirs) || got.Output != tt.want.Output || got.Force != tt.want.Force || got.Quiet != tt.want.Quiet {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

// invocation is one `lczerolens SUBCOMMAND ...` found in an example: the subcommand and the words after it.
type invocation struct {
	where string
	words []string
}

// shellEnd matches a word that ends a command.
var shellEnd = regexp.MustCompile(`^(\||\|\||&&|;)$|;$`)

// shellInvocations finds the lczerolens commands of a shell script, comments included (they show how to
// run the merge), joining continued lines. Only words that start with a dash matter to the caller.
func shellInvocations(where, script string, commands []string) []invocation {
	script = strings.ReplaceAll(script, "\\\n", " ")
	var out []invocation
	for i, line := range strings.Split(script, "\n") {
		words := strings.Fields(line)
		for j := 0; j+1 < len(words); j++ {
			w := strings.TrimLeft(words[j], `"'`)
			if w != "lczerolens" {
				continue
			}
			sub := words[j+1]
			comment := strings.HasPrefix(strings.TrimSpace(line), "#")
			if comment && !slices.Contains(commands, sub) {
				continue // prose, not a command
			}
			var rest []string
			for _, r := range words[j+1:] {
				if shellEnd.MatchString(r) {
					break
				}
				rest = append(rest, r)
			}
			out = append(out, invocation{fmt.Sprintf("%s:%d", where, i+1), rest})
		}
	}
	return out
}

// checkFlags fails unless inv names a subcommand of the CLI and every flag it uses exists there.
func checkFlags(t *testing.T, root *cobra.Command, inv invocation) *cobra.Command {
	t.Helper()
	if len(inv.words) == 0 {
		t.Errorf("%s: lczerolens without a subcommand", inv.where)
		return nil
	}
	cmd, _, err := root.Find(inv.words[:1])
	if err != nil || cmd == root {
		t.Errorf("%s: %q is not an lczerolens command", inv.where, inv.words[0])
		return nil
	}
	for _, w := range inv.words[1:] {
		w = strings.Trim(w, `"'`)
		if !strings.HasPrefix(w, "-") || w == "-" {
			continue
		}
		name, _, _ := strings.Cut(w, "=")
		var ok bool
		if long, isLong := strings.CutPrefix(name, "--"); isLong {
			ok = cmd.Flag(long) != nil
		} else {
			short := strings.TrimPrefix(name, "-")
			ok = len(short) == 1 && (cmd.Flags().ShorthandLookup(short) != nil || cmd.InheritedFlags().ShorthandLookup(short) != nil)
		}
		if !ok {
			t.Errorf("%s: lczerolens %s has no flag %s", inv.where, cmd.Name(), name)
		}
	}
	return cmd
}

// TestDeployExamples checks that the Kubernetes manifests parse as YAML, the scripts as bash, and that
// every lczerolens command in them uses only flags the tool has, with --shard tied to the scheduler's index.
func TestDeployExamples(t *testing.T) {
	deploy := filepath.Join(testutil.Root(t), "deploy")
	root := NewCmdRoot(NewFactory(&IOStreams{}, "test"))
	var commands []string
	for _, c := range root.Commands() {
		commands = append(commands, c.Name())
	}
	shardArgs := map[string][]string{} // file -> --shard values
	collect := func(file string, invs []invocation) {
		for _, inv := range invs {
			cmd := checkFlags(t, root, inv)
			if cmd == nil {
				continue
			}
			for i, w := range inv.words {
				if w == "--shard" && i+1 < len(inv.words) {
					shardArgs[file] = append(shardArgs[file], strings.Trim(inv.words[i+1], `"`))
				}
			}
			if cmd.Name() == "batch" && !slices.Contains(inv.words, "--shard") {
				t.Errorf("%s: a batch without --shard", inv.where)
			}
		}
	}

	yamls, _ := filepath.Glob(filepath.Join(deploy, "*.yaml"))
	if len(yamls) < 2 {
		t.Fatalf("deploy/ holds %d YAML files, want the indexed job and the merge job", len(yamls))
	}
	completions := 0
	for _, path := range yamls {
		name := filepath.Base(path)
		dec := yaml.NewDecoder(bytes.NewReader(must(os.ReadFile(path))))
		for {
			var job struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Spec       struct {
					CompletionMode string `yaml:"completionMode"`
					Completions    int    `yaml:"completions"`
					Template       struct {
						Spec struct {
							RestartPolicy string `yaml:"restartPolicy"`
							Containers    []struct {
								Command []string `yaml:"command"`
								Args    []string `yaml:"args"`
							} `yaml:"containers"`
						} `yaml:"spec"`
					} `yaml:"template"`
				} `yaml:"spec"`
			}
			err := dec.Decode(&job)
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", name, err)
			}
			if job.APIVersion != "batch/v1" || job.Kind != "Job" || len(job.Spec.Template.Spec.Containers) == 0 {
				t.Errorf("%s: not a batch/v1 Job with containers", name)
			}
			if job.Spec.CompletionMode == "Indexed" {
				completions = job.Spec.Completions
			}
			for _, c := range job.Spec.Template.Spec.Containers {
				switch {
				case len(c.Command) > 0 && c.Command[0] == "lczerolens":
					collect(name, []invocation{{name, append(slices.Clone(c.Command[1:]), c.Args...)}})
				case len(c.Command) == 3 && c.Command[1] == "-c":
					invs := shellInvocations(name, c.Command[2], commands)
					if len(invs) == 0 {
						t.Errorf("%s: container runs no lczerolens command", name)
					}
					collect(name, invs)
				default:
					t.Errorf("%s: container command %q is neither lczerolens nor sh -c", name, c.Command)
				}
			}
		}
	}
	if want := fmt.Sprintf("$(JOB_COMPLETION_INDEX)/%d", completions); completions == 0 || !slices.Equal(shardArgs["k8s-indexed-job.yaml"], []string{want}) {
		t.Errorf("k8s-indexed-job.yaml: --shard %q, want %q from an Indexed Job's completions", shardArgs["k8s-indexed-job.yaml"], want)
	}

	for _, name := range []string{"slurm-array.sh", "xargs.sh"} {
		path := filepath.Join(deploy, name)
		if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", name, err, out)
		}
		invs := shellInvocations(name, string(must(os.ReadFile(path))), commands)
		var subs []string
		for _, inv := range invs {
			subs = append(subs, inv.words[0])
		}
		if !slices.Contains(subs, "batch") || !slices.Contains(subs, "merge") {
			t.Errorf("%s: runs %v, want a batch and a merge", name, subs)
		}
		collect(name, invs)
	}
	// The README's section shows the same commands.
	readme := string(must(os.ReadFile(filepath.Join(testutil.Root(t), "README.md"))))
	_, section, ok := strings.Cut(readme, "\n## Beyond one machine\n")
	if !ok {
		t.Fatal(`README.md has no "Beyond one machine" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	if invs := shellInvocations("README.md", section, commands); len(invs) < 2 {
		t.Errorf("README.md's Beyond one machine section shows %d lczerolens commands", len(invs))
	} else {
		for _, inv := range invs {
			checkFlags(t, root, inv)
		}
	}
	if got := shardArgs["slurm-array.sh"]; !slices.Equal(got, []string{"${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}"}) {
		t.Errorf("slurm-array.sh: --shard %q", got)
	}
	if got := shardArgs["xargs.sh"]; !slices.Equal(got, []string{"{}/$n"}) {
		t.Errorf("xargs.sh: --shard %q", got)
	}
}

// TestXargsExample runs deploy/xargs.sh (3 parallel shards and the merge) with this test binary as
// lczerolens and compares the result with an unsharded run.
func TestXargsExample(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in -short mode")
	}
	lib := testutil.ORTLib(t)
	for _, tool := range []string{"bash", "seq", "xargs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s not found", tool)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nLCZEROLENS_TEST_CLI=1 LCZEROLENS_ORT_LIB=%q exec %q \"$@\"\n", lib, os.Args[0])
	if err := os.WriteFile(filepath.Join(bin, "lczerolens"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	pgn := smallPGN(t, dir, "games.pgn")
	out := filepath.Join(dir, "out")
	cmd := exec.Command("bash", filepath.Join(testutil.Root(t), "deploy", "xargs.sh"), pgn, out, "3")
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xargs.sh: %v\n%s", err, b)
	}
	whole := filepath.Join(dir, "whole")
	if code, _, stderr := runCLI(t, map[string]string{"LCZEROLENS_ORT_LIB": lib}, "batch", pgn, "-o", whole, "--lens", "activation", "--threads", "1"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	compareDirs(t, whole, filepath.Join(out, "merged"))
}
