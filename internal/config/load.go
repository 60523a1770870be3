package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// maxFileBytes bounds what Load reads. A gateway configuration is a few KiB;
// anything this large is the wrong file.
const maxFileBytes = 4 << 20

// defaultPath is DefaultPath; tests point it elsewhere.
var defaultPath = DefaultPath

// nodeBudget bounds the work of decoding one document, so that a file whose
// aliases expand exponentially cannot stall the process.
const nodeBudget = 100000

// FieldError is one problem with one configuration key.
type FieldError struct {
	// Path is the dotted key path, with list indexes in brackets:
	// "nfs.exports[0].name". Empty for problems with the file as a whole.
	Path string
	// Msg says what is wrong, including the offending value.
	Msg string
	// Allowed lists the accepted values or keys, when there is such a list.
	Allowed string
	// Line is the 1-based line in the file, or 0 when unknown (a problem
	// found by Validate, or with a key the file does not set).
	Line int
}

// Error renders the problem on one line: "line 12: cache.nfs_attr_cache.eviction:
// must be one of the allowed values (got "mru"); allowed: lru, lfu, fifo".
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	e.writeBody(&b)
	return b.String()
}

func (e *FieldError) writeBody(b *strings.Builder) {
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Allowed != "" {
		b.WriteString("; allowed: ")
		b.WriteString(e.Allowed)
	}
}

// LoadError carries every problem found in one configuration file, in the
// order of their lines.
type LoadError struct {
	File     string
	Problems []*FieldError
}

// Error renders one line per problem, each prefixed with file:line the way
// compilers do, after a header line when there is more than one.
func (e *LoadError) Error() string {
	file := e.File
	if file == "" {
		file = "configuration"
	}
	var b strings.Builder
	if len(e.Problems) > 1 {
		fmt.Fprintf(&b, "%s: %d problems in the configuration:\n", file, len(e.Problems))
	}
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(file)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		p.writeBody(&b)
	}
	return b.String()
}

// Unwrap exposes each problem to errors.As and errors.Is.
func (e *LoadError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// Load reads and checks the configuration file at path. Keys the file leaves
// out keep their defaults. A missing file is an error; see LoadDefaultOrFile
// for the command-line behaviour. When the file has problems the error is a
// *LoadError listing all of them.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// LoadDefaultOrFile loads the configuration the way the command line asks
// for it. An empty path means "no file named": DefaultPath is read if it
// exists and the defaults are used if it does not. A named path must exist.
// source is the file the configuration came from, or "" when it is the
// built-in defaults.
func LoadDefaultOrFile(path string) (cfg *Config, source string, err error) {
	if path != "" {
		cfg, err = Load(path)
		if err != nil {
			return nil, "", err
		}
		return cfg, path, nil
	}
	cfg, err = Load(defaultPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), "", nil
	}
	if err != nil {
		return nil, "", err
	}
	return cfg, defaultPath, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read configuration file %s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("configuration file %s is larger than %d MiB; check that it is the right file", path, maxFileBytes>>20)
	}
	return data, nil
}

// Parse decodes and checks one YAML document. name is used in messages (a
// file path, or "" for "configuration"). It reports, in one *LoadError,
// every unknown or duplicated key, every value of the wrong type, and every
// value Validate rejects, each with its key path and line.
func Parse(data []byte, name string) (*Config, error) {
	cfg := Default()
	fail := func(problems []*FieldError) (*Config, error) {
		return nil, &LoadError{File: name, Problems: problems}
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return cfg, nil
		}
		return fail([]*FieldError{syntaxProblem(err)})
	}
	var problems []*FieldError
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		problems = append(problems, syntaxProblem(err))
	default:
		problems = append(problems, &FieldError{
			Line: extra.Line,
			Msg:  "a second YAML document starts here; the configuration must be a single document",
		})
	}

	d := &decoder{lines: map[string]int{}, expanding: map[*yaml.Node]bool{}, budget: nodeBudget}
	// A document of only comments has no content and means "all defaults".
	if len(doc.Content) == 1 {
		d.decode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "")
	}
	problems = append(problems, d.problems...)

	for _, p := range cfg.validate() {
		if d.failedAt(p.Path) {
			// The value kept its default because the file's value did not
			// decode; judging the default would only add noise.
			continue
		}
		p.Line = d.lineOf(p.Path)
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return fail(problems)
	}
	return cfg, nil
}

// sortProblems orders problems by line, keeping problems without a line
// last and in the order they were found.
func sortProblems(ps []*FieldError) {
	sort.SliceStable(ps, func(i, j int) bool {
		li, lj := ps[i].Line, ps[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
}

// syntaxProblem turns a yaml parse error ("yaml: line 3: mapping values are
// not allowed in this context") into a problem with a line.
func syntaxProblem(err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, convErr := strconv.Atoi(num); convErr == nil {
				line, msg = n, tail
			}
		}
	}
	return &FieldError{Line: line, Msg: "invalid YAML: " + msg}
}

// decoder walks the YAML node tree against the Config struct, guided by the
// yaml tags, so that it can report every problem rather than the first.
// It deliberately accepts less than yaml.v3 would: no YAML 1.1 booleans
// (yes/no/on/off), no fractions or quoted numbers for integer keys.
type decoder struct {
	problems  []*FieldError
	failed    []string       // paths whose value did not decode
	lines     map[string]int // key path -> line of the key
	expanding map[*yaml.Node]bool
	budget    int
	exhausted bool
}

func (d *decoder) fail(line int, path, msg, allowed string) {
	d.problems = append(d.problems, &FieldError{Path: path, Msg: msg, Allowed: allowed, Line: line})
	d.failed = append(d.failed, path)
}

func (d *decoder) spend(n *yaml.Node, path string) bool {
	d.budget--
	if d.budget >= 0 {
		return true
	}
	if !d.exhausted {
		d.exhausted = true
		d.fail(n.Line, path, "the document is too large or expands too many aliases", "")
	}
	return false
}

// failedAt says whether a decode problem was reported for path, one of its
// parents, or one of its children.
func (d *decoder) failedAt(path string) bool {
	for _, f := range d.failed {
		if f == path || isUnder(path, f) || isUnder(f, path) {
			return true
		}
	}
	return false
}

// isUnder says whether path is strictly inside parent.
func isUnder(path, parent string) bool {
	if parent == "" {
		return true
	}
	if !strings.HasPrefix(path, parent) || len(path) == len(parent) {
		return false
	}
	c := path[len(parent)]
	return c == '.' || c == '['
}

// lineOf is the line of the key at path, or of its nearest parent the file
// sets, or 0.
func (d *decoder) lineOf(path string) int {
	for path != "" {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(n, path) {
		return
	}
	if n.Kind == yaml.AliasNode {
		d.viaAlias(n, path, func(target *yaml.Node) { d.decode(target, v, path) })
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

// viaAlias follows an alias, refusing one that refers to a node that
// contains it (which would never end).
func (d *decoder) viaAlias(n *yaml.Node, path string, f func(*yaml.Node)) {
	target := n.Alias
	if target == nil || d.expanding[target] {
		d.fail(n.Line, path, "alias *"+n.Value+" refers to a node that contains it", "")
		return
	}
	d.expanding[target] = true
	f(target)
	delete(d.expanding, target)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return // "section:" with nothing under it keeps the defaults
	}
	names, index := fieldsOf(v.Type())
	if n.Kind != yaml.MappingNode {
		msg := "must be a section of keys, not " + describe(n)
		if path == "" {
			msg = "the file must hold a mapping of sections, not " + describe(n)
		}
		d.fail(n.Line, path, msg, strings.Join(names, ", "))
		return
	}
	var explicit [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			// Merged keys are applied first so that the mapping's own keys
			// override them, as YAML merge keys specify.
			d.merge(val, v, path)
			continue
		}
		explicit = append(explicit, [2]*yaml.Node{k, val})
	}
	seen := map[string]int{}
	for _, kv := range explicit {
		k, val := kv[0], kv[1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, path, "keys must be plain names, not "+describe(k), strings.Join(names, ", "))
			continue
		}
		p := joinPath(path, keyText(k.Value))
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, p, fmt.Sprintf("duplicate key (first set on line %d)", first), "")
			continue
		}
		seen[k.Value] = k.Line
		i, ok := index[k.Value]
		if !ok {
			msg := "unknown key"
			if s := suggest(k.Value, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			d.fail(k.Line, p, msg, strings.Join(names, ", "))
			continue
		}
		d.lines[p] = k.Line
		d.decode(val, v.Field(i), p)
	}
}

// merge applies the value of a "<<" key: a mapping, an alias of one, or a
// list of them where earlier entries win.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(n, path) {
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		d.viaAlias(n, path, func(target *yaml.Node) { d.merge(target, v, path) })
	case yaml.MappingNode:
		d.mapping(n, v, path)
	case yaml.SequenceNode:
		for i := len(n.Content) - 1; i >= 0; i-- {
			if c := n.Content[i]; c.Kind == yaml.SequenceNode {
				d.fail(c.Line, path, "a merge key (<<) takes mappings, not "+describe(c), "")
			} else {
				d.merge(c, v, path)
			}
		}
	default:
		d.fail(n.Line, path, "a merge key (<<) takes a mapping or a list of mappings, not "+describe(n), "")
	}
}

// defaulter is implemented by list entries whose omitted keys have
// defaults other than the zero value.
type defaulter interface{ setDefaults() }

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n.Line, path, "must be a list, not "+describe(n)+hintList(v.Type()), "")
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		e := out.Index(i)
		if def, ok := e.Addr().Interface().(defaulter); ok {
			def.setDefaults()
		}
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = c.Line
		d.decode(c, e, p)
	}
	v.Set(out)
}

func hintList(t reflect.Type) string {
	if t.Elem().Kind() == reflect.String {
		return " (write [a, b] or one \"- a\" line per entry)"
	}
	return ""
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	want := wantOf(v.Type())
	if n.Kind != yaml.ScalarNode {
		d.fail(n.Line, path, want+", not "+describe(n), "")
		return
	}
	if v.Kind() == reflect.String {
		if isNull(n) {
			v.SetString("")
		} else {
			v.SetString(n.Value)
		}
		return
	}
	if isNull(n) {
		d.fail(n.Line, path, fmt.Sprintf("has no value; %s, or remove the key to keep the default (%s)",
			strings.TrimPrefix(want, "must be "), render(v)), "")
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		var b bool
		if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(n.Line, path, fmt.Sprintf("%s (got %s)", want, describe(n)), "")
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if leadingZero(n) {
			d.fail(n.Line, path, fmt.Sprintf("%s without a leading zero, which YAML would read as octal (got %s)", want, n.Value), "")
			return
		}
		d.integer(n, v, path, want)
	default:
		// The schema has no other kinds; a new one needs a case here.
		d.fail(n.Line, path, fmt.Sprintf("cannot be decoded into %s; this is a defect in the configuration schema", v.Type()), "")
	}
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value, path, want string) {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := wholeNumber(n)
		if !ok || v.OverflowInt(i) {
			d.fail(n.Line, path, fmt.Sprintf("%s (got %s)", want, describe(n)), "")
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, ok := wholeNumber(n)
		if !ok || i < 0 || v.OverflowUint(uint64(i)) {
			d.fail(n.Line, path, fmt.Sprintf("%s (got %s)", want, describe(n)), "")
			return
		}
		v.SetUint(uint64(i))
	}
}

// leadingZero spots a plain decimal-looking integer with a leading zero,
// such as 010000, which YAML reads as octal (4096): almost always a mistake.
func leadingZero(n *yaml.Node) bool {
	if n.Style != 0 || n.ShortTag() != "!!int" {
		return false
	}
	v := strings.TrimPrefix(strings.TrimPrefix(n.Value, "+"), "-")
	if len(v) < 2 || v[0] != '0' {
		return false
	}
	for _, c := range v[1:] {
		if (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// wholeNumber reads an integer scalar in any YAML notation (decimal, 0x,
// 0o, with underscores) or a float with no fraction, such as 1e6.
func wholeNumber(n *yaml.Node) (int64, bool) {
	switch n.ShortTag() {
	case "!!int", "!!float":
	default:
		return 0, false
	}
	var x any
	if err := n.Decode(&x); err != nil {
		return 0, false
	}
	switch x := x.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case float64:
		const exact = 1 << 53
		if x != math.Trunc(x) || x > exact || x < -exact {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// wantOf describes what a value of type t must look like.
func wantOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "must be true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "must be a whole number"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return fmt.Sprintf("must be a whole number from 0 to %d", uint64(1)<<(8*t.Size())-1)
	case reflect.Uint, reflect.Uint64:
		return "must be a whole number of at least 0"
	case reflect.String:
		return "must be a text value"
	case reflect.Slice:
		return "must be a list"
	case reflect.Struct:
		return "must be a section of keys"
	}
	return "must be a " + t.String()
}

// describe names what a node holds, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 60 {
			v = v[:57] + "..."
		}
		if n.ShortTag() == "!!str" || strings.ContainsFunc(v, notGraphic) {
			return strconv.Quote(v)
		}
		if v == "" {
			return "nothing"
		}
		return v
	}
	return "an unexpected YAML node"
}

// fieldsOf lists the yaml key names of a struct, in declaration order, and
// maps each to its field index.
func fieldsOf(t reflect.Type) ([]string, map[string]int) {
	names := make([]string, 0, t.NumField())
	index := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name := yamlName(t.Field(i))
		if name == "" {
			continue
		}
		names = append(names, name)
		index[name] = i
	}
	return names, index
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// keyText shows a key as written when it looks like a key, and quoted
// otherwise, so that every problem stays on one readable line.
func keyText(k string) string {
	if k == "" || strings.ContainsFunc(k, func(r rune) bool {
		return !isAlnum(r) && r != '_' && r != '-'
	}) {
		return strconv.Quote(k)
	}
	return k
}

func notGraphic(r rune) bool { return !unicode.IsGraphic(r) }

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// suggest returns the known key closest to an unknown one, if it is close
// enough to be a typo.
func suggest(unknown string, known []string) string {
	norm := strings.ToLower(strings.ReplaceAll(unknown, "-", "_"))
	// Short keys are too easily near each other for a guess to help.
	best, bestDist := "", min(2, len(norm)/3)+1
	for _, k := range known {
		if k == norm {
			return k
		}
		if dist := editDistance(norm, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return best
	}
	// A key written without its unit suffix, such as max_idle for
	// max_idle_ms.
	for _, k := range known {
		if len(norm) >= 4 && strings.HasPrefix(k, norm+"_") {
			return k
		}
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
