package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Manifest is what an output directory's manifest.json says: the one description of an output that the
// Writer writes, resume and Merge check and readers (render) use.
type Manifest struct {
	ToolVersion string
	Model       ModelInfo
	Lens        LensInfo
	Storage     Format
	Count       int // positions
	Errors      int // bad input records
	Records     int // input records consumed
	Nonfinite   int
	Keys        []ManifestKey // in the lens's order; empty while no position was added
	Complete    bool
	// Extra holds the fields that Options.Extra and SetExtra added, as written.
	Extra map[string]json.RawMessage
}

// ManifestKey is one result key of a Manifest.
type ManifestKey struct {
	Key   string
	File  string
	Shape []int // of one position
}

// Key returns the manifest's entry for a result key.
func (m *Manifest) Key(key string) (ManifestKey, bool) {
	i := slices.IndexFunc(m.Keys, func(k ManifestKey) bool { return k.Key == key })
	if i < 0 {
		return ManifestKey{}, false
	}
	return m.Keys[i], true
}

// manifestFields are the manifest's own top-level names, which Extra may
// not reuse.
var manifestFields = []string{"format", "format_version", "tool_version", "model", "lens", "count",
	"errors", "keys", "storage", "records", "nonfinite", "complete"}

// manifest returns the settings part of the manifest opts describe (no counts, no keys). Call it after
// validate.
func (opts *Options) manifest() (Manifest, error) {
	m := Manifest{ToolVersion: opts.ToolVersion, Model: opts.Model, Lens: opts.Lens, Storage: opts.Format,
		Extra: map[string]json.RawMessage{}}
	for k, v := range opts.Extra {
		raw, err := json.Marshal(v)
		if err != nil {
			return Manifest{}, fmt.Errorf("store: extra manifest field %q: %w", k, err)
		}
		m.Extra[k] = raw
	}
	return m, nil
}

// ReadManifest reads the manifest.json of the output directory dir.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("store: read manifest: %w", err)
	}
	var head struct {
		Format        string `json:"format"`
		FormatVersion int    `json:"format_version"`
		ToolVersion   string `json:"tool_version"`
		Model         struct {
			Path   string `json:"path"`
			SHA256 string `json:"sha256"`
		} `json:"model"`
		Lens struct {
			Name    string         `json:"name"`
			Options map[string]any `json:"options"`
		} `json:"lens"`
		Count     int             `json:"count"`
		Errors    int             `json:"errors"`
		Keys      json.RawMessage `json:"keys"`
		Storage   Format          `json:"storage"`
		Records   int             `json:"records"`
		Nonfinite int             `json:"nonfinite"`
		Complete  bool            `json:"complete"`
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("store: read %s: %w", path, err)
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("store: read %s: %w", path, err)
	}
	if head.Format != ManifestFormat || head.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("store: read %s: format %q version %d, this build reads %q version %d", path, head.Format, head.FormatVersion, ManifestFormat, FormatVersion)
	}
	if head.Count < 0 || head.Errors < 0 || head.Records < 0 || head.Nonfinite < 0 {
		return nil, fmt.Errorf("store: read %s: negative count", path)
	}
	keys, err := manifestKeys(head.Keys)
	if err != nil {
		return nil, fmt.Errorf("store: read %s: keys: %w", path, err)
	}
	m := &Manifest{
		ToolVersion: head.ToolVersion,
		Model:       ModelInfo{Path: head.Model.Path, SHA256: head.Model.SHA256},
		Lens:        LensInfo{Name: head.Lens.Name, Options: head.Lens.Options},
		Storage:     head.Storage,
		Count:       head.Count, Errors: head.Errors, Records: head.Records, Nonfinite: head.Nonfinite,
		Keys:     keys,
		Complete: head.Complete,
		Extra:    map[string]json.RawMessage{},
	}
	for k, v := range fields {
		if !slices.Contains(manifestFields, k) {
			m.Extra[k] = v
		}
	}
	return m, nil
}

// manifestKeys reads the "keys" object in its order, which is the order of the lens's results.
func manifestKeys(raw json.RawMessage) ([]ManifestKey, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	var keys []ManifestKey
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		var k struct {
			File  string `json:"file"`
			Shape []int  `json:"shape"`
		}
		if err := dec.Decode(&k); err != nil {
			return nil, fmt.Errorf("key %q: %w", name, err)
		}
		keys = append(keys, ManifestKey{Key: name, File: k.File, Shape: k.Shape})
	}
	return keys, nil
}

// field is one member of a JSON object whose member order matters.
type field struct {
	name  string
	value any
}

type object []field

// MarshalJSON writes the members in order (encoding/json sorts map keys,
// and the manifest lists keys in the lens's order).
func (o object) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, f := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f.name)
		b = append(b, ':')
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, fmt.Errorf("manifest field %q: %w", f.name, err)
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// encode returns the manifest.json of m: its own fields in a fixed order, then Extra's sorted by name.
func (m *Manifest) encode() ([]byte, error) {
	lensOpts, err := canonicalJSON(m.Lens.Options)
	if err != nil {
		return nil, fmt.Errorf("store: encode %s: lens options: %w", ManifestFile, err)
	}
	keys := object{}
	for _, k := range m.Keys {
		keys = append(keys, field{k.Key, object{{"file", k.File}, {"dtype", "float32"}, {"shape", k.Shape}}})
	}
	o := object{
		{"format", ManifestFormat},
		{"format_version", FormatVersion},
		{"tool_version", m.ToolVersion},
		{"model", object{{"path", m.Model.Path}, {"sha256", m.Model.SHA256}}},
		{"lens", object{{"name", m.Lens.Name}, {"options", lensOpts}}},
		{"count", m.Count},
		{"errors", m.Errors},
		{"keys", keys},
		{"storage", m.Storage},
		{"records", m.Records},
		{"nonfinite", m.Nonfinite},
		{"complete", m.Complete},
	}
	for _, k := range sortedKeys(m.Extra) {
		o = append(o, field{k, m.Extra[k]})
	}
	raw, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("store: encode %s: %w", ManifestFile, err)
	}
	return append(raw, '\n'), nil
}

// Difference is one setting in which two manifests differ.
type Difference struct {
	// Setting is the field's path in manifest.json, members joined by ".": "storage", "model.sha256",
	// "lens.name", "lens.options.pattern", "input.plies", "shard.count".
	Setting string
	// Name is how a message names the setting: "--format", "the model sha256", `lens option "pattern"`.
	Name string
	// A and B are the values of the two manifests as a message shows them; "unset" where absent.
	A, B string
}

// settingName is how messages name a setting, and whether its string values are shown bare (a checksum,
// a format) or quoted (a name that may hold spaces).
type settingName struct {
	name string
	bare bool
}

// settingNames names the settings of the manifest, and those batch records under "input" and "shard",
// as the flags and words a user knows them by.
var settingNames = map[string]settingName{
	"storage":                {"--format", true},
	"model.sha256":           {"the model sha256", true},
	"lens.name":              {"the lens", false},
	"tool_version":           {"the tool version", true},
	"input.name":             {"the input", false},
	"input.type":             {"the input type", true},
	"input.plies":            {"--plies", true},
	"input.input_format":     {"--input-format", true},
	"input.history_fill":     {"--history-fill", true},
	"input.policy_transpose": {"--policy-transpose", true},
	"input.size":             {"the input size", true},
	"input.sha256":           {"the input sha256", true},
	"shard.index":            {"the shard index", true},
	"shard.count":            {"the shard count", true},
}

// ResumeExempt lists the settings that may differ between a run and its resumption: the tool version,
// and what batch records only once a run completes (the input's size and checksum, a shard's records).
var ResumeExempt = []string{"tool_version", "input.size", "input.sha256", "shard.records"}

// Differences lists the settings in which o differs from m, in a fixed order: format, model, lens, lens
// options, tool version, then the extra fields by path (objects compared member by member). Counts, keys,
// completeness and the model's path are not settings. A setting named in ignore, or below one, is not
// compared; when the lenses differ their options are not compared one by one. This is the one check of
// "made with the same settings?": resume, Merge and the merge command all use it.
func (m *Manifest) Differences(o *Manifest, ignore ...string) []Difference {
	a, b := m.settings(), o.settings()
	paths := sortedKeys(a)
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.SortFunc(paths, func(x, y string) int {
		if rx, ry := settingRank(x), settingRank(y); rx != ry {
			return rx - ry
		}
		return strings.Compare(x, y)
	})
	lensDiffers := m.Lens.Name != o.Lens.Name
	var d []Difference
	for _, p := range paths {
		x, y := a[p], b[p]
		if x == y || ignored(p, ignore) || lensDiffers && strings.HasPrefix(p, "lens.options.") {
			continue
		}
		name, bare := describeSetting(p)
		d = append(d, Difference{Setting: p, Name: name, A: showValue(x, bare), B: showValue(y, bare)})
	}
	return d
}

// settings flattens m's settings to their paths and canonical JSON.
func (m *Manifest) settings() map[string]string {
	s := map[string]string{}
	put := func(path string, v any) {
		raw, err := canonicalValue(v)
		if err != nil {
			s[path] = fmt.Sprintf("%q", fmt.Sprint(v)) // unencodable: Open refuses it, so compare its text
			return
		}
		s[path] = string(raw)
	}
	put("storage", m.Storage)
	put("model.sha256", m.Model.SHA256)
	put("lens.name", m.Lens.Name)
	for k, v := range m.Lens.Options {
		put("lens.options."+k, v)
	}
	put("tool_version", m.ToolVersion)
	var flatten func(path string, raw json.RawMessage)
	flatten = func(path string, raw json.RawMessage) {
		var members map[string]json.RawMessage
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' && json.Unmarshal(t, &members) == nil && len(members) > 0 {
			for k, v := range members {
				flatten(path+"."+k, v)
			}
			return
		}
		put(path, raw)
	}
	for k, v := range m.Extra {
		flatten(k, v)
	}
	return s
}

// settingRank orders the settings: the manifest's own first, then the extra fields.
func settingRank(path string) int {
	switch {
	case path == "storage":
		return 0
	case path == "model.sha256":
		return 1
	case path == "lens.name":
		return 2
	case strings.HasPrefix(path, "lens.options."):
		return 3
	case path == "tool_version":
		return 4
	}
	return 5
}

func ignored(path string, ignore []string) bool {
	for _, ig := range ignore {
		if path == ig || strings.HasPrefix(path, ig+".") {
			return true
		}
	}
	return false
}

func describeSetting(path string) (string, bool) {
	if n, ok := settingNames[path]; ok {
		return n.name, n.bare
	}
	if opt, ok := strings.CutPrefix(path, "lens.options."); ok {
		return fmt.Sprintf("lens option %q", opt), false
	}
	return fmt.Sprintf("manifest field %q", path), false
}

// showValue renders a canonical JSON value for a message.
func showValue(raw string, bare bool) string {
	if raw == "" {
		return "unset"
	}
	if bare {
		var s string
		if json.Unmarshal([]byte(raw), &s) == nil {
			return s
		}
	}
	return raw
}

// MismatchError is Open's refusal to resume an output directory made with other settings; it wraps
// ErrMismatch. Had and Want hold the settings of the existing output and of the run that would resume
// it, for callers that word the refusal in their own terms.
type MismatchError struct {
	Dir       string
	Had, Want *Manifest
	Diffs     []Difference
}

func (e *MismatchError) Error() string {
	d := make([]string, len(e.Diffs))
	for i, x := range e.Diffs {
		d[i] = fmt.Sprintf("%s is %s in the existing output, %s now", x.Name, x.A, x.B)
	}
	return fmt.Sprintf("store: cannot resume %s: %s", e.Dir, strings.Join(d, "; "))
}

// Unwrap makes errors.Is(err, ErrMismatch) hold.
func (e *MismatchError) Unwrap() error { return ErrMismatch }
