package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

const docsPath = "../../docs/configuration.md"

type docRow struct {
	key, typ, def, allowed, reload string
}

// docRows reads the key tables: rows whose first cell is a backticked key.
func docRows(t *testing.T) (map[string]docRow, string) {
	t.Helper()
	raw, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatalf("read the configuration reference: %v", err)
	}
	text := string(raw)
	rows := map[string]docRow{}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		line = strings.ReplaceAll(line, `\|`, "\x00")
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 6 {
			// The tuning tables of the guide have other shapes.
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(strings.ReplaceAll(cells[i], "\x00", "|"))
		}
		key := strings.Trim(cells[0], "`")
		if _, dup := rows[key]; dup {
			t.Errorf("docs: %s is documented twice", key)
		}
		rows[key] = docRow{key, cells[1], cells[2], cells[3], cells[4]}
	}
	return rows, text
}

// TestDocsCoverEveryKey keeps docs/configuration.md in step with the
// schema: every key has one row, no row names a key that does not exist,
// and each row's default, type and reload columns are right.
func TestDocsCoverEveryKey(t *testing.T) {
	rows, _ := docRows(t)
	elemDefaults := map[string]reflect.Value{
		"nfs.exports":    reflect.ValueOf(exportDefaults("")),
		"smb.shares":     reflect.ValueOf(Share{Path: "/"}),
		"smb.interfaces": reflect.ValueOf(Interface{}),
	}
	checked := 0
	for _, k := range schemaKeys() {
		row, ok := rows[k.path]
		if !ok {
			t.Errorf("docs: no row for %s", k.path)
			continue
		}
		delete(rows, k.path)

		if want := docType(k.typ, k.structList); row.typ != want {
			t.Errorf("docs: %s has type %q, want %q", k.path, row.typ, want)
		}
		wantReload := "no"
		if Reloadable(replaceElem(k.path)) {
			wantReload = "yes"
		}
		if row.reload != wantReload {
			t.Errorf("docs: %s says reload %q, want %q", k.path, row.reload, wantReload)
		}

		if !strings.HasPrefix(row.def, "`") || !strings.HasSuffix(row.def, "`") || strings.Count(row.def, "`") != 2 {
			continue // "required" or a sentence
		}
		var v reflect.Value
		if k.elem {
			d, ok := elemDefaults[k.list]
			if !ok {
				t.Fatalf("no entry defaults for list %s", k.list)
			}
			v, ok = valueAt(d, strings.TrimPrefix(k.path, k.list+"[]."))
			if !ok {
				t.Fatalf("no value for %s", k.path)
			}
		} else {
			v, _ = valueAt(reflect.ValueOf(Default()).Elem(), k.path)
		}
		if got, want := strings.Trim(row.def, "`"), render(v); got != want {
			t.Errorf("docs: %s has default %s, Default() has %s", k.path, got, want)
		}
		checked++
	}
	for key := range rows {
		t.Errorf("docs: row for %s, which is not a key", key)
	}
	if checked < 100 {
		t.Errorf("only %d defaults were compared; is the table format still what the test reads?", checked)
	}
}

func docType(t reflect.Type, structList bool) string {
	switch {
	case structList:
		return "list of entries"
	case t.Kind() == reflect.Slice:
		return "list of strings"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() == reflect.String:
		return "string"
	default:
		return "integer"
	}
}

func TestDocsHoldTheExample(t *testing.T) {
	_, text := docRows(t)
	if !strings.Contains(text, "```yaml\n"+Example()+"```\n") {
		t.Error("docs/configuration.md does not end with the current example.yaml in a yaml block")
	}
}

// TestDocsKeepGuideOrder: the guide's sections come first, in its order.
func TestDocsKeepGuideOrder(t *testing.T) {
	_, text := docRows(t)
	order := []string{"connection_pool", "circuit_breaker", "quota", "cache", "smb", "s3",
		"data_dir", "log", "metadata", "blob", "data", "admin", "nfs", "nfs4", "locks"}
	last := -1
	for _, s := range order {
		i := strings.Index(text, "\n### "+s+"\n")
		if i < 0 {
			t.Errorf("docs: no section %s", s)
			continue
		}
		if i < last {
			t.Errorf("docs: section %s is out of order", s)
		}
		last = i
	}
	names, _ := fieldsOf(reflect.TypeOf(Config{}))
	if !reflect.DeepEqual(names, order) {
		t.Errorf("Config sections %v, want %v", names, order)
	}
}
