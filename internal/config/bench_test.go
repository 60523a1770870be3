package config

import "testing"

func BenchmarkParseExample(b *testing.B) {
	data := []byte(Example())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, "example.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	c := Default()
	for b.Loop() {
		if errs := c.Validate(); errs != nil {
			b.Fatal(errs)
		}
	}
}

func BenchmarkDiff(b *testing.B) {
	old, cur := Default(), Default()
	cur.Log.Level = LogDebug
	cur.NFS.Exports[0].ReadOnly = true
	for b.Loop() {
		if len(Diff(old, cur)) != 2 {
			b.Fatal("want 2 changes")
		}
	}
}
