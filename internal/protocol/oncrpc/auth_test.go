package oncrpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

// authSysBody encodes an AUTH_SYS body by hand, independently of the
// generated encoder, so that malformed bodies can be built too.
func authSysBody(stamp uint32, machine string, uid, gid uint32, gids []uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, stamp)
	b = binary.BigEndian.AppendUint32(b, uint32(len(machine)))
	b = append(b, machine...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint32(b, uid)
	b = binary.BigEndian.AppendUint32(b, gid)
	b = binary.BigEndian.AppendUint32(b, uint32(len(gids)))
	for _, g := range gids {
		b = binary.BigEndian.AppendUint32(b, g)
	}
	return b
}

func groups(n int) []uint32 {
	g := make([]uint32, n)
	for i := range g {
		g[i] = uint32(1000 + i)
	}
	return g
}

func TestDecodeAuthSys(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		want    SysCredential
		wantErr bool
	}{
		{
			name: "no groups",
			body: authSysBody(7, "client1", 1000, 100, nil),
			want: SysCredential{Stamp: 7, MachineName: "client1", UID: 1000, GID: 100},
		},
		{
			name: "16 groups",
			body: authSysBody(1, "c", 0, 0, groups(16)),
			want: SysCredential{Stamp: 1, MachineName: "c", GIDs: groups(16)},
		},
		{
			name: "machine name of 255 bytes",
			body: authSysBody(1, strings.Repeat("m", 255), 5, 6, nil),
			want: SysCredential{Stamp: 1, MachineName: strings.Repeat("m", 255), UID: 5, GID: 6},
		},
		{
			name: "machine name with non-ASCII bytes",
			body: authSysBody(1, "hôte", 5, 6, nil),
			want: SysCredential{Stamp: 1, MachineName: "hôte", UID: 5, GID: 6},
		},
		{name: "17 groups", body: authSysBody(1, "c", 0, 0, groups(17)), wantErr: true},
		{name: "machine name of 256 bytes", body: authSysBody(1, strings.Repeat("m", 256), 0, 0, nil), wantErr: true},
		{name: "truncated", body: authSysBody(1, "client", 1, 2, groups(3))[:30], wantErr: true},
		{name: "trailing bytes", body: append(authSysBody(1, "c", 1, 2, nil), 0, 0, 0, 0), wantErr: true},
		{name: "empty", body: nil, wantErr: true},
		{name: "non-zero padding", body: func() []byte {
			b := authSysBody(1, "c", 1, 2, nil)
			b[9] = 1 // first padding byte after the one-byte name
			return b
		}(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeAuthSys(tt.body)
			if tt.wantErr {
				if !errors.Is(err, AuthBadCred) {
					t.Fatalf("DecodeAuthSys error = %v, want one matching AuthBadCred", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeAuthSys: %v", err)
			}
			if got.Stamp != tt.want.Stamp || got.MachineName != tt.want.MachineName ||
				got.UID != tt.want.UID || got.GID != tt.want.GID || !slices.Equal(got.GIDs, tt.want.GIDs) {
				t.Fatalf("DecodeAuthSys = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSysCredentialEncoding(t *testing.T) {
	cred := SysCredential{Stamp: 9, MachineName: "host", UID: 1, GID: 2, GIDs: groups(16)}
	oa, err := cred.Credential()
	if err != nil {
		t.Fatalf("Credential: %v", err)
	}
	if oa.Flavor != AuthSys {
		t.Fatalf("flavor = %v, want AUTH_SYS", oa.Flavor)
	}
	if want := authSysBody(9, "host", 1, 2, groups(16)); !bytes.Equal(oa.Body, want) {
		t.Fatalf("body = %x, want %x", oa.Body, want)
	}
	cred.GIDs = groups(17)
	if _, err := cred.Credential(); err == nil {
		t.Fatal("Credential with 17 groups succeeded, want an error")
	}
}

// FuzzDecodeAuthSys: any body either fails with AUTH_BADCRED or decodes
// to a credential that encodes back to exactly the same bytes.
func FuzzDecodeAuthSys(f *testing.F) {
	f.Add(authSysBody(1, "client", 1000, 1000, groups(3)))
	f.Add(authSysBody(1, "", 0, 0, groups(16)))
	f.Add(authSysBody(1, "x", 0, 0, groups(17)))
	f.Add([]byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		cred, err := DecodeAuthSys(body)
		if err != nil {
			if !errors.Is(err, AuthBadCred) {
				t.Fatalf("error %v does not match AuthBadCred", err)
			}
			return
		}
		if len(cred.GIDs) > MaxAuthSysGroups || len(cred.MachineName) > 255 {
			t.Fatalf("decoded credential exceeds AUTH_SYS bounds: %+v", cred)
		}
		oa, err := cred.Credential()
		if err != nil {
			t.Fatalf("re-encoding a decoded credential: %v", err)
		}
		if !bytes.Equal(oa.Body, body) {
			t.Fatalf("re-encoded body %x differs from input %x", oa.Body, body)
		}
	})
}

// TestConnectionCredentialReuse: a connection reuses the decoding of its
// previous AUTH_SYS credential only for the very same bytes, and keeps its
// own copy of them (call records are recycled buffers).
func TestConnectionCredentialReuse(t *testing.T) {
	alice := authSysBody(1, "client", 1000, 100, groups(2))
	bob := authSysBody(1, "client", 1001, 100, groups(2))
	root := authSysBody(2, "client", 0, 0, nil)
	var ep endpoint
	for i, body := range [][]byte{alice, alice, bob, alice, {0, 0, 0, 1}, root, root} {
		in := bytes.Clone(body)
		got, err := ep.authSys(in)
		want, wantErr := DecodeAuthSys(body)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("call %d: authSys error %v, DecodeAuthSys error %v", i, err, wantErr)
		}
		if err != nil {
			if !errors.Is(err, AuthBadCred) {
				t.Fatalf("call %d: error %v does not match AuthBadCred", i, err)
			}
			continue
		}
		if got.UID != want.UID || got.GID != want.GID || got.Stamp != want.Stamp ||
			got.MachineName != want.MachineName || !slices.Equal(got.GIDs, want.GIDs) {
			t.Fatalf("call %d: authSys = %+v, want %+v", i, *got, want)
		}
		// The record buffer goes back to the pool and may carry another
		// client's credential next.
		copy(in, bob)
	}
	if got, _ := ep.authSys(root); got.UID != 0 || got.Stamp != 2 {
		t.Fatalf("after the buffers were reused, authSys(root) = %+v", *got)
	}
}
