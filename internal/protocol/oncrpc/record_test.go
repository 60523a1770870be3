package oncrpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// fragment encodes one record fragment.
func fragment(last bool, payload []byte) []byte {
	mark := uint32(len(payload))
	if last {
		mark |= lastFragment
	}
	b := binary.BigEndian.AppendUint32(nil, mark)
	return append(b, payload...)
}

// fragmented encodes payload as a record split at the given sizes; the
// rest goes in the last fragment.
func fragmented(payload []byte, sizes ...int) []byte {
	var out []byte
	for _, n := range sizes {
		out = append(out, fragment(false, payload[:n])...)
		payload = payload[n:]
	}
	return append(out, fragment(true, payload)...)
}

func TestReadRecord(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 300) // 4800 bytes
	big := bytes.Repeat([]byte{7}, 200<<10)                  // over one read chunk
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	tests := []struct {
		name    string
		input   []byte
		max     int
		want    []byte
		wantErr error
	}{
		{name: "single fragment", input: fragment(true, payload), max: 1 << 20, want: payload},
		{name: "three fragments", input: fragmented(payload, 100, 2000), max: 1 << 20, want: payload},
		{name: "empty fragments between", input: cat(fragment(false, nil), fragment(false, payload[:10]), fragment(false, nil), fragment(true, payload[10:])), max: 1 << 20, want: payload},
		{name: "empty record", input: fragment(true, nil), max: 1 << 20, want: []byte{}},
		{name: "larger than a read chunk", input: fragmented(big, 1, 70000), max: 1 << 20, want: big},
		{name: "exactly at the cap", input: fragment(true, payload), max: len(payload), want: payload},
		{name: "one fragment over the cap", input: fragment(true, payload), max: len(payload) - 1, wantErr: ErrRecordTooLarge},
		{name: "fragments add up over the cap", input: fragmented(payload, 3000), max: 4000, wantErr: ErrRecordTooLarge},
		{name: "announced length over the cap with no body", input: binary.BigEndian.AppendUint32(nil, lastFragment|0x7fffffff), max: 1 << 20, wantErr: ErrRecordTooLarge},
		{name: "clean end before a record", input: nil, max: 1 << 20, wantErr: io.EOF},
		{name: "truncated mark", input: []byte{0x80, 0}, max: 1 << 20, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated body", input: fragment(true, payload)[:100], max: 1 << 20, wantErr: io.ErrUnexpectedEOF},
		{name: "missing next fragment", input: fragment(false, payload), max: 1 << 20, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated next mark", input: cat(fragment(false, payload), []byte{0x80}), max: 1 << 20, wantErr: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readRecord(bytes.NewReader(tt.input), tt.max)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("readRecord error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readRecord: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("readRecord returned %d bytes, want %d", len(got), len(tt.want))
			}
			putBuffer(got)
		})
	}
}

func TestReadRecordConsumesExactlyOneRecord(t *testing.T) {
	stream := append(fragmented([]byte("first record"), 5), fragment(true, []byte("second"))...)
	r := bytes.NewReader(stream)
	for _, want := range []string{"first record", "second"} {
		got, err := readRecord(r, 1024)
		if err != nil {
			t.Fatalf("readRecord: %v", err)
		}
		if string(got) != want {
			t.Fatalf("readRecord = %q, want %q", got, want)
		}
	}
	if _, err := readRecord(r, 1024); err != io.EOF {
		t.Fatalf("readRecord after the last record: err = %v, want io.EOF", err)
	}
}

// FuzzReadRecord feeds arbitrary streams to the record reader: it must
// never panic, never return more than the cap, and agree with a simple
// reference parser on every stream.
func FuzzReadRecord(f *testing.F) {
	f.Add(fragment(true, []byte("hello")), uint16(64))
	f.Add(fragmented([]byte("hello, world"), 3, 4), uint16(64))
	f.Add(fragment(false, []byte("x")), uint16(64))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(64))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0}, uint16(8))
	f.Fuzz(func(t *testing.T, stream []byte, maxSize uint16) {
		max := int(maxSize)
		got, err := readRecord(bytes.NewReader(stream), max)
		want, wantErr := referenceRecord(stream, max)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("readRecord error = %v, reference error = %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if len(got) > max {
			t.Fatalf("record of %d bytes exceeds the cap %d", len(got), max)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("readRecord = %x, reference = %x", got, want)
		}
	})
}

// referenceRecord parses the first record of stream the obvious way.
func referenceRecord(stream []byte, max int) ([]byte, error) {
	var out []byte
	for {
		if len(stream) < 4 {
			return nil, io.ErrUnexpectedEOF
		}
		mark := binary.BigEndian.Uint32(stream)
		n := int(mark & fragmentLength)
		stream = stream[4:]
		if len(out)+n > max {
			return nil, ErrRecordTooLarge
		}
		if len(stream) < n {
			return nil, io.ErrUnexpectedEOF
		}
		out = append(out, stream[:n]...)
		stream = stream[n:]
		if mark&lastFragment != 0 {
			if out == nil {
				out = []byte{}
			}
			return out, nil
		}
	}
}
