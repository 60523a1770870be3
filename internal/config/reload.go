package config

import (
	"fmt"
	"reflect"
	"strings"
)

// reloadable lists the key prefixes a running gateway applies on SIGHUP.
// Everything else is read once at start: it shapes listeners, engines or
// on-disk state that cannot change under open connections.
var reloadable = []string{
	"circuit_breaker",
	"quota",
	"cache.nfs_attr_cache",
	"log.level",
}

// ReloadableKeys returns the key prefixes that take effect on SIGHUP
// without a restart.
func ReloadableKeys() []string {
	return append([]string(nil), reloadable...)
}

// Reloadable says whether a change to the key at path (as in Change.Path)
// takes effect on SIGHUP.
func Reloadable(path string) bool {
	for _, p := range reloadable {
		if isUnder(path, p) || path == p {
			return true
		}
	}
	return false
}

// Change is one key whose value differs between two configurations. Values
// are rendered for logs; secrets are shown as "<redacted>". A list entry
// that exists on one side only is one Change on the entry's path with the
// other side empty.
type Change struct {
	Path string
	Old  string
	New  string
}

// Reloadable says whether the change takes effect on SIGHUP.
func (c Change) Reloadable() bool { return Reloadable(c.Path) }

func (c Change) String() string {
	return fmt.Sprintf("%s: %s -> %s", c.Path, c.Old, c.New)
}

// Diff lists every key whose value differs from old to new, in schema order.
func Diff(old, new *Config) []Change {
	var out []Change
	diffValue(reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem(), "", false, &out)
	return out
}

func diffValue(a, b reflect.Value, path string, secret bool, out *[]Change) {
	switch a.Kind() {
	case reflect.Struct:
		t := a.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			diffValue(a.Field(i), b.Field(i), joinPath(path, name), isSecret(f), out)
		}
	case reflect.Slice:
		if a.Type().Elem().Kind() != reflect.Struct {
			if ra, rb := render(a), render(b); ra != rb {
				*out = append(*out, Change{Path: path, Old: ra, New: rb})
			}
			return
		}
		for i := range max(a.Len(), b.Len()) {
			p := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case i >= a.Len():
				*out = append(*out, Change{Path: p, New: render(b.Index(i))})
			case i >= b.Len():
				*out = append(*out, Change{Path: p, Old: render(a.Index(i))})
			default:
				diffValue(a.Index(i), b.Index(i), p, false, out)
			}
		}
	default:
		if a.Interface() == b.Interface() {
			return
		}
		c := Change{Path: path, Old: render(a), New: render(b)}
		if secret {
			c.Old, c.New = redact(a), redact(b)
		}
		*out = append(*out, c)
	}
}

func isSecret(f reflect.StructField) bool { return f.Tag.Get("secret") == "true" }

func redact(v reflect.Value) string {
	if v.IsZero() {
		return `""`
	}
	return "<redacted>"
}

// render writes a value the way logs and the documentation show it: text
// as is ("" when empty), lists as [a, b], sections as {key: value, ...}.
func render(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		if v.Len() == 0 {
			return `""`
		}
		return v.String()
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = render(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.Struct:
		t := v.Type()
		var parts []string
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			val := render(v.Field(i))
			if isSecret(f) {
				val = redact(v.Field(i))
			}
			parts = append(parts, name+": "+val)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	default:
		return fmt.Sprint(v.Interface())
	}
}

// Reload decides what a running gateway does with a newly loaded
// configuration. next is running with the reloadable keys taken from
// loaded; applied are the changes next makes, pending those that wait for a
// restart (the caller logs them).
func Reload(running, loaded *Config) (next *Config, applied, pending []Change) {
	next = running.Clone()
	next.CircuitBreaker = loaded.CircuitBreaker
	next.Quota = loaded.Quota
	next.Cache.NFSAttrCache = loaded.Cache.NFSAttrCache
	next.Log.Level = loaded.Log.Level
	for _, c := range Diff(running, loaded) {
		if c.Reloadable() {
			applied = append(applied, c)
		} else {
			pending = append(pending, c)
		}
	}
	return next, applied, pending
}

// Clone returns a deep copy, so that a caller may change one without
// affecting the other.
func (c *Config) Clone() *Config {
	out := new(Config)
	deepCopy(reflect.ValueOf(out).Elem(), reflect.ValueOf(c).Elem())
	return out
}

func deepCopy(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Struct:
		for i := range src.NumField() {
			deepCopy(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			dst.Set(reflect.Zero(src.Type()))
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			deepCopy(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	default:
		dst.Set(src)
	}
}
