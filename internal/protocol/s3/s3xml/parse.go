package s3xml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// ErrInvalidRetentionPeriod is a default retention that is not a positive
// number of days or years.
var ErrInvalidRetentionPeriod = &s3err.Error{Code: "InvalidRetentionPeriod", Status: 400,
	Message: "Default retention period must be a positive integer value."}

// Limits of request documents, as S3 has them.
const (
	MaxDeleteObjects  = 1000
	MaxParts          = 10000
	MaxObjectTags     = 10
	MaxBucketTags     = 50
	MaxTagKeyLen      = 128
	MaxTagValueLen    = 256
	MaxCORSRules      = 100
	MaxKeyLen         = 1024
	MaxRequestDocSize = 4 << 20 // larger than any valid document (10,000 parts)
)

// decode unmarshals a whole document into v. Trailing garbage after the
// root element and an empty body are malformed.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return s3err.MalformedXML.With("The request body is empty; an XML document was expected.")
	}
	if len(body) > MaxRequestDocSize {
		return s3err.MaxMessageLengthExceeded
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	if err := d.Decode(v); err != nil {
		return s3err.MalformedXML.With("The XML you provided was not well-formed: %v", err)
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return s3err.MalformedXML.With("The XML you provided was not well-formed after its root element: %v", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return s3err.MalformedXML.With("The XML you provided has text after its root element.")
			}
		case xml.Comment, xml.ProcInst, xml.Directive:
		default:
			return s3err.MalformedXML.With("The XML you provided has more than one root element.")
		}
	}
}

// ParseCompleteMultipartUpload parses and checks a CompleteMultipartUpload
// body: at least one part, part numbers 1..10000 in ascending order.
func ParseCompleteMultipartUpload(body []byte) (*CompleteMultipartUpload, error) {
	var c CompleteMultipartUpload
	if err := decode(body, &c); err != nil {
		return nil, err
	}
	if c.XMLName.Local != "CompleteMultipartUpload" {
		return nil, s3err.MalformedXML.With("The root element must be CompleteMultipartUpload.")
	}
	if len(c.Parts) == 0 {
		return nil, s3err.MalformedXML.With("You must specify at least one part.")
	}
	if len(c.Parts) > MaxParts {
		return nil, s3err.MalformedXML.With("At most %d parts may be given.", MaxParts)
	}
	for i, p := range c.Parts {
		if p.PartNumber < 1 || p.PartNumber > MaxParts {
			return nil, s3err.InvalidArgument.With("Part number must be an integer between 1 and %d, inclusive.", MaxParts).
				WithExtra("ArgumentName", "partNumber")
		}
		// A part number given twice (a part uploaded again while its first
		// upload was in flight) names the part as uploaded last.
		if i > 0 && p.PartNumber < c.Parts[i-1].PartNumber {
			return nil, s3err.InvalidPartOrder
		}
		c.Parts[i].ETag = strings.Trim(strings.TrimSpace(p.ETag), `"`)
	}
	return &c, nil
}

// ParseDelete parses and checks a DeleteObjects body: 1 to 1000 objects,
// each with a key.
func ParseDelete(body []byte) (*Delete, error) {
	var d Delete
	if err := decode(body, &d); err != nil {
		return nil, err
	}
	if d.XMLName.Local != "Delete" {
		return nil, s3err.MalformedXML.With("The root element must be Delete.")
	}
	if len(d.Objects) == 0 || len(d.Objects) > MaxDeleteObjects {
		return nil, s3err.MalformedXML.With("A DeleteObjects request names 1 to %d objects.", MaxDeleteObjects)
	}
	for _, o := range d.Objects {
		if o.Key == "" {
			return nil, s3err.MalformedXML.With("Every Object of a DeleteObjects request needs a Key.")
		}
	}
	return &d, nil
}

// ParseTagging parses and checks a tag set: at most max tags, unique keys
// of 1..128 characters, values of at most 256.
func ParseTagging(body []byte, max int) (*Tagging, error) {
	var t Tagging
	if err := decode(body, &t); err != nil {
		return nil, err
	}
	if t.XMLName.Local != "Tagging" {
		return nil, s3err.MalformedXML.With("The root element must be Tagging.")
	}
	if err := CheckTags(t.TagSet, max); err != nil {
		return nil, err
	}
	return &t, nil
}

// CheckTags checks a tag set against S3's limits.
func CheckTags(tags []Tag, max int) error {
	if len(tags) > max {
		return s3err.InvalidTag.With("Object tags cannot be greater than %d", max)
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		switch {
		case t.Key == "" || utf8.RuneCountInString(t.Key) > MaxTagKeyLen || !utf8.ValidString(t.Key):
			return s3err.InvalidTag.With("The TagKey you have provided is invalid")
		case utf8.RuneCountInString(t.Value) > MaxTagValueLen || !utf8.ValidString(t.Value):
			return s3err.InvalidTag.With("The TagValue you have provided is invalid")
		case seen[t.Key]:
			return s3err.InvalidTag.With("Cannot provide multiple Tags with the same key")
		}
		seen[t.Key] = true
	}
	return nil
}

// ParseVersioning parses a VersioningConfiguration: Status Enabled or
// Suspended.
func ParseVersioning(body []byte) (*VersioningConfiguration, error) {
	var v VersioningConfiguration
	if err := decode(body, &v); err != nil {
		return nil, err
	}
	if v.XMLName.Local != "VersioningConfiguration" {
		return nil, s3err.MalformedXML.With("The root element must be VersioningConfiguration.")
	}
	switch v.Status {
	case "Enabled", "Suspended":
	default:
		return nil, s3err.MalformedXML.With("Versioning Status must be Enabled or Suspended.")
	}
	switch v.MfaDelete {
	case "", "Disabled":
	case "Enabled":
		return nil, s3err.NotImplemented.With("MFA Delete is not supported.")
	default:
		return nil, s3err.MalformedXML.With("MfaDelete must be Enabled or Disabled.")
	}
	return &v, nil
}

// corsMethods are the methods a CORS rule may allow.
var corsMethods = map[string]bool{"GET": true, "PUT": true, "POST": true, "DELETE": true, "HEAD": true}

// ParseCORS parses and checks a CORS configuration: 1..100 rules, each with
// methods among GET, PUT, POST, DELETE, HEAD, at least one origin, and at
// most one "*" per origin or header pattern.
func ParseCORS(body []byte) (*CORSConfiguration, error) {
	var c CORSConfiguration
	if err := decode(body, &c); err != nil {
		return nil, err
	}
	if c.XMLName.Local != "CORSConfiguration" {
		return nil, s3err.MalformedXML.With("The root element must be CORSConfiguration.")
	}
	if len(c.Rules) == 0 || len(c.Rules) > MaxCORSRules {
		return nil, s3err.MalformedXML.With("A CORS configuration has 1 to %d rules.", MaxCORSRules)
	}
	for _, r := range c.Rules {
		if len(r.AllowedMethods) == 0 || len(r.AllowedOrigins) == 0 {
			return nil, s3err.MalformedXML.With("Every CORSRule needs an AllowedMethod and an AllowedOrigin.")
		}
		for _, m := range r.AllowedMethods {
			if !corsMethods[m] {
				return nil, s3err.InvalidRequest.With("Found unsupported HTTP method in CORS config. Unsupported method is %s", m)
			}
		}
		for _, o := range append(append([]string(nil), r.AllowedOrigins...), r.AllowedHeaders...) {
			if strings.Count(o, "*") > 1 {
				return nil, s3err.InvalidRequest.With("AllowedOrigin/AllowedHeader %q can not have more than one wildcard.", o)
			}
		}
		if r.MaxAgeSeconds != nil && *r.MaxAgeSeconds < 0 {
			return nil, s3err.MalformedXML.With("MaxAgeSeconds must not be negative.")
		}
	}
	return &c, nil
}

// ParseCreateBucket parses the optional CreateBucketConfiguration body.
func ParseCreateBucket(body []byte) (*CreateBucketConfiguration, error) {
	var c CreateBucketConfiguration
	if len(bytes.TrimSpace(body)) == 0 {
		return &c, nil
	}
	if err := decode(body, &c); err != nil {
		return nil, err
	}
	if c.XMLName.Local != "CreateBucketConfiguration" {
		return nil, s3err.MalformedXML.With("The root element must be CreateBucketConfiguration.")
	}
	return &c, nil
}

// Permissions of ACL grants.
var aclPermissions = map[string]bool{"FULL_CONTROL": true, "READ": true, "WRITE": true, "READ_ACP": true, "WRITE_ACP": true}

// ParseACL parses an AccessControlPolicy and checks its permissions.
func ParseACL(body []byte) (*AccessControlPolicy, error) {
	var a AccessControlPolicy
	if err := decode(body, &a); err != nil {
		return nil, s3err.MalformedACLError
	}
	if a.XMLName.Local != "AccessControlPolicy" {
		return nil, s3err.MalformedACLError
	}
	for _, g := range a.Grants {
		if !aclPermissions[g.Permission] {
			return nil, s3err.MalformedACLError.With("Unknown ACL permission %q.", g.Permission)
		}
		if g.Grantee.ID == "" && g.Grantee.URI == "" && g.Grantee.Email == "" {
			return nil, s3err.MalformedACLError.With("Every Grantee needs an ID, a URI or an EmailAddress.")
		}
	}
	return &a, nil
}

// ParseObjectLockConfiguration parses and checks an object lock
// configuration: ObjectLockEnabled is Enabled; a default retention has a
// mode GOVERNANCE or COMPLIANCE and a positive number of either days or
// years.
func ParseObjectLockConfiguration(body []byte) (*ObjectLockConfiguration, error) {
	var c ObjectLockConfiguration
	if err := decode(body, &c); err != nil {
		return nil, err
	}
	if c.XMLName.Local != "ObjectLockConfiguration" {
		return nil, s3err.MalformedXML.With("The root element must be ObjectLockConfiguration.")
	}
	if c.ObjectLockEnabled != "Enabled" {
		return nil, s3err.MalformedXML.With("ObjectLockEnabled must be Enabled.")
	}
	if c.Rule != nil {
		r := c.Rule.DefaultRetention
		if r == nil {
			return nil, s3err.MalformedXML.With("An object lock Rule needs a DefaultRetention.")
		}
		switch r.Mode {
		case "GOVERNANCE", "COMPLIANCE":
		default:
			return nil, s3err.MalformedXML.With("The retention mode must be GOVERNANCE or COMPLIANCE.")
		}
		switch {
		case r.Days != 0 && r.Years != 0:
			return nil, s3err.MalformedXML.With("A default retention has Days or Years, not both.")
		case r.Days < 0 || r.Years < 0, r.Days == 0 && r.Years == 0:
			return nil, ErrInvalidRetentionPeriod
		}
	}
	return &c, nil
}

// ParseRetention parses an object retention: mode GOVERNANCE or COMPLIANCE
// and an ISO 8601 retain-until date.
func ParseRetention(body []byte) (*Retention, time.Time, error) {
	var r Retention
	if err := decode(body, &r); err != nil {
		return nil, time.Time{}, err
	}
	if r.XMLName.Local != "Retention" {
		return nil, time.Time{}, s3err.MalformedXML.With("The root element must be Retention.")
	}
	switch r.Mode {
	case "GOVERNANCE", "COMPLIANCE":
	default:
		return nil, time.Time{}, s3err.MalformedXML.With("The retention mode must be GOVERNANCE or COMPLIANCE.")
	}
	until, err := time.Parse(time.RFC3339, r.RetainUntilDate)
	if err != nil {
		return nil, time.Time{}, s3err.MalformedXML.With("RetainUntilDate must be an ISO 8601 date.")
	}
	return &r, until, nil
}

// ParseLegalHold parses an object legal hold: Status ON or OFF.
func ParseLegalHold(body []byte) (*LegalHold, error) {
	var l LegalHold
	if err := decode(body, &l); err != nil {
		return nil, err
	}
	if l.XMLName.Local != "LegalHold" {
		return nil, s3err.MalformedXML.With("The root element must be LegalHold.")
	}
	if l.Status != "ON" && l.Status != "OFF" {
		return nil, s3err.MalformedXML.With("The legal hold Status must be ON or OFF.")
	}
	return &l, nil
}

// ParsePublicAccessBlock parses a PublicAccessBlockConfiguration.
func ParsePublicAccessBlock(body []byte) (*PublicAccessBlockConfiguration, error) {
	var p PublicAccessBlockConfiguration
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	if p.XMLName.Local != "PublicAccessBlockConfiguration" {
		return nil, s3err.MalformedXML.With("The root element must be PublicAccessBlockConfiguration.")
	}
	return &p, nil
}

// ParseOwnershipControls parses OwnershipControls: one rule with
// BucketOwnerPreferred, ObjectWriter or BucketOwnerEnforced.
func ParseOwnershipControls(body []byte) (*OwnershipControls, error) {
	var o OwnershipControls
	if err := decode(body, &o); err != nil {
		return nil, err
	}
	if o.XMLName.Local != "OwnershipControls" || len(o.Rules) != 1 {
		return nil, s3err.MalformedXML.With("OwnershipControls needs exactly one Rule.")
	}
	switch o.Rules[0].ObjectOwnership {
	case "BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced":
	default:
		return nil, s3err.MalformedXML.With("ObjectOwnership must be BucketOwnerPreferred, ObjectWriter or BucketOwnerEnforced.")
	}
	return &o, nil
}

// Marshal encodes a response document with the XML header.
func Marshal(v any) ([]byte, error) {
	out, err := xml.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), out...), nil
}
