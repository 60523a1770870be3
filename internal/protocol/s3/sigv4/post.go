package sigv4

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// ErrInvalidPolicyDocument is S3's answer to a POST policy that cannot be
// understood.
var ErrInvalidPolicyDocument = &s3err.Error{Code: "InvalidPolicyDocument", Status: 400,
	Message: "The content of the form does not meet the conditions specified in the policy document."}

// maxPolicySize bounds the base64 policy field (S3 caps all form fields
// together at 20 KB; leave room).
const maxPolicySize = 64 << 10

// PostPolicy is a browser POST upload's decoded policy document. The
// handler enforces it: Check with the form fields, CheckLength with the
// file's size.
type PostPolicy struct {
	Expiration time.Time
	Conditions []PostCondition
	// MinLength and MaxLength are the content-length-range bounds of the
	// file; MaxLength is -1 when the policy sets none.
	MinLength, MaxLength int64
}

// PostCondition is one eq or starts-with condition of a policy.
type PostCondition struct {
	Op    string // "eq" or "starts-with"
	Field string // the form field, lower case, without "$": "key", "bucket", "content-type", "x-amz-meta-foo"
	Value string
}

// VerifyPost checks a browser POST upload's policy signature (form fields
// as given) and returns the access key and the decoded policy conditions
// (for the handler to enforce), or an *s3err.Error. A form with no policy
// and no signature fields is anonymous: "", nil, nil. Both the SigV4 form
// (x-amz-algorithm, x-amz-credential, x-amz-date, x-amz-signature) and the
// older AWSAccessKeyId/signature form (HMAC-SHA1 of the policy) are
// accepted; the field names are matched without regard to case.
func (v *Verifier) VerifyPost(ctx context.Context, form map[string]string) (string, *PostPolicy, error) {
	f := foldForm(form)
	policyB64, hasPolicy := f["policy"]
	_, v4 := f["x-amz-algorithm"]
	_, v4sig := f["x-amz-signature"]
	_, v2key := f["awsaccesskeyid"]
	_, v2sig := f["signature"]
	if !hasPolicy {
		if v4 || v4sig || v2key || v2sig || f["x-amz-credential"] != "" {
			return "", nil, missingPostField("policy")
		}
		return "", nil, nil
	}
	if len(policyB64) > maxPolicySize {
		return "", nil, ErrInvalidPolicyDocument.With("The policy is larger than %d bytes.", maxPolicySize)
	}

	var accessKey string
	switch {
	case v4 || v4sig || f["x-amz-credential"] != "":
		for _, k := range []string{"x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"} {
			if _, ok := f[k]; !ok {
				return "", nil, missingPostField(k)
			}
		}
		if f["x-amz-algorithm"] != algorithmHMAC {
			return "", nil, s3err.InvalidArgument.With("x-amz-algorithm only supports \"AWS4-HMAC-SHA256\".").
				WithExtra("ArgumentName", "x-amz-algorithm")
		}
		cred, ok := parseCredential(f["x-amz-credential"])
		if !ok {
			return "", nil, s3err.InvalidArgument.With("x-amz-credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".").
				WithExtra("ArgumentName", "x-amz-credential")
		}
		if err := v.checkScope(cred, func(format string, args ...any) *s3err.Error {
			return s3err.InvalidArgument.With("x-amz-credential: "+format, args...).WithExtra("ArgumentName", "x-amz-credential")
		}); err != nil {
			return "", nil, err
		}
		t, err := time.Parse(iso8601Basic, f["x-amz-date"])
		if err != nil || t.Format(dateStamp) != cred.date {
			return "", nil, s3err.InvalidArgument.With("x-amz-date must be in the ISO8601 Long Format and on the x-amz-credential date.").
				WithExtra("ArgumentName", "x-amz-date")
		}
		if !isHexSignature(f["x-amz-signature"]) {
			return "", nil, s3err.SignatureDoesNotMatch.With("x-amz-signature must be 64 hexadecimal digits.")
		}
		secret, err := v.lookupSecret(ctx, cred.accessKey)
		if err != nil {
			return "", nil, err
		}
		key := v.signingKey(secret, cred.date, cred.region, cred.service)
		if !signatureMatches(hmacSHA256(key, policyB64), f["x-amz-signature"]) {
			return "", nil, s3err.SignatureDoesNotMatch.With("The x-amz-signature does not match the policy.").
				WithExtra("AWSAccessKeyId", cred.accessKey).WithExtra("StringToSign", policyB64)
		}
		accessKey = cred.accessKey
	case v2key || v2sig:
		for _, k := range []string{"awsaccesskeyid", "signature"} {
			if _, ok := f[k]; !ok {
				return "", nil, missingPostField(k)
			}
		}
		secret, err := v.lookupSecret(ctx, f["awsaccesskeyid"])
		if err != nil {
			return "", nil, err
		}
		m := hmac.New(sha1.New, []byte(secret))
		m.Write([]byte(policyB64))
		given, err := base64.StdEncoding.DecodeString(strings.TrimSpace(f["signature"]))
		if err != nil || !hmac.Equal(m.Sum(nil), given) {
			return "", nil, s3err.SignatureDoesNotMatch.With("The signature does not match the policy.").
				WithExtra("AWSAccessKeyId", f["awsaccesskeyid"]).WithExtra("StringToSign", policyB64)
		}
		accessKey = f["awsaccesskeyid"]
	default:
		return "", nil, missingPostField("x-amz-signature")
	}

	policy, err := ParsePostPolicy(policyB64)
	if err != nil {
		return "", nil, err
	}
	if !v.now().Before(policy.Expiration) {
		return "", nil, s3err.AccessDenied.With("Invalid according to Policy: Policy expired.")
	}
	return accessKey, policy, nil
}

func missingPostField(name string) *s3err.Error {
	return s3err.InvalidArgument.With("Bucket POST must contain a field named '%s'. If it is specified, please check the order of the fields.", name).
		WithExtra("ArgumentName", name)
}

func foldForm(form map[string]string) map[string]string {
	f := make(map[string]string, len(form))
	for k, v := range form {
		f[strings.ToLower(k)] = v
	}
	return f
}

// ParsePostPolicy decodes a base64 policy document.
func ParsePostPolicy(policyB64 string) (*PostPolicy, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(policyB64))
	if err != nil {
		return nil, ErrInvalidPolicyDocument.With("Invalid Policy: the policy is not base64: %v.", err)
	}
	// Field names are case-sensitive here: decode into a map rather than a
	// struct, whose matching would ignore case.
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, ErrInvalidPolicyDocument.With("Invalid Policy: the policy is not a JSON object: %v.", err)
	}
	p := &PostPolicy{MaxLength: -1}
	expRaw, ok := doc["expiration"]
	if !ok {
		return nil, ErrInvalidPolicyDocument.With("Invalid Policy: Policy missing expiration.")
	}
	var exp string
	if err := json.Unmarshal(expRaw, &exp); err != nil {
		return nil, ErrInvalidPolicyDocument.With("Invalid Policy: expiration is not a string.")
	}
	p.Expiration, err = time.Parse(time.RFC3339Nano, exp)
	if err != nil {
		return nil, ErrInvalidPolicyDocument.With("Invalid Policy: Invalid 'expiration' value: %q is not an ISO 8601 UTC time.", exp)
	}
	condRaw, ok := doc["conditions"]
	if !ok {
		return nil, ErrInvalidPolicyDocument.With("Invalid Policy: Policy missing conditions.")
	}
	var conds []json.RawMessage
	if err := json.Unmarshal(condRaw, &conds); err != nil {
		return nil, ErrInvalidPolicyDocument.With("Invalid Policy: conditions is not a list.")
	}
	for _, c := range conds {
		if err := p.addCondition(c); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *PostPolicy) addCondition(c json.RawMessage) error {
	c = bytes.TrimSpace(c)
	if len(c) == 0 {
		return ErrInvalidPolicyDocument.With("Invalid Policy: empty condition.")
	}
	switch c[0] {
	case '{':
		var obj map[string]any
		d := json.NewDecoder(bytes.NewReader(c))
		d.UseNumber()
		if err := d.Decode(&obj); err != nil || len(obj) == 0 {
			return ErrInvalidPolicyDocument.With("Invalid Policy: condition %s is not a {\"field\": \"value\"} object.", truncate(c))
		}
		for k, v := range obj {
			s, ok := scalarString(v)
			if !ok {
				return ErrInvalidPolicyDocument.With("Invalid Policy: the value of %q must be a string.", k)
			}
			p.Conditions = append(p.Conditions, PostCondition{Op: "eq", Field: normalizeField(k), Value: s})
		}
		return nil
	case '[':
		var arr []any
		d := json.NewDecoder(bytes.NewReader(c))
		d.UseNumber()
		if err := d.Decode(&arr); err != nil || len(arr) == 0 {
			return ErrInvalidPolicyDocument.With("Invalid Policy: condition %s is not a list.", truncate(c))
		}
		op, ok := arr[0].(string)
		if !ok {
			return ErrInvalidPolicyDocument.With("Invalid Policy: condition %s does not start with an operation.", truncate(c))
		}
		op = strings.ToLower(op)
		switch op {
		case "eq", "starts-with":
			if len(arr) != 3 {
				return ErrInvalidPolicyDocument.With("Invalid Policy: %s takes a field and a value.", op)
			}
			field, ok1 := arr[1].(string)
			value, ok2 := scalarString(arr[2])
			if !ok1 || !ok2 || !strings.HasPrefix(field, "$") || len(field) < 2 {
				return ErrInvalidPolicyDocument.With("Invalid Policy: condition %s must be [%q, \"$field\", \"value\"].", truncate(c), op)
			}
			p.Conditions = append(p.Conditions, PostCondition{Op: op, Field: normalizeField(field), Value: value})
		case "content-length-range":
			if len(arr) != 3 {
				return ErrInvalidPolicyDocument.With("Invalid Policy: content-length-range takes a minimum and a maximum.")
			}
			lo, ok1 := integer(arr[1])
			hi, ok2 := integer(arr[2])
			if !ok1 || !ok2 || lo < 0 || hi < lo {
				return ErrInvalidPolicyDocument.With("Invalid Policy: content-length-range needs 0 <= minimum <= maximum.")
			}
			p.MinLength, p.MaxLength = lo, hi
		default:
			return ErrInvalidPolicyDocument.With("Invalid Policy: unknown condition operation %q.", op)
		}
		return nil
	}
	return ErrInvalidPolicyDocument.With("Invalid Policy: condition %s is neither an object nor a list.", truncate(c))
}

func normalizeField(s string) string {
	return strings.ToLower(strings.TrimPrefix(s, "$"))
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// postExempt are the form fields the policy need not mention.
func postExempt(field string) bool {
	switch field {
	case "policy", "x-amz-signature", "signature", "awsaccesskeyid", "file":
		return true
	}
	if strings.HasPrefix(field, "x-ignore-") {
		return true
	}
	_, isChecksum := checksumFromHeaderName(field)
	return isChecksum
}

// Check enforces the policy's conditions on the form. fields holds every
// form field (names in any case) and also "bucket", the bucket of the
// request, and "key" with ${filename} already replaced. Every field but
// policy, file, the signature fields, x-ignore-* and x-amz-checksum-* must
// be named by a condition. A failure is AccessDenied.
func (p *PostPolicy) Check(fields map[string]string) error {
	f := foldForm(fields)
	named := make(map[string]bool, len(p.Conditions))
	for _, c := range p.Conditions {
		named[c.Field] = true
		got := f[c.Field]
		ok := false
		switch c.Op {
		case "eq":
			ok = got == c.Value
		case "starts-with":
			if c.Field == "content-type" && strings.Contains(got, ",") {
				// a list of content types: each must match
				ok = true
				for _, t := range strings.Split(got, ",") {
					ok = ok && strings.HasPrefix(strings.TrimSpace(t), c.Value)
				}
			} else {
				ok = strings.HasPrefix(got, c.Value)
			}
		}
		if !ok {
			return s3err.AccessDenied.With("Invalid according to Policy: Policy Condition failed: [%q, \"$%s\", %q]", c.Op, c.Field, c.Value)
		}
	}
	var extra []string
	for k := range f {
		if !named[k] && !postExempt(k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return s3err.AccessDenied.With("Invalid according to Policy: Extra input fields: %s", strings.Join(extra, ", "))
	}
	return nil
}

// CheckLength enforces content-length-range on the file's size:
// EntityTooSmall or EntityTooLarge.
func (p *PostPolicy) CheckLength(n int64) error {
	if p.MaxLength < 0 {
		return nil
	}
	if n < p.MinLength {
		return s3err.EntityTooSmall.With("Your proposed upload of %d bytes is smaller than the policy's minimum of %d.", n, p.MinLength).
			WithExtra("ProposedSize", strconv.FormatInt(n, 10)).WithExtra("MinSizeAllowed", strconv.FormatInt(p.MinLength, 10))
	}
	if n > p.MaxLength {
		return s3err.EntityTooLarge.With("Your proposed upload of %d bytes exceeds the policy's maximum of %d.", n, p.MaxLength).
			WithExtra("ProposedSize", strconv.FormatInt(n, 10)).WithExtra("MaxSizeAllowed", strconv.FormatInt(p.MaxLength, 10))
	}
	return nil
}

// String renders a condition as it appears in a policy.
func (c PostCondition) String() string {
	return fmt.Sprintf("[%q, \"$%s\", %q]", c.Op, c.Field, c.Value)
}
