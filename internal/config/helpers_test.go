package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type yamlNode = yaml.Node

func parseNode(t *testing.T, s string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return doc.Content[0]
}

// schemaKey is one documented key: a scalar, a list of scalars, or a list
// of entries (structList). Keys of list entries have "[]" in their path.
type schemaKey struct {
	path       string
	typ        reflect.Type
	structList bool
	elem       bool   // inside a list entry
	list       string // the list's path, for elem keys
}

func schemaKeys() []schemaKey {
	var out []schemaKey
	var walk func(t reflect.Type, prefix string, elem bool, list string)
	walk = func(t reflect.Type, prefix string, elem bool, list string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			p := joinPath(prefix, name)
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, p, elem, list)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				out = append(out, schemaKey{path: p, typ: f.Type, structList: true, elem: elem, list: list})
				walk(f.Type.Elem(), p+"[]", true, p)
			default:
				out = append(out, schemaKey{path: p, typ: f.Type, elem: elem, list: list})
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "", false, "")
	return out
}

func replaceElem(p string) string { return strings.ReplaceAll(p, "[]", "[0]") }

// valueAt finds the value at a key path with [0]-style indexes.
func valueAt(v reflect.Value, path string) (reflect.Value, bool) {
	for _, part := range strings.Split(path, ".") {
		name, idx, hasIdx := strings.Cut(part, "[")
		_, index := fieldsOf(v.Type())
		i, ok := index[name]
		if !ok {
			return reflect.Value{}, false
		}
		v = v.Field(i)
		if hasIdx {
			n := 0
			for _, c := range strings.TrimSuffix(idx, "]") {
				n = n*10 + int(c-'0')
			}
			if n >= v.Len() {
				return reflect.Value{}, false
			}
			v = v.Index(n)
		}
	}
	return v, true
}

// problemPaths lists "path@line" of every problem in err, sorted.
func problemPaths(t *testing.T, err error) []string {
	t.Helper()
	le, ok := err.(*LoadError)
	if !ok {
		t.Fatalf("error is %T (%v), want *LoadError", err, err)
	}
	var out []string
	for _, p := range le.Problems {
		out = append(out, fmt.Sprintf("%s@%d", p.Path, p.Line))
	}
	sort.Strings(out)
	return out
}
