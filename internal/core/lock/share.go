package lock

import (
	"context"
	"fmt"
	"slices"
)

// OpenAccess is a set of data accesses, used both for what an open does
// (access) and for what it forbids others to do (deny).
type OpenAccess uint8

const (
	OpenRead OpenAccess = 1 << iota
	OpenWrite
	OpenDelete

	openAll = OpenRead | OpenWrite | OpenDelete
)

func (a OpenAccess) String() string {
	b := []byte("---")
	if a&OpenRead != 0 {
		b[0] = 'r'
	}
	if a&OpenWrite != 0 {
		b[1] = 'w'
	}
	if a&OpenDelete != 0 {
		b[2] = 'd'
	}
	return string(b)
}

// DenyFromShare converts SMB's ShareAccess (what others may do) to the deny
// mask used here (what others may not do).
func DenyFromShare(share OpenAccess) OpenAccess { return openAll &^ share }

// ShareRequest describes an open for share-reservation purposes.
type ShareRequest struct {
	Owner  Owner
	Access OpenAccess
	Deny   OpenAccess
	// LeaseKey is the lease this open is covered by, if any. A write lease
	// is granted only when every other open with data access carries its
	// key.
	LeaseKey LeaseKey
}

// ShareHandle names an open share reservation.
type ShareHandle struct {
	File FileID
	id   uint64
}

type shareOpen struct {
	id       uint64
	owner    Owner
	access   OpenAccess
	deny     OpenAccess
	leaseKey LeaseKey
}

func validMasks(access, deny OpenAccess) error {
	if access&^openAll != 0 || deny&^openAll != 0 {
		return fmt.Errorf("%w: access %#x or deny %#x has unknown bits", ErrInvalid, access, deny)
	}
	return nil
}

// shareConflict reports whether two opens cannot coexist. Opens without data
// access take no part in share checks.
func shareConflict(aAccess, aDeny, bAccess, bDeny OpenAccess) bool {
	if aAccess == 0 || bAccess == 0 {
		return false
	}
	return aAccess&bDeny != 0 || bAccess&aDeny != 0
}

func (fs *fileState) shareBlocker(skip uint64, access, deny OpenAccess) *shareOpen {
	for _, sh := range fs.shares {
		if sh.id != skip && shareConflict(sh.access, sh.deny, access, deny) {
			return sh
		}
	}
	return nil
}

// OpenShare records an open of file, or refuses it with ErrShareConflict.
// Before retrying a refused open, an SMB server breaks other holders' handle
// caching (Break with AccessHandle) so that they close cached handles.
func (m *Manager) OpenShare(file FileID, r ShareRequest) (ShareHandle, error) {
	if err := validMasks(r.Access, r.Deny); err != nil {
		return ShareHandle{}, err
	}
	if r.Owner.Client == "" {
		return ShareHandle{}, fmt.Errorf("%w: owner has no client", ErrInvalid)
	}
	if m.cl == nil {
		return m.localOpenShare(file, r)
	}
	mu := m.stripe(file)
	mu.Lock()
	defer mu.Unlock()
	_, err := m.claim(context.Background(), file, func(rec *clusterRecord) {
		rec.Shares = append(rec.Shares, recordShare{Owner: r.Owner, Access: r.Access, Deny: r.Deny})
	}, remoteShareConflict(file, r.Access, r.Deny))
	if err != nil {
		return ShareHandle{}, err
	}
	h, err := m.localOpenShare(file, r)
	if err != nil {
		m.publish(file)
	}
	return h, err
}

func (m *Manager) localOpenShare(file FileID, r ShareRequest) (ShareHandle, error) {
	s := m.shard(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.file(file)
	if b := fs.shareBlocker(0, r.Access, r.Deny); b != nil {
		s.settle(file, fs)
		return ShareHandle{}, fmt.Errorf("%w: file %d: access %s deny %s against open by %s with access %s deny %s",
			ErrShareConflict, file, r.Access, r.Deny, b.owner, b.access, b.deny)
	}
	sh := &shareOpen{
		id:       m.nextShareID.Add(1),
		owner:    r.Owner,
		access:   r.Access,
		deny:     r.Deny,
		leaseKey: r.LeaseKey,
	}
	fs.shares = append(fs.shares, sh)
	s.settle(file, fs)
	return ShareHandle{File: file, id: sh.id}, nil
}

// ChangeShare replaces an open's access and deny masks (NFSv4 OPEN upgrade and
// OPEN_DOWNGRADE), checking them against the other opens only.
func (m *Manager) ChangeShare(h ShareHandle, access, deny OpenAccess) error {
	if err := validMasks(access, deny); err != nil {
		return err
	}
	if m.cl == nil {
		return m.localChangeShare(h, access, deny)
	}
	mu := m.stripe(h.File)
	mu.Lock()
	defer mu.Unlock()
	var owner Owner
	s := m.shard(h.File)
	s.mu.Lock()
	if fs := s.files[h.File]; fs != nil {
		if i := slices.IndexFunc(fs.shares, func(sh *shareOpen) bool { return sh.id == h.id }); i >= 0 {
			owner = fs.shares[i].owner
		}
	}
	s.mu.Unlock()
	if owner.Client == "" {
		return fmt.Errorf("%w: file %d", ErrNoShare, h.File)
	}
	_, err := m.claim(context.Background(), h.File, func(rec *clusterRecord) {
		rec.Shares = append(rec.Shares, recordShare{Owner: owner, Access: access, Deny: deny})
	}, remoteShareConflict(h.File, access, deny))
	if err == nil {
		err = m.localChangeShare(h, access, deny)
	}
	m.publish(h.File)
	return err
}

func (m *Manager) localChangeShare(h ShareHandle, access, deny OpenAccess) error {
	s := m.shard(h.File)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.files[h.File]
	if fs == nil {
		return fmt.Errorf("%w: file %d", ErrNoShare, h.File)
	}
	i := slices.IndexFunc(fs.shares, func(sh *shareOpen) bool { return sh.id == h.id })
	if i < 0 {
		return fmt.Errorf("%w: file %d", ErrNoShare, h.File)
	}
	if b := fs.shareBlocker(h.id, access, deny); b != nil {
		return fmt.Errorf("%w: file %d: access %s deny %s against open by %s with access %s deny %s",
			ErrShareConflict, h.File, access, deny, b.owner, b.access, b.deny)
	}
	fs.shares[i].access, fs.shares[i].deny = access, deny
	return nil
}

// CloseShare removes an open's share reservation.
func (m *Manager) CloseShare(h ShareHandle) error {
	if m.cl == nil {
		return m.localCloseShare(h)
	}
	mu := m.stripe(h.File)
	mu.Lock()
	defer mu.Unlock()
	err := m.localCloseShare(h)
	m.publish(h.File)
	return err
}

func (m *Manager) localCloseShare(h ShareHandle) error {
	s := m.shard(h.File)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.files[h.File]
	if fs == nil {
		return fmt.Errorf("%w: file %d", ErrNoShare, h.File)
	}
	i := slices.IndexFunc(fs.shares, func(sh *shareOpen) bool { return sh.id == h.id })
	if i < 0 {
		return fmt.Errorf("%w: file %d", ErrNoShare, h.File)
	}
	fs.shares = slices.Delete(fs.shares, i, i+1)
	s.settle(h.File, fs)
	return nil
}
