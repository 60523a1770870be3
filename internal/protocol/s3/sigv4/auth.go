package sigv4

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// credential is the Credential component: access key and scope.
type credential struct {
	accessKey string
	date      string // YYYYMMDD
	region    string
	service   string
	terminal  string
}

func (c credential) scope() string {
	return c.date + "/" + c.region + "/" + c.service + "/" + c.terminal
}

// parseCredential splits "AKID/20130524/us-east-1/s3/aws4_request". The
// scope is the last four fields, so an access key may itself contain "/".
func parseCredential(s string) (credential, bool) {
	parts := strings.Split(s, "/")
	if len(parts) < 5 {
		return credential{}, false
	}
	n := len(parts)
	c := credential{
		accessKey: strings.Join(parts[:n-4], "/"),
		date:      parts[n-4],
		region:    parts[n-3],
		service:   parts[n-2],
		terminal:  parts[n-1],
	}
	if c.accessKey == "" || c.region == "" || c.service == "" || c.terminal == "" {
		return credential{}, false
	}
	if _, err := time.Parse(dateStamp, c.date); err != nil || len(c.date) != 8 {
		return credential{}, false
	}
	return c, true
}

// authorization is a parsed AWS4-HMAC-SHA256 Authorization header.
type authorization struct {
	cred          credential
	signedHeaders []string
	signedRaw     string
	signature     string
}

func malformedAuth(format string, args ...any) *s3err.Error {
	return s3err.AuthorizationHeaderMalformed.With("The authorization header is malformed; "+format, args...)
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
// Signature=...". The components may come in any order, separated by commas
// with or without spaces.
func parseAuthorization(h string) (*authorization, error) {
	h = strings.TrimSpace(h)
	scheme, rest, _ := strings.Cut(h, " ")
	switch scheme {
	case algorithmHMAC:
	case "AWS":
		// Signature Version 2: "AWS AccessKeyId:Signature".
		if k, s, ok := strings.Cut(strings.TrimSpace(rest), ":"); !ok || k == "" || s == "" {
			return nil, s3err.InvalidArgument.With("AWS authorization header is invalid. Expected AwsAccessKeyId:signature").
				WithExtra("ArgumentName", "Authorization").WithExtra("ArgumentValue", h)
		}
		return nil, errV4Required
	case "AWS4-ECDSA-P256-SHA256":
		return nil, s3err.NotImplemented.With("Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported; sign with AWS4-HMAC-SHA256.")
	default:
		return nil, s3err.InvalidArgument.With("Unsupported Authorization Type %q; use AWS4-HMAC-SHA256.", scheme).
			WithExtra("ArgumentName", "Authorization").WithExtra("ArgumentValue", h)
	}
	a := &authorization{}
	var haveCred, haveSigned, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, malformedAuth("%q is not of the form Name=Value.", part)
		}
		switch strings.TrimSpace(k) {
		case "Credential":
			if haveCred {
				return nil, malformedAuth("Credential is given twice.")
			}
			c, ok := parseCredential(strings.TrimSpace(v))
			if !ok {
				return nil, malformedAuth("the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
			}
			a.cred, haveCred = c, true
		case "SignedHeaders":
			if haveSigned {
				return nil, malformedAuth("SignedHeaders is given twice.")
			}
			a.signedRaw = strings.TrimSpace(v)
			names, ok := parseSignedHeaders(a.signedRaw)
			if !ok {
				return nil, malformedAuth("SignedHeaders %q is not a list of header names separated by ';'.", a.signedRaw)
			}
			a.signedHeaders, haveSigned = names, true
		case "Signature":
			if haveSig {
				return nil, malformedAuth("Signature is given twice.")
			}
			a.signature, haveSig = strings.TrimSpace(v), true
			if !isHexSignature(a.signature) {
				return nil, malformedAuth("the Signature must be 64 hexadecimal digits.")
			}
		default:
			return nil, malformedAuth("unknown component %q.", k)
		}
	}
	switch {
	case !haveCred:
		return nil, malformedAuth("the Credential is missing.")
	case !haveSigned:
		return nil, malformedAuth("SignedHeaders is missing.")
	case !haveSig:
		return nil, malformedAuth("the Signature is missing.")
	}
	return a, nil
}

func parseSignedHeaders(s string) ([]string, bool) {
	if s == "" {
		return nil, false
	}
	names := strings.Split(s, ";")
	for i, n := range names {
		if n == "" || strings.ContainsAny(n, " \t:") {
			return nil, false
		}
		names[i] = strings.ToLower(n)
	}
	return names, true
}

func containsName(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

// checkScope compares the credential scope with the gateway's.
func (v *Verifier) checkScope(c credential, malformed func(format string, args ...any) *s3err.Error) error {
	if c.terminal != scopeTerminal {
		return malformed("the Credential must end with %q, not %q.", scopeTerminal, c.terminal)
	}
	if c.service != v.serviceName() {
		return malformed("incorrect service %q. This endpoint belongs to %q.", c.service, v.serviceName())
	}
	if v.Region != "" && c.region != v.Region {
		return malformed("the region '%s' is wrong; expecting '%s'", c.region, v.Region).WithExtra("Region", v.Region)
	}
	return nil
}

// requestTime reads x-amz-date, or Date when x-amz-date is absent, and
// returns the time with its ISO 8601 basic form used in the string to sign.
func requestTime(h http.Header) (t time.Time, iso, header string, err error) {
	if v, ok := firstHeader(h, "X-Amz-Date"); ok {
		t, perr := time.Parse(iso8601Basic, strings.TrimSpace(v))
		if perr != nil {
			return time.Time{}, "", "", s3err.AccessDenied.With("AWS authentication requires a valid Date or x-amz-date header; x-amz-date %q is not of the form 20060102T150405Z.", v)
		}
		return t, t.Format(iso8601Basic), "x-amz-date", nil
	}
	if v, ok := firstHeader(h, "Date"); ok {
		t, perr := http.ParseTime(strings.TrimSpace(v))
		if perr != nil {
			return time.Time{}, "", "", s3err.AccessDenied.With("AWS authentication requires a valid Date or x-amz-date header; Date %q cannot be parsed.", v)
		}
		t = t.UTC()
		return t, t.Format(iso8601Basic), "date", nil
	}
	return time.Time{}, "", "", s3err.AccessDenied.With("AWS authentication requires a valid Date or x-amz-date header.")
}

// verifyHeader authenticates an Authorization-header request.
func (v *Verifier) verifyHeader(r *http.Request, auth string, mode payloadMode, modeValue string) (*signing, error) {
	a, err := parseAuthorization(auth)
	if err != nil {
		return nil, err
	}
	if err := v.checkScope(a.cred, malformedAuth); err != nil {
		return nil, err
	}
	t, amzDate, dateHeader, err := requestTime(r.Header)
	if err != nil {
		return nil, err
	}
	if a.cred.date != t.Format(dateStamp) {
		return nil, malformedAuth("Invalid credential date %q. Date is not the same as X-Amz-Date %q.", a.cred.date, amzDate)
	}
	if !containsName(a.signedHeaders, "host") {
		return nil, malformedAuth("SignedHeaders must include host.")
	}
	// The time and the payload promise must be covered by the signature,
	// or a captured request could be replayed with new ones.
	var unsigned []string
	if !containsName(a.signedHeaders, dateHeader) {
		unsigned = append(unsigned, dateHeader)
	}
	if mode != payloadAbsent && !containsName(a.signedHeaders, "x-amz-content-sha256") {
		unsigned = append(unsigned, "x-amz-content-sha256")
	}
	if len(unsigned) > 0 {
		return nil, s3err.AccessDenied.With("There were headers present in the request which were not signed").
			WithExtra("HeadersNotSigned", strings.Join(unsigned, ", "))
	}

	var payloads []string
	switch {
	case mode != payloadAbsent:
		payloads = []string{modeValue}
	case bodyless(r):
		// Clients that do not speak S3's dialect hash the empty body; a few
		// sign UNSIGNED-PAYLOAD without sending the header.
		payloads = []string{emptySHA256, unsignedPayload}
	default:
		return nil, s3err.InvalidRequest.With("Missing required header for this request: x-amz-content-sha256").
			WithExtra("MissingHeaderName", "x-amz-content-sha256")
	}

	secret, err := v.lookupSecret(r.Context(), a.cred.accessKey)
	if err != nil {
		return nil, err
	}
	if err := v.checkSkew(t, headerOr(r.Header, "X-Amz-Date", "Date")); err != nil {
		return nil, err
	}
	key := v.signingKey(secret, a.cred.date, a.cred.region, a.cred.service)
	check := signatureCheck{
		method:        r.Method,
		rawPath:       rawRequestPath(r),
		rawQuery:      r.URL.RawQuery,
		headers:       canonicalHeaders(r, a.signedHeaders),
		signedHeaders: a.signedRaw,
		payloads:      payloads,
		key:           key,
		amzDate:       amzDate,
		scope:         a.cred.scope(),
		signature:     a.signature,
	}
	if ok, cr, sts := check.verify(); !ok {
		return nil, signatureMismatch(a.cred.accessKey, a.signature, cr, sts)
	}
	return &signing{
		accessKey: a.cred.accessKey,
		key:       key,
		amzDate:   amzDate,
		scope:     a.cred.scope(),
		signature: strings.ToLower(a.signature),
	}, nil
}

func headerOr(h http.Header, a, b string) string {
	if v, ok := firstHeader(h, a); ok {
		return v
	}
	return h.Get(b)
}

func bodyless(r *http.Request) bool {
	return r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
}

func signatureMismatch(accessKey, given, canonical, sts string) *s3err.Error {
	return s3err.SignatureDoesNotMatch.
		WithExtra("AWSAccessKeyId", accessKey).
		WithExtra("SignatureProvided", given).
		WithExtra("StringToSign", sts).
		WithExtra("CanonicalRequest", canonical)
}

func malformedQuery(format string, args ...any) *s3err.Error {
	return s3err.AuthorizationQueryParamsError.With(format, args...)
}

// verifyPresigned authenticates a request signed in its query string.
func (v *Verifier) verifyPresigned(r *http.Request, mode payloadMode, modeValue string) (*signing, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, malformedQuery("The query string cannot be parsed: %v.", err)
	}
	get := func(k string) (string, bool) {
		vals, ok := q[k]
		if !ok || len(vals) == 0 {
			return "", false
		}
		if len(vals) > 1 {
			return "", false
		}
		return vals[0], true
	}
	var missing []string
	vals := map[string]string{}
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires"} {
		val, ok := get(k)
		if !ok {
			missing = append(missing, k)
		}
		vals[k] = val
	}
	if len(missing) > 0 {
		return nil, malformedQuery("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "+
			"X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters, each once; %s missing or repeated.",
			strings.Join(missing, ", "))
	}
	if vals["X-Amz-Algorithm"] != algorithmHMAC {
		return nil, malformedQuery("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\".")
	}
	cred, ok := parseCredential(vals["X-Amz-Credential"])
	if !ok {
		return nil, malformedQuery("Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; " +
			"expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
	}
	if err := v.checkScope(cred, func(format string, args ...any) *s3err.Error {
		return malformedQuery("Error parsing the X-Amz-Credential parameter; "+format, args...)
	}); err != nil {
		return nil, err
	}
	t, err := time.Parse(iso8601Basic, vals["X-Amz-Date"])
	if err != nil {
		return nil, malformedQuery("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\".")
	}
	if cred.date != t.Format(dateStamp) {
		return nil, malformedQuery("Invalid credential date %q. Date is not the same as X-Amz-Date %q.", cred.date, vals["X-Amz-Date"])
	}
	expires, err := strconv.ParseInt(vals["X-Amz-Expires"], 10, 64)
	if err != nil {
		return nil, malformedQuery("X-Amz-Expires should be a number.")
	}
	signedHeaders, ok := parseSignedHeaders(vals["X-Amz-SignedHeaders"])
	if !ok || !containsName(signedHeaders, "host") {
		return nil, malformedQuery("X-Amz-SignedHeaders must be a list of header names separated by ';' that includes host.")
	}
	if !isHexSignature(vals["X-Amz-Signature"]) {
		return nil, malformedQuery("X-Amz-Signature must be 64 hexadecimal digits.")
	}
	if mode.signedChunks() {
		return nil, s3err.InvalidRequest.With("%s needs the Authorization header to carry the seed signature; "+
			"presigned URLs take UNSIGNED-PAYLOAD or a SHA-256.", modeValue)
	}

	secret, err := v.lookupSecret(r.Context(), cred.accessKey)
	if err != nil {
		return nil, err
	}
	// Expiry is checked after the key exists and before the signature, as
	// S3 does: an expired link says so even when it was tampered with.
	now := v.now()
	switch {
	case expires < 0:
		return nil, s3err.AccessDenied.With("Request has expired: X-Amz-Expires must be non-negative.").
			WithExtra("X-Amz-Expires", vals["X-Amz-Expires"])
	case expires > int64(MaxPresignExpiry/time.Second):
		return nil, s3err.AccessDenied.With("X-Amz-Expires must be less than a week (in seconds) that is 604800.").
			WithExtra("X-Amz-Expires", vals["X-Amz-Expires"])
	case t.After(now.Add(v.maxSkew())):
		return nil, s3err.AccessDenied.With("Request is not valid yet.").
			WithExtra("X-Amz-Date", vals["X-Amz-Date"]).
			WithExtra("ServerTime", now.UTC().Format(time.RFC3339))
	case !now.Before(t.Add(time.Duration(expires) * time.Second)):
		return nil, s3err.AccessDenied.With("Request has expired").
			WithExtra("X-Amz-Expires", vals["X-Amz-Expires"]).
			WithExtra("Expires", t.Add(time.Duration(expires)*time.Second).UTC().Format(time.RFC3339)).
			WithExtra("ServerTime", now.UTC().Format(time.RFC3339))
	}

	// The payload is UNSIGNED-PAYLOAD unless the URL itself names a hash;
	// a few clients sign the x-amz-content-sha256 header's value instead.
	payloads := []string{unsignedPayload}
	if p, ok := get("X-Amz-Content-Sha256"); ok {
		payloads = []string{p}
	}
	if mode != payloadAbsent && modeValue != payloads[0] {
		payloads = append(payloads, modeValue)
	}
	key := v.signingKey(secret, cred.date, cred.region, cred.service)
	check := signatureCheck{
		method:        r.Method,
		rawPath:       rawRequestPath(r),
		rawQuery:      r.URL.RawQuery,
		skipParam:     "X-Amz-Signature",
		headers:       canonicalHeaders(r, signedHeaders),
		signedHeaders: vals["X-Amz-SignedHeaders"],
		payloads:      payloads,
		key:           key,
		amzDate:       vals["X-Amz-Date"],
		scope:         cred.scope(),
		signature:     vals["X-Amz-Signature"],
	}
	if ok, cr, sts := check.verify(); !ok {
		return nil, signatureMismatch(cred.accessKey, vals["X-Amz-Signature"], cr, sts)
	}
	return &signing{
		accessKey: cred.accessKey,
		key:       key,
		amzDate:   vals["X-Amz-Date"],
		scope:     cred.scope(),
		signature: strings.ToLower(vals["X-Amz-Signature"]),
		presigned: true,
	}, nil
}
