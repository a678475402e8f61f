// Package lens holds lczerolens's analyses. A lens is a plain value with a name, a one-line doc, typed
// options, a compatibility check against a network and a prepare step that says what it needs the network to
// expose (hooked modules, gradients of a target) and how to turn a batch's tensors into named results. The
// registry lists every lens explicitly; an Engine runs one or several lenses over batches of positions in a
// single model pass, so analysing one position is a batch of one. Lenses read no files: the command layer loads
// what their options name (a probe file) and passes it in.
package lens

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// OptionKind is the type of a lens option's value.
type OptionKind string

// The option kinds. Enum options list their Choices.
const (
	String OptionKind = "string"
	Bool   OptionKind = "bool"
	Int    OptionKind = "int"
	Float  OptionKind = "float"
	Enum   OptionKind = "enum"
	Regexp OptionKind = "regexp"
)

// Option documents one lens option; it becomes a flag of `analyse` and `batch` with the same name.
type Option struct {
	Name    string
	Kind    OptionKind
	Default string // as the user would type it; "" for none
	// DefaultDoc says what an empty Default stands for when it is more than nothing (the modules a pattern
	// selects when none is given), so that help shows the real default.
	DefaultDoc string
	Help       string
	Choices    []string // Enum only
	// Check, when set, refuses a parsed value the kind alone allows (an unknown target, a negative epsilon),
	// so that a bad option is reported as the option's error before any network is looked at.
	Check func(v any) error
}

// Lens is one registered analysis.
type Lens struct {
	Name    string
	Doc     string // one line
	Options []Option
	// Compatible reports why the lens cannot run on n with these options (nil: it can).
	Compatible func(n *model.Network, v Values) error
	// Prepare says what the lens needs from the network and how it reads the run's outputs.
	Prepare func(n *model.Network, v Values) (*Prep, error)
}

// Prep is a prepared lens: what the model must expose, and how results come out of a run.
type Prep struct {
	// Hooks are module tensors whose values must be returned by the run.
	Hooks []string
	// Gradient, when set, asks for gradients of a target (one per position) w.r.t. tensors.
	Gradient *GradientNeed
	// Relevance, when set, asks for the layer-wise relevance of a target (one per position) at tensors; it is
	// computed in the same run as the gradients.
	Relevance *RelevanceNeed
	// Produce turns a run's outputs into this lens's results for the whole batch.
	Produce func(b *Batch, out *Outputs) ([]BatchResult, error)
	// Keys are the result keys Produce returns, in its order, known before any run so that --keep can be
	// checked at once; nil means not declared (the keys are known only after the first run).
	Keys []string
	// Corrupt says the lens compares each position with its corrupted counterpart (Batch.Corrupt*).
	Corrupt bool
	// Meta is what a reader needs to interpret the results beyond their keys (e.g. the order of the
	// modules along an axis); it goes to the manifest and the JSON envelope under "lens_meta".
	Meta map[string]any
	// Check, when set, reports why the lens cannot analyse a position (a target undefined there); see
	// Engine.Check. Gradient and Relevance targets are checked by the engine itself.
	Check func(pos *board.Position) error
	// MaxBatch, when above 0, is the most positions a stream should put in one batch: a lens that runs
	// hundreds of rows per position keeps each batch to seconds, so progress shows and an interrupt loses
	// little.
	MaxBatch int
}

// GradientNeed is a request for d target / d tensor for each tensor of Wrt (the model input included).
type GradientNeed struct {
	Target Target
	Wrt    []string
}

// RelevanceNeed is a request for the LRP relevance of a target at each tensor of Wrt under Rule.
type RelevanceNeed struct {
	Target Target
	Rule   model.Rule
	Wrt    []string
}

// BatchResult is one named result for a whole batch: Data holds len(batch) rows of Shape. A JSON-only result
// (a list of records rather than a tensor) has JSON set, one value per position, and no Shape or Data: it
// appears in JSON output and is left out of NPY output. It is not store.Result, which is one position's row
// with its JSON value already encoded; the command layer converts row by row.
type BatchResult struct {
	Key   string
	Shape []int
	Data  []float32
	JSON  []any
}

// JSONOnly reports whether r is a JSON-only result.
func (r BatchResult) JSONOnly() bool { return r.JSON != nil }

// RowSize is the number of values per position.
func (r BatchResult) RowSize() int {
	n := 1
	for _, d := range r.Shape {
		n *= d
	}
	return n
}

// Row returns position i's values.
func (r BatchResult) Row(i int) []float32 { n := r.RowSize(); return r.Data[i*n : (i+1)*n] }

// Values are a lens's resolved option values, keyed by option name.
type Values map[string]any

// The getters are named GetString and not String, which would shadow fmt.Stringer's String() idiom; each
// returns the zero value for an option that is unset or of another kind.

// GetString returns a string, enum or regexp option.
func (v Values) GetString(name string) string { s, _ := v[name].(string); return s }

// GetBool returns a bool option.
func (v Values) GetBool(name string) bool { b, _ := v[name].(bool); return b }

// GetInt returns an int option.
func (v Values) GetInt(name string) int { i, _ := v[name].(int); return i }

// GetFloat returns a float option.
func (v Values) GetFloat(name string) float64 { f, _ := v[name].(float64); return f }

// Resolve parses raw option strings (only the ones the user set) against the lens's options, filling defaults.
func (l *Lens) Resolve(raw map[string]string) (Values, error) {
	v := Values{}
	for _, o := range l.Options {
		s, set := raw[o.Name]
		if !set {
			s = o.Default
		}
		val, err := o.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("lens %s: option --%s: %w", l.Name, o.Name, err)
		}
		v[o.Name] = val
	}
	return v, nil
}

// Parse turns an option's string form into its value, refusing what the kind or Check does not allow.
func (o Option) Parse(s string) (any, error) {
	v, err := o.parse(s)
	if err == nil && o.Check != nil {
		err = o.Check(v)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (o Option) parse(s string) (any, error) {
	switch o.Kind {
	case String:
		return s, nil
	case Regexp:
		if _, err := regexp.Compile(s); err != nil {
			return nil, fmt.Errorf("invalid regular expression %q: %w", s, err)
		}
		return s, nil
	case Bool:
		if s == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", s)
		}
		return b, nil
	case Int:
		i, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return i, nil
	case Float:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	case Enum:
		for _, c := range o.Choices {
			if s == c {
				return s, nil
			}
		}
		return nil, fmt.Errorf("%q: want one of %s", s, strings.Join(o.Choices, ", "))
	}
	return nil, fmt.Errorf("unknown option kind %q", o.Kind)
}

// Registry is an explicit, ordered list of lenses.
type Registry []*Lens

// Get returns the lens called name or an error listing the known names.
func (r Registry) Get(name string) (*Lens, error) {
	for _, l := range r {
		if l.Name == name {
			return l, nil
		}
	}
	return nil, fmt.Errorf("lens: unknown lens %q (known: %s; see \"lczerolens lenses list\")", name, strings.Join(r.Names(), ", "))
}

// Names lists the registered lens names in registry order.
func (r Registry) Names() []string {
	out := make([]string, len(r))
	for i, l := range r {
		out[i] = l.Name
	}
	return out
}

// Options returns the union of all lenses' options by name (the flags of analyse and batch), sorted.
func (r Registry) Options() []Option {
	seen := map[string]Option{}
	for _, l := range r {
		for _, o := range l.Options {
			if _, ok := seen[o.Name]; !ok {
				seen[o.Name] = o
			}
		}
	}
	out := make([]Option, 0, len(seen))
	for _, o := range seen {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Validate checks the registry: unique valid names, a one-line doc, documented options, and an option name
// shared by several lenses meaning the same kind (it is one flag).
func (r Registry) Validate() error {
	names := map[string]bool{}
	kinds := map[string]OptionKind{}
	for _, l := range r {
		switch {
		case !validName.MatchString(l.Name):
			return fmt.Errorf("lens: invalid name %q", l.Name)
		case names[l.Name]:
			return fmt.Errorf("lens: duplicate name %q", l.Name)
		case l.Doc == "" || strings.Contains(l.Doc, "\n"):
			return fmt.Errorf("lens %s: doc must be one non-empty line", l.Name)
		case l.Prepare == nil:
			return fmt.Errorf("lens %s: no prepare step", l.Name)
		}
		names[l.Name] = true
		for _, o := range l.Options {
			if !validName.MatchString(o.Name) || o.Help == "" {
				return fmt.Errorf("lens %s: option %q needs a valid name and help", l.Name, o.Name)
			}
			if o.Kind == Enum && len(o.Choices) == 0 {
				return fmt.Errorf("lens %s: enum option %q has no choices", l.Name, o.Name)
			}
			if k, ok := kinds[o.Name]; ok && k != o.Kind {
				return fmt.Errorf("lens %s: option %q is %s here but %s in another lens", l.Name, o.Name, o.Kind, k)
			}
			kinds[o.Name] = o.Kind
			if _, err := o.Parse(o.Default); err != nil {
				return fmt.Errorf("lens %s: option %q default %q: %v", l.Name, o.Name, o.Default, err)
			}
		}
	}
	return nil
}
