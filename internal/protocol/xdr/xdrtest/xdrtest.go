// Package xdrtest holds the checks that the generated XDR packages'
// tests and fuzz targets share: a decoder of bytes from the network
// must never panic, and whatever it accepts must encode back to exactly
// the bytes it consumed (XDR has one encoding per value, so anything
// else means the decoder accepted something it should not have, or
// lost something it read).
//
// It is imported only by tests.
package xdrtest

import (
	"bytes"
	"io"
	"testing"
)

// Decoder decodes one XDR type from r and returns the decoded value as
// something that encodes itself again.
type Decoder struct {
	Name   string
	Decode func(r io.Reader) (io.WriterTo, int64, error)
}

// Struct is the Decoder of a generated struct type.
func Struct[T any, PT interface {
	*T
	io.ReaderFrom
	io.WriterTo
}](name string) Decoder {
	return Decoder{Name: name, Decode: func(r io.Reader) (io.WriterTo, int64, error) {
		v := PT(new(T))
		n, err := v.ReadFrom(r)
		return v, n, err
	}}
}

// Union is the Decoder of a generated union type, which is read by a
// function returning an interface value.
func Union[T io.WriterTo](name string, read func(io.Reader) (T, int64, error)) Decoder {
	return Decoder{Name: name, Decode: func(r io.Reader) (io.WriterTo, int64, error) {
		v, n, err := read(r)
		return v, n, err
	}}
}

// Func is the Decoder of a type read and written by generated
// functions: typedefs of opaque and string types, and optional linked
// lists (a "T *ptr" typedef), whose empty value is a nil pointer.
func Func[T any](name string, read func(io.Reader) (T, int64, error), write func(io.Writer, T) (int64, error)) Decoder {
	return Decoder{Name: name, Decode: func(r io.Reader) (io.WriterTo, int64, error) {
		v, n, err := read(r)
		return writerFunc(func(w io.Writer) (int64, error) { return write(w, v) }), n, err
	}}
}

type writerFunc func(io.Writer) (int64, error)

func (f writerFunc) WriteTo(w io.Writer) (int64, error) { return f(w) }

// CheckRoundTrip decodes data with d and, when that succeeds, checks
// that the value encodes back to the consumed bytes.
func CheckRoundTrip(t *testing.T, d Decoder, data []byte) {
	t.Helper()
	v, n, err := d.Decode(bytes.NewReader(data))
	if err != nil {
		return
	}
	if n < 0 || n > int64(len(data)) {
		t.Fatalf("%s: decoder reports %d bytes consumed of %d", d.Name, n, len(data))
	}
	var b bytes.Buffer
	if _, err := v.WriteTo(&b); err != nil {
		t.Fatalf("%s: re-encoding a decoded value failed: %v", d.Name, err)
	}
	if !bytes.Equal(b.Bytes(), data[:n]) {
		t.Fatalf("%s: decoded %x, re-encoded as %x", d.Name, data[:n], b.Bytes())
	}
}

// CheckTruncations checks that d accepts a complete encoding and
// rejects every proper prefix of it, without panicking.
func CheckTruncations(t *testing.T, d Decoder, encoded []byte) {
	t.Helper()
	if _, n, err := d.Decode(bytes.NewReader(encoded)); err != nil || n != int64(len(encoded)) {
		t.Fatalf("%s: complete encoding: consumed %d of %d bytes, err %v", d.Name, n, len(encoded), err)
	}
	for i := range len(encoded) {
		if _, _, err := d.Decode(bytes.NewReader(encoded[:i])); err == nil {
			t.Fatalf("%s: a prefix of %d of %d bytes decoded without error", d.Name, i, len(encoded))
		}
	}
}

// Fuzz runs CheckRoundTrip on arbitrary input for every decoder; the
// first input byte picks the decoder. Each decoder is seeded with
// zero-filled input (which many XDR values decode from) and with seeds.
func Fuzz(f *testing.F, decoders []Decoder, seeds ...[]byte) {
	for i := range decoders {
		f.Add(uint8(i), make([]byte, 256))
		for _, s := range seeds {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		CheckRoundTrip(t, decoders[int(which)%len(decoders)], data)
	})
}

// Encode encodes v, failing the test on error.
func Encode(t testing.TB, v io.WriterTo) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := v.WriteTo(&b); err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	return b.Bytes()
}

// EncodeFunc encodes with a generated Write function, failing the test
// on error.
func EncodeFunc(t testing.TB, write func(io.Writer) (int64, error)) []byte {
	t.Helper()
	return Encode(t, writerFunc(write))
}
