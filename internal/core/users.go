package core

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"unicode/utf16"

	"golang.org/x/crypto/md4"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// User is one entry of the users table that every protocol authenticates
// against: SMB by the NT hash of the password (NTLM needs it), S3 by access
// keys (SigV4 needs the secret itself, so it is stored as is, as every S3
// server does), NFS by uid alone.
type User struct {
	Name       string      `json:"name"`
	UID        uint32      `json:"uid"`
	GID        uint32      `json:"gid"`
	Groups     []uint32    `json:"groups,omitempty"`
	NTHash     []byte      `json:"nt_hash,omitempty"`
	AccessKeys []AccessKey `json:"access_keys,omitempty"`
}

// AccessKey is an S3 access key pair.
type AccessKey struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// Identity returns the identity the user acts as.
func (u *User) Identity() Identity {
	return Identity{UID: u.UID, GID: u.GID, Groups: append([]uint32(nil), u.Groups...)}
}

var (
	// ErrUserExists is AddUser of a name that is taken.
	ErrUserExists = errors.New("user already exists")
	// ErrNoUser is a name or access key that no user has.
	ErrNoUser = errors.New("no such user")
)

// NTHash is the MD4 of the UTF-16LE password: the secret NTLM proves.
func NTHash(password string) []byte {
	h := md4.New()
	for _, c := range utf16.Encode([]rune(password)) {
		h.Write([]byte{byte(c), byte(c >> 8)})
	}
	return h.Sum(nil)
}

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// NewAccessKey makes a random access key pair.
func NewAccessKey() AccessKey {
	return AccessKey{ID: randomString(20, keyAlphabet), Secret: randomString(40, secretAlphabet)}
}

// AddUser adds u to the users table, with the NT hash of password when it
// is not empty. Its access keys must not belong to another user.
func (fs *FS) AddUser(ctx context.Context, u User, password string) error {
	if u.Name == "" {
		return errors.New("user add: a name is required")
	}
	if password != "" {
		u.NTHash = NTHash(password)
	}
	err := fs.store.Update(ctx, func(tx kv.Txn) error {
		if _, err := tx.Get(ctx, meta.UserKey(u.Name)); err == nil {
			return ErrUserExists
		} else if !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		return putUser(ctx, tx, &u, nil)
	})
	if err != nil {
		return fmt.Errorf("user add %q: %w", u.Name, err)
	}
	return nil
}

func putUser(ctx context.Context, tx kv.Txn, u, old *User) error {
	if old != nil {
		for _, k := range old.AccessKeys {
			tx.Delete(meta.AccessKeyKey(k.ID))
		}
	}
	for _, k := range u.AccessKeys {
		if v, err := tx.Get(ctx, meta.AccessKeyKey(k.ID)); err == nil && string(v) != u.Name {
			return fmt.Errorf("access key %s belongs to user %q", k.ID, v)
		}
		tx.Put(meta.AccessKeyKey(k.ID), []byte(u.Name))
	}
	v, err := json.Marshal(u)
	if err != nil {
		return err
	}
	tx.Put(meta.UserKey(u.Name), v)
	return nil
}

func getUser(ctx context.Context, r kv.Reader, name string) (*User, error) {
	v, err := r.Get(ctx, meta.UserKey(name))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, ErrNoUser
	}
	if err != nil {
		return nil, err
	}
	var u User
	if err := json.Unmarshal(v, &u); err != nil {
		return nil, fmt.Errorf("%w: user %q: %v", meta.ErrCorrupt, name, err)
	}
	return &u, nil
}

// UpdateUser changes a user in place with fn.
func (fs *FS) UpdateUser(ctx context.Context, name string, fn func(u *User) error) error {
	err := fs.store.Update(ctx, func(tx kv.Txn) error {
		old, err := getUser(ctx, tx, name)
		if err != nil {
			return err
		}
		u := *old
		u.AccessKeys = append([]AccessKey(nil), old.AccessKeys...)
		if err := fn(&u); err != nil {
			return err
		}
		return putUser(ctx, tx, &u, old)
	})
	if err != nil {
		return fmt.Errorf("user update %q: %w", name, err)
	}
	return nil
}

// SetPassword sets a user's SMB password.
func (fs *FS) SetPassword(ctx context.Context, name, password string) error {
	return fs.UpdateUser(ctx, name, func(u *User) error {
		u.NTHash = NTHash(password)
		return nil
	})
}

// DeleteUser removes a user and its access keys.
func (fs *FS) DeleteUser(ctx context.Context, name string) error {
	err := fs.store.Update(ctx, func(tx kv.Txn) error {
		u, err := getUser(ctx, tx, name)
		if err != nil {
			return err
		}
		for _, k := range u.AccessKeys {
			tx.Delete(meta.AccessKeyKey(k.ID))
		}
		tx.Delete(meta.UserKey(name))
		return nil
	})
	if err != nil {
		return fmt.Errorf("user delete %q: %w", name, err)
	}
	return nil
}

// LookupUser returns the user called name.
func (fs *FS) LookupUser(ctx context.Context, name string) (*User, error) {
	var u *User
	err := fs.store.View(ctx, func(r kv.Reader) error {
		var err error
		u, err = getUser(ctx, r, name)
		return err
	})
	return u, err
}

// LookupAccessKey returns the user that owns an S3 access key, and the key.
func (fs *FS) LookupAccessKey(ctx context.Context, id string) (*User, AccessKey, error) {
	var u *User
	err := fs.store.View(ctx, func(r kv.Reader) error {
		name, err := r.Get(ctx, meta.AccessKeyKey(id))
		if errors.Is(err, kv.ErrNotFound) {
			return ErrNoUser
		}
		if err != nil {
			return err
		}
		u, err = getUser(ctx, r, string(name))
		return err
	})
	if err != nil {
		return nil, AccessKey{}, err
	}
	for _, k := range u.AccessKeys {
		if k.ID == id {
			return u, k, nil
		}
	}
	return nil, AccessKey{}, ErrNoUser
}

// ListUsers returns every user, by name.
func (fs *FS) ListUsers(ctx context.Context) ([]User, error) {
	var users []User
	err := scanAll(ctx, fs.store, meta.UserPrefix(), func(p kv.Pair) error {
		var u User
		if err := json.Unmarshal(p.Value, &u); err != nil {
			return fmt.Errorf("%w: user record %q: %v", meta.ErrCorrupt, p.Key[1:], err)
		}
		users = append(users, u)
		return nil
	})
	sort.Slice(users, func(i, j int) bool { return users[i].Name < users[j].Name })
	return users, err
}
