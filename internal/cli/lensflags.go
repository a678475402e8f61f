package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/probe"
	"github.com/lczerolens/lczerolens/internal/sae"
)

// lensFlags are the flags that choose lenses (--lens, or the config's list) and set their options: every
// option of every registered lens is a flag, so `analyse` and `batch` accept the same lens options.
type lensFlags struct {
	cmd        *cobra.Command
	savePlanes bool
	keep       []string
}

func (lf *lensFlags) register(cmd *cobra.Command) {
	lf.cmd = cmd
	fl := cmd.Flags()
	fl.StringSlice("lens", nil, `lens(es) to run, comma-separated, in one model pass (default from config: activation); see "lczerolens lenses list"`)
	fl.BoolVar(&lf.savePlanes, "save-planes", false, "also return the encoded input planes as result \"planes\"")
	fl.StringSliceVar(&lf.keep, "keep", nil, "write only these result keys, comma-separated (e.g. saliency to drop input_grad); default all")
	for _, o := range lens.Lenses.Options() {
		help := fmt.Sprintf("%s [lens %s]", o.Help, strings.Join(lensesWith(o.Name), ", "))
		if o.Kind == lens.Enum {
			sep := "|"
			if len(o.Choices) > 6 { // a long list must be breakable between choices to fit 100 columns
				sep = " | "
			}
			help += " (" + strings.Join(o.Choices, sep) + ")"
		}
		if o.Kind == lens.Bool {
			fl.Bool(o.Name, false, help)
		} else {
			// Lenses sharing an option may default differently, so the flag's own default is empty: unset means
			// each lens's default, said here when they agree.
			help += " (" + optionDefaultHelp(o.Name) + ")"
			fl.String(o.Name, "", help)
		}
		// The option is also a configuration key (target, save_inputs) that this flag overrides.
		_ = fl.SetAnnotation(o.Name, annLensOption, []string{"true"})
	}
}

// optionDefault is the value an option takes when it is not given, as help shows it ("" for none).
func optionDefault(o lens.Option) string {
	if o.Default == "" {
		return o.DefaultDoc
	}
	return o.Default
}

// optionDefaultHelp says an option's default across the lenses that have it: one value when they agree.
func optionDefaultHelp(name string) string {
	defs := map[string]bool{}
	for _, l := range lens.Lenses {
		for _, o := range l.Options {
			if o.Name == name {
				defs[optionDefault(o)] = true
			}
		}
	}
	if len(defs) != 1 {
		return `default per lens: see "lczerolens lenses describe NAME"`
	}
	for d := range defs {
		if d == "" {
			return "default none"
		}
		return "default " + d
	}
	return ""
}

// lensesWith lists the lenses that have an option.
func lensesWith(option string) []string {
	var out []string
	for _, l := range lens.Lenses {
		for _, o := range l.Options {
			if o.Name == option {
				out = append(out, l.Name)
			}
		}
	}
	return out
}

// specs resolves the configured lenses (--lens, or the lens key) and their options (flags, or the
// configuration's keys). A lens named twice is refused: it would run twice and its results clash. An option
// set on the command line that none of the chosen lenses has is a usage error rather than silently ignored;
// one set in the environment or the config file is a default for the lenses that have it.
func (lf *lensFlags) specs(cfg *Config) ([]lens.Spec, error) {
	names := cfg.Lens
	from := ""
	if src := cfg.source("lens"); src != "" && !strings.HasPrefix(src, "--") {
		from = " (" + src + ")"
	}
	if len(names) == 0 {
		return nil, usageErrorf("lens: no lens given: pass --lens NAME (see `lczerolens lenses list`)%s", from)
	}
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			return nil, usageErrorf("lens: %s is named twice in --lens %s%s: name each lens once", name, strings.Join(names, ","), from)
		}
		seen[name] = true
	}
	used := map[string]bool{}
	var specs []lens.Spec
	for _, name := range names {
		l, err := lens.Lenses.Get(name)
		if err != nil {
			return nil, inputError(err)
		}
		v, err := l.Resolve(cfg.LensOptions)
		if err != nil {
			return nil, inputError(err)
		}
		if err := loadLensFiles(l, v); err != nil {
			return nil, err
		}
		for _, o := range l.Options {
			used[o.Name] = true
		}
		specs = append(specs, lens.Spec{Lens: l, Values: v})
	}
	var stray []string
	for _, o := range lens.Lenses.Options() {
		if f := lf.cmd.Flags().Lookup(o.Name); f != nil && f.Changed && !used[o.Name] {
			stray = append(stray, "--"+o.Name)
		}
	}
	if len(stray) > 0 {
		return nil, usageErrorf("lens: %s not an option of lens %s (see `lczerolens lenses describe NAME`)", strings.Join(stray, ", "), strings.Join(names, ","))
	}
	return specs, nil
}

// loadLensFiles reads the files a lens's options name, once, here: lenses do no file I/O.
func loadLensFiles(l *lens.Lens, v lens.Values) error {
	if l == lens.Steering && v.GetString("sae") == "" {
		return loadDirection(v)
	}
	if (l == lens.SAE || l == lens.Steering) && v.GetString("sae") != "" {
		f, err := sae.Load(v.GetString("sae"))
		if err != nil {
			return inputError(err)
		}
		lens.WithSAE(v, f)
		return nil
	}
	if l != lens.Probing || v.GetString("probe") == "" {
		return nil
	}
	f, err := probe.Load(v.GetString("probe"))
	if err != nil {
		return inputError(err)
	}
	lens.WithProbes(v, f)
	return nil
}

// info is lensInfo with --keep recorded among the options, so that a resume or merge with other kept keys
// is refused; without --keep the options are as before it existed.
func (lf *lensFlags) info(specs []lens.Spec) (string, map[string]any) {
	name, opts := lensInfo(specs)
	if len(lf.keep) > 0 {
		opts["keep"] = strings.Join(lf.keep, ",")
	}
	return name, opts
}

// lensInfo describes the lenses and their options for manifests and envelopes.
func lensInfo(specs []lens.Spec) (string, map[string]any) {
	names := make([]string, len(specs))
	opts := map[string]any{}
	for i, s := range specs {
		names[i] = s.Lens.Name
		for _, o := range s.Lens.Options { // the options only, not files loaded from them
			k, v := o.Name, s.Values[o.Name]
			if len(specs) == 1 {
				opts[k] = v
			} else {
				opts[s.Lens.Name+"."+k] = v
			}
		}
	}
	return strings.Join(names, ","), opts
}

// loadDirection reads the steering direction: a .npy array, or the weights of a probe file's probe of
// --module.
func loadDirection(v lens.Values) error {
	path := v.GetString("direction")
	if path == "" {
		return nil // the lens says what is missing
	}
	if strings.HasSuffix(path, ".json") {
		f, err := probe.Load(path)
		if err != nil {
			return inputError(err)
		}
		for _, p := range f.Probes {
			if p.Module == v.GetString("module") {
				lens.WithDirection(v, p.Weights, nil)
				return nil
			}
		}
		return usageErrorf("steering: probe file %s has no probe of module %q: pass --module as one of its modules", path, v.GetString("module"))
	}
	file, err := os.Open(path)
	if err != nil {
		return pathError(fmt.Errorf("steering: direction: %w", err))
	}
	defer file.Close()
	shape, data, err := npy.Read(file)
	if err != nil {
		return inputError(fmt.Errorf("steering: direction %s: %w", path, err))
	}
	lens.WithDirection(v, data, shape)
	return nil
}
