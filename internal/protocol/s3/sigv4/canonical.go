package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// rawRequestPath is the path exactly as the client sent it (still
// percent-encoded): S3 signs the path as it appears on the wire and never
// normalises it.
func rawRequestPath(r *http.Request) string {
	p := r.RequestURI
	if p == "" || p == "*" {
		p = r.URL.EscapedPath()
	} else {
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		if !strings.HasPrefix(p, "/") {
			// absolute-form request target: scheme://authority/path
			if i := strings.Index(p, "://"); i >= 0 {
				rest := p[i+3:]
				if j := strings.IndexByte(rest, '/'); j >= 0 {
					p = rest[j:]
				} else {
					p = "/"
				}
			}
		}
	}
	if p == "" {
		p = "/"
	}
	return p
}

// canonicalPaths lists the canonical URIs a client may have signed: the
// path as sent (what the AWS SDKs sign for S3), then, if different, the
// decoded path re-encoded with the SigV4 rules, for clients that send some
// characters raw (a "$" or "!") yet sign them encoded.
func canonicalPaths(raw string) []string {
	paths := []string{raw}
	if dec, err := url.PathUnescape(raw); err == nil {
		if enc := uriEncode(dec, false); enc != raw {
			paths = append(paths, enc)
		}
	}
	return paths
}

// uriEncode percent-encodes s the SigV4 way: every byte except the
// unreserved A-Z a-z 0-9 - _ . ~ becomes %XX with upper-case hex; "/" is
// kept when encodeSlash is false.
func uriEncode(s string, encodeSlash bool) string {
	needs := false
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && (s[i] != '/' || encodeSlash) {
			needs = true
			break
		}
	}
	if !needs {
		return s
	}
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// canonicalQuery builds the canonical query string of rawQuery: every
// parameter decoded and re-encoded with the SigV4 rules, sorted by name
// then value. plusIsSpace decides what a literal "+" meant to the client.
// skip names a parameter left out (X-Amz-Signature for presigned URLs).
func canonicalQuery(rawQuery string, plusIsSpace bool, skip string) string {
	if rawQuery == "" {
		return ""
	}
	type pair struct{ k, v string }
	pairs := make([]pair, 0, 8)
	for rest := rawQuery; rest != ""; {
		var p string
		p, rest, _ = strings.Cut(rest, "&")
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		dk, dv := unescapeQuery(k, plusIsSpace), unescapeQuery(v, plusIsSpace)
		if skip != "" && dk == skip {
			continue
		}
		pairs = append(pairs, pair{uriEncode(dk, true), uriEncode(dv, true)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

func unescapeQuery(s string, plusIsSpace bool) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	var d string
	var err error
	if plusIsSpace {
		d, err = url.QueryUnescape(s)
	} else {
		d, err = url.PathUnescape(s)
	}
	if err != nil {
		return s // a malformed escape was signed as sent, if at all
	}
	return d
}

// canonicalQueries lists the canonical query strings a client may have
// signed: a "+" is ambiguous, so both readings are tried.
func canonicalQueries(rawQuery, skip string) []string {
	q := []string{canonicalQuery(rawQuery, false, skip)}
	if strings.Contains(rawQuery, "+") {
		if alt := canonicalQuery(rawQuery, true, skip); alt != q[0] {
			q = append(q, alt)
		}
	}
	return q
}

// signedHeaderValues returns the values of a signed header as the server
// received them. net/http moves Host, and sometimes Content-Length and
// Transfer-Encoding, out of the header map.
func signedHeaderValues(r *http.Request, name string) []string {
	switch name {
	case "host":
		if r.Host != "" {
			return []string{r.Host}
		}
		return []string{r.URL.Host}
	case "content-length":
		if v := r.Header.Values("Content-Length"); len(v) > 0 {
			return v
		}
		if r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		if v := r.Header.Values("Transfer-Encoding"); len(v) > 0 {
			return v
		}
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
	}
	return r.Header.Values(name)
}

// appendCanonicalValue appends the header values trimmed, inner runs of
// spaces collapsed, and joined with commas.
func appendCanonicalValue(b []byte, vals []string) []byte {
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		v = strings.Trim(v, " \t")
		space := false
		for j := 0; j < len(v); j++ {
			c := v[j]
			if c == ' ' {
				if space {
					continue
				}
				space = true
			} else {
				space = false
			}
			b = append(b, c)
		}
	}
	return b
}

// canonicalHeaders is the canonical header block for the signed header
// names (each "name:value\n").
func canonicalHeaders(r *http.Request, names []string) string {
	b := make([]byte, 0, 64*len(names))
	for _, n := range names {
		b = append(b, n...)
		b = append(b, ':')
		b = appendCanonicalValue(b, signedHeaderValues(r, n))
		b = append(b, '\n')
	}
	return string(b)
}

// canonicalRequest assembles the canonical request.
func canonicalRequest(method, path, query, headers, signedHeaders, payload string) string {
	var b strings.Builder
	b.Grow(len(method) + len(path) + len(query) + len(headers) + len(signedHeaders) + len(payload) + 6)
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(path)
	b.WriteByte('\n')
	b.WriteString(query)
	b.WriteByte('\n')
	b.WriteString(headers)
	b.WriteByte('\n')
	b.WriteString(signedHeaders)
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String()
}

func stringToSign(amzDate, scope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return algorithmHMAC + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// signatureCheck describes one request signature to verify.
type signatureCheck struct {
	method        string
	rawPath       string
	rawQuery      string
	skipParam     string // X-Amz-Signature for presigned URLs
	headers       string // canonical header block
	signedHeaders string
	payloads      []string // candidate payload hashes, most likely first
	key           []byte
	amzDate       string
	scope         string
	signature     string // as given, hex
}

// verify tries the canonical forms a client may have signed and reports
// whether one matches; when none does it returns the first form's
// canonical request and string to sign for the error response.
func (c *signatureCheck) verify() (ok bool, firstCanonical, firstSTS string) {
	for _, p := range canonicalPaths(c.rawPath) {
		for _, q := range canonicalQueries(c.rawQuery, c.skipParam) {
			for _, payload := range c.payloads {
				cr := canonicalRequest(c.method, p, q, c.headers, c.signedHeaders, payload)
				sts := stringToSign(c.amzDate, c.scope, cr)
				if firstCanonical == "" {
					firstCanonical, firstSTS = cr, sts
				}
				if signatureMatches(hmacSHA256(c.key, sts), c.signature) {
					return true, "", ""
				}
			}
		}
	}
	return false, firstCanonical, firstSTS
}
