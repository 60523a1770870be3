package s3

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
)

// Grantee groups of S3 ACLs.
const (
	groupAllUsers      = "http://acs.amazonaws.com/groups/global/AllUsers"
	groupAuthenticated = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
	groupLogDelivery   = "http://acs.amazonaws.com/groups/s3/LogDelivery"
)

// ACL permissions.
const (
	permRead        = "READ"
	permWrite       = "WRITE"
	permReadACP     = "READ_ACP"
	permWriteACP    = "WRITE_ACP"
	permFullControl = "FULL_CONTROL"
)

// grant is one grant: to a user (by owner ID, the user name) or to a
// group (by URI).
type grant struct {
	ID   string `json:"id,omitempty"`
	URI  string `json:"uri,omitempty"`
	Perm string `json:"p"`
}

// acl is the stored ACL of a bucket or object (xACL): the canned name it
// came from, if any, and its whole grant list, the owner's own grant
// included (S3 lets an ACL drop even that one; the owner keeps its access
// by ownership anyway).
type acl struct {
	Canned string  `json:"c,omitempty"`
	Grants []grant `json:"g,omitempty"`
}

func decodeACL(b []byte) *acl {
	if len(b) == 0 {
		return nil
	}
	var a acl
	if json.Unmarshal(b, &a) != nil {
		return &acl{Canned: "private"}
	}
	return &a
}

func (a *acl) encode() []byte {
	b, _ := json.Marshal(a)
	return b
}

// cannedName is the canned ACL an ACL came from ("private" for none).
func (a *acl) cannedName() string {
	if a == nil || a.Canned == "" && len(a.Grants) == 0 {
		return "private"
	}
	return a.Canned
}

// errUnresolvableEmail is a grant to an e-mail address: users here have
// none.
var errUnresolvableEmail = &s3err.Error{Code: "UnresolvableGrantByEmailAddress", Status: 400,
	Message: "The e-mail address you provided does not match any account on record; grant by id instead."}

// cannedACL expands a canned ACL for an object or bucket of owner in a
// bucket of bucketOwner: group grants first, then the owner's
// FULL_CONTROL, then grants to the bucket owner, as S3 lists them.
func cannedACL(name, owner, bucketOwner string) (*acl, error) {
	a := &acl{Canned: name}
	full := grant{ID: owner, Perm: permFullControl}
	switch name {
	case "private":
		a.Grants = []grant{full}
	case "public-read":
		a.Grants = []grant{{URI: groupAllUsers, Perm: permRead}, full}
	case "public-read-write":
		a.Grants = []grant{{URI: groupAllUsers, Perm: permRead}, {URI: groupAllUsers, Perm: permWrite}, full}
	case "authenticated-read":
		a.Grants = []grant{{URI: groupAuthenticated, Perm: permRead}, full}
	case "bucket-owner-read", "aws-exec-read":
		a.Grants = []grant{full}
		if bucketOwner != owner {
			a.Grants = append(a.Grants, grant{ID: bucketOwner, Perm: permRead})
		}
	case "bucket-owner-full-control":
		a.Grants = []grant{full}
		if bucketOwner != owner {
			a.Grants = append(a.Grants, grant{ID: bucketOwner, Perm: permFullControl})
		}
	case "log-delivery-write":
		a.Grants = []grant{{URI: groupLogDelivery, Perm: permWrite}, {URI: groupLogDelivery, Perm: permReadACP}, full}
	default:
		return nil, s3err.InvalidArgument.With("The canned ACL %q is not valid.", name).WithExtra("ArgumentName", "x-amz-acl")
	}
	return a, nil
}

// grantHeaders are the x-amz-grant-* headers and the permission each gives.
var grantHeaders = []struct{ header, perm string }{
	{"X-Amz-Grant-Full-Control", permFullControl},
	{"X-Amz-Grant-Read", permRead},
	{"X-Amz-Grant-Read-Acp", permReadACP},
	{"X-Amz-Grant-Write", permWrite},
	{"X-Amz-Grant-Write-Acp", permWriteACP},
}

// aclFromHeaders returns the ACL a request sets with x-amz-acl or the
// x-amz-grant-* headers for something owner owns in a bucket of
// bucketOwner, or nil if it sets none.
func (s *Server) aclFromHeaders(h http.Header, owner, bucketOwner string) (*acl, error) {
	canned := h.Get("X-Amz-Acl")
	var grants []grant
	for _, gh := range grantHeaders {
		v := h.Get(gh.header)
		if v == "" {
			continue
		}
		for _, part := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok {
				return nil, s3err.InvalidArgument.With("The grant %q is not of the form type=value.", part)
			}
			val = strings.Trim(strings.TrimSpace(val), `"`)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "id":
				if !s.owners.knownID(val) {
					return nil, s3err.InvalidArgument.With("Invalid id %q: no such user.", val)
				}
				grants = append(grants, grant{ID: val, Perm: gh.perm})
			case "uri":
				grants = append(grants, grant{URI: val, Perm: gh.perm})
			case "emailaddress":
				return nil, errUnresolvableEmail
			default:
				return nil, s3err.InvalidArgument.With("The grantee type %q is not valid.", k)
			}
		}
	}
	switch {
	case canned != "" && len(grants) > 0:
		return nil, s3err.InvalidRequest.With("Specifying both Canned ACLs and Header Grants is not allowed")
	case canned != "":
		return cannedACL(canned, owner, bucketOwner)
	case len(grants) > 0:
		return &acl{Grants: grants}, nil
	}
	return nil, nil
}

// aclFromXML converts an AccessControlPolicy document, grants as given.
func (s *Server) aclFromXML(doc *s3xml.AccessControlPolicy) (*acl, error) {
	a := &acl{Grants: []grant{}}
	for _, g := range doc.Grants {
		switch {
		case g.Grantee.ID != "":
			if !s.owners.knownID(g.Grantee.ID) {
				return nil, s3err.InvalidArgument.With("Invalid id %q: no such user.", g.Grantee.ID)
			}
			a.Grants = append(a.Grants, grant{ID: g.Grantee.ID, Perm: g.Permission})
		case g.Grantee.URI != "":
			a.Grants = append(a.Grants, grant{URI: g.Grantee.URI, Perm: g.Permission})
		default:
			return nil, errUnresolvableEmail
		}
	}
	return a, nil
}

// allows reports whether the ACL gives perm to the caller.
func (a *acl) allows(anonymous bool, user string, perm string) bool {
	if a == nil {
		return false
	}
	for _, g := range a.Grants {
		if g.Perm != perm && g.Perm != permFullControl {
			continue
		}
		switch {
		case g.URI == groupAllUsers:
			return true
		case g.URI == groupAuthenticated && !anonymous:
			return true
		case g.ID != "" && !anonymous && g.ID == user:
			return true
		}
	}
	return false
}

// publicWrite reports whether the ACL lets anyone write (the bucket
// directory is then made writable by all in the core too).
func (a *acl) publicWrite() bool {
	if a == nil {
		return false
	}
	for _, g := range a.Grants {
		if (g.Perm == permWrite || g.Perm == permFullControl) && (g.URI == groupAllUsers || g.URI == groupAuthenticated) {
			return true
		}
	}
	return false
}

// withoutPublic is the ACL without its grants to groups of users
// (IgnorePublicAcls).
func (a *acl) withoutPublic() *acl {
	if a == nil {
		return nil
	}
	c := &acl{Canned: a.Canned}
	for _, g := range a.Grants {
		if g.URI != groupAllUsers && g.URI != groupAuthenticated {
			c.Grants = append(c.Grants, g)
		}
	}
	return c
}

// public reports whether the ACL grants anything to everyone or to every
// authenticated user.
func (a *acl) public() bool {
	if a == nil {
		return false
	}
	for _, g := range a.Grants {
		if g.URI == groupAllUsers || g.URI == groupAuthenticated {
			return true
		}
	}
	return false
}

// document renders the ACL for Get*Acl; no stored ACL is the owner's
// FULL_CONTROL.
func (a *acl) document(owner s3xml.Owner, ownerOf func(id string) s3xml.Owner) s3xml.AccessControlPolicy {
	doc := s3xml.AccessControlPolicy{Xmlns: s3xml.Namespace, Owner: owner}
	const xsi = "http://www.w3.org/2001/XMLSchema-instance"
	if a == nil {
		a = &acl{Grants: []grant{{ID: owner.ID, Perm: permFullControl}}}
	}
	// Group grants first, then grants to users, as S3 lists them.
	grants := make([]grant, 0, len(a.Grants))
	for _, g := range a.Grants {
		if g.URI != "" {
			grants = append(grants, g)
		}
	}
	for _, g := range a.Grants {
		if g.URI == "" {
			grants = append(grants, g)
		}
	}
	for _, g := range grants {
		if g.ID != "" {
			o := ownerOf(g.ID)
			doc.Grants = append(doc.Grants, s3xml.Grant{Grantee: s3xml.Grantee{XMLNS: xsi, Type: "CanonicalUser", ID: o.ID, DisplayName: o.DisplayName}, Permission: g.Perm})
		} else {
			doc.Grants = append(doc.Grants, s3xml.Grant{Grantee: s3xml.Grantee{XMLNS: xsi, Type: "Group", URI: g.URI}, Permission: g.Perm})
		}
	}
	return doc
}
