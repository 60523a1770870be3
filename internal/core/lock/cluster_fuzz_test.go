package lock

import "testing"

// FuzzDecodeRecord feeds arbitrary bytes, as another gateway's record in the
// shared store could hold, to the decoder: it must return an error or a
// record whose every lock and share is valid, and never panic.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(clusterRecord{Locks: []Lock{{Owner: Owner{Client: "nlm:h", PID: 7}, Flavor: POSIX, Exclusive: true, Start: 0, End: ToEOF}}}))
	f.Add(encodeRecord(clusterRecord{Shares: []recordShare{{Owner: Owner{Client: "smb:1"}, Access: OpenRead, Deny: OpenWrite}}}))
	f.Add([]byte(`{"locks":[{"Owner":{"Client":""},"Flavor":9,"Start":5,"End":1}]}`))
	f.Add([]byte(`{"shares":[{"owner":{"Client":"x"},"access":255,"deny":0}]}`))
	f.Add([]byte("\x00\xff{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		for i := range r.Locks {
			if err := r.Locks[i].validate(); err != nil {
				t.Fatalf("decoded an invalid lock: %v", err)
			}
		}
		for _, sh := range r.Shares {
			if validMasks(sh.Access, sh.Deny) != nil {
				t.Fatalf("decoded an invalid share %+v", sh)
			}
		}
		again, err := decodeRecord(encodeRecord(r))
		if (len(r.Locks)+len(r.Shares) > 0) && (err != nil || len(again.Locks) != len(r.Locks) || len(again.Shares) != len(r.Shares)) {
			t.Fatalf("record does not survive a round trip: %+v -> %+v, %v", r, again, err)
		}
	})
}

func TestDecodeRecordRejects(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"not json", "nope"},
		{"empty client", `{"locks":[{"Owner":{"Client":""},"Flavor":1,"Start":0,"End":1}]}`},
		{"unknown flavor", `{"locks":[{"Owner":{"Client":"c"},"Flavor":9,"Start":0,"End":1}]}`},
		{"reversed range", `{"locks":[{"Owner":{"Client":"c"},"Flavor":1,"Start":5,"End":1}]}`},
		{"bad mask", `{"shares":[{"owner":{"Client":"c"},"access":64,"deny":0}]}`},
	} {
		if _, err := decodeRecord([]byte(tc.in)); err == nil {
			t.Errorf("%s: %s decoded without error", tc.name, tc.in)
		}
	}
}
