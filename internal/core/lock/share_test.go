package lock

import (
	"errors"
	"testing"
)

const (
	r  = OpenRead
	w  = OpenWrite
	d  = OpenDelete
	rw = OpenRead | OpenWrite
)

func TestShareModeMatrix(t *testing.T) {
	tests := []struct {
		name                 string
		heldAccess, heldDeny OpenAccess
		newAccess, newDeny   OpenAccess
		conflict             bool
	}{
		{"readers, deny none", r, 0, r, 0, false},
		{"reader denies write, writer arrives", r, w, w, 0, true},
		{"reader denies write, reader arrives", r, w, r, 0, false},
		{"reader denies write, second reader denies write", r, w, r, w, false},
		{"writer exists, new open denies write", w, 0, r, w, true},
		{"writer exists, new open denies read", w, 0, r, r, false},
		{"reader exists, new open denies read", r, 0, w, r, true},
		{"deny all blocks any data access", r, openAll, r, 0, true},
		{"deny all vs attribute-only open", r, openAll, 0, 0, false},
		{"attribute-only open denying all", 0, openAll, rw, 0, false},
		{"new attribute-only open denying all", rw, 0, 0, openAll, false},
		{"delete access vs deny delete", r, d, d, 0, true},
		{"deny delete vs read", r, d, r, 0, false},
		{"held delete access, new denies delete", d, 0, r, d, true},
		{"read-write both deny none", rw, 0, rw, 0, false},
		{"read-write vs deny write (NFS4 DENY_WRITE)", rw, 0, r, w, true},
		{"SMB exclusive open (share none)", rw, DenyFromShare(0), r, DenyFromShare(r | w | d), true},
		{"SMB share all", rw, DenyFromShare(r | w | d), rw, DenyFromShare(r | w | d), false},
		{"SMB share read only, second reader shares read", r, DenyFromShare(r), r, DenyFromShare(r), false},
		{"SMB share read only, second reader shares all but held is writer", w, DenyFromShare(r | w), r, DenyFromShare(r), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Options{})
			held, err := m.OpenShare(file1, ShareRequest{Owner: ownerC, Access: tt.heldAccess, Deny: tt.heldDeny})
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.OpenShare(file1, ShareRequest{Owner: ownerD, Access: tt.newAccess, Deny: tt.newDeny})
			if got := errors.Is(err, ErrShareConflict); got != tt.conflict {
				t.Fatalf("second open: %v, want conflict %v", err, tt.conflict)
			}
			// The same open by the same owner conflicts the same way: share
			// modes apply between opens, not between owners.
			_, err = m.OpenShare(file1, ShareRequest{Owner: ownerC, Access: tt.newAccess, Deny: tt.newDeny})
			if tt.conflict && !errors.Is(err, ErrShareConflict) {
				t.Fatalf("same owner's second open: %v, want conflict", err)
			}
			// Once the first open is closed the new open always succeeds
			// (the same owner's successful open above may remain).
			if err := m.CloseShare(held); err != nil {
				t.Fatal(err)
			}
			if !tt.conflict {
				return
			}
			if _, err := m.OpenShare(file1, ShareRequest{Owner: ownerD, Access: tt.newAccess, Deny: tt.newDeny}); err != nil {
				t.Fatalf("open after close: %v", err)
			}
		})
	}
}

// Whether two opens conflict cannot depend on which came first.
func TestShareConflictSymmetric(t *testing.T) {
	for a := range openAll + 1 {
		for ad := range openAll + 1 {
			for b := range openAll + 1 {
				for bd := range openAll + 1 {
					if shareConflict(a, ad, b, bd) != shareConflict(b, bd, a, ad) {
						t.Fatalf("asymmetric: %s/%s vs %s/%s", a, ad, b, bd)
					}
				}
			}
		}
	}
}

func TestChangeShare(t *testing.T) {
	m := New(Options{})
	h1, err := m.OpenShare(file1, ShareRequest{Owner: ownerA, Access: r})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := m.OpenShare(file1, ShareRequest{Owner: ownerB, Access: r, Deny: w})
	if err != nil {
		t.Fatal(err)
	}
	// NFSv4 OPEN upgrade of h1 to read-write is refused by h2's deny write.
	if err := m.ChangeShare(h1, rw, 0); !errors.Is(err, ErrShareConflict) {
		t.Fatalf("upgrade = %v, want conflict", err)
	}
	// h2 may upgrade itself: its own deny does not count against it.
	if err := m.ChangeShare(h2, rw, w); err != nil {
		t.Fatalf("self upgrade = %v", err)
	}
	// Downgrade h2, then h1's upgrade goes through.
	if err := m.ChangeShare(h2, r, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.ChangeShare(h1, rw, 0); err != nil {
		t.Fatalf("upgrade after downgrade = %v", err)
	}
	if err := m.ChangeShare(h1, 0x80, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad mask = %v", err)
	}
	for _, h := range []ShareHandle{h1, h2} {
		if err := m.CloseShare(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.CloseShare(h1); !errors.Is(err, ErrNoShare) {
		t.Fatalf("double close = %v", err)
	}
	if err := m.ChangeShare(h1, r, 0); !errors.Is(err, ErrNoShare) {
		t.Fatalf("change after close = %v", err)
	}
	if s := m.Stats(); s != (Stats{}) {
		t.Fatalf("state left: %+v", s)
	}
	checkInvariants(t, m)
}

func TestOpenShareInvalid(t *testing.T) {
	m := New(Options{})
	if _, err := m.OpenShare(file1, ShareRequest{Owner: ownerA, Access: 0x10}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad access mask = %v", err)
	}
	if _, err := m.OpenShare(file1, ShareRequest{Access: r}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no client = %v", err)
	}
	if s := m.Stats(); s != (Stats{}) {
		t.Fatalf("state left: %+v", s)
	}
}
