package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// Signature Version 2 ("AWS AccessKeyId:Signature"), accepted in the
// Authorization header only when Verifier.AllowSignatureV2 is set. AWS has
// deprecated it, but older tools and the ceph/s3-tests suite still sign
// with it. Only path-style requests verify: the string to sign names the
// bucket, which a virtual-hosted request carries in a Host this package
// cannot interpret.

// v2SubResources are the query parameters that the V2 string to sign
// includes.
var v2SubResources = map[string]bool{
	"accelerate": true, "acl": true, "analytics": true, "cors": true, "delete": true, "encryption": true,
	"intelligent-tiering": true, "inventory": true, "legal-hold": true, "lifecycle": true, "location": true,
	"logging": true, "metrics": true, "notification": true, "object-lock": true, "ownershipControls": true,
	"partNumber": true, "policy": true, "policyStatus": true, "publicAccessBlock": true, "replication": true,
	"requestPayment": true, "response-cache-control": true, "response-content-disposition": true,
	"response-content-encoding": true, "response-content-language": true, "response-content-type": true,
	"response-expires": true, "restore": true, "retention": true, "select": true, "select-type": true,
	"tagging": true, "torrent": true, "uploadId": true, "uploads": true, "versionId": true, "versioning": true,
	"versions": true, "website": true, "attributes": true,
}

// epoch bounds the dates a V2 request may carry; earlier ones are invalid.
var epoch = time.Unix(0, 0)

// verifyV2 authenticates "AWS AccessKeyId:Signature".
func (v *Verifier) verifyV2(r *http.Request, accessKey, signature string) (*signing, error) {
	date, err := v2RequestTime(r.Header)
	if err != nil {
		return nil, err
	}
	secret, err := v.lookupSecret(r.Context(), accessKey)
	if err != nil {
		return nil, err
	}
	if err := v.checkSkew(date, headerOr(r.Header, "X-Amz-Date", "Date")); err != nil {
		return nil, err
	}
	given, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return nil, s3err.SignatureDoesNotMatch.With("The signature is not base64.").WithExtra("AWSAccessKeyId", accessKey)
	}
	mac := hmac.New(sha1.New, []byte(secret))
	var first string
	for _, sts := range v2StringsToSign(r) {
		mac.Reset()
		mac.Write([]byte(sts))
		if hmac.Equal(mac.Sum(nil), given) {
			return &signing{accessKey: accessKey}, nil
		}
		if first == "" {
			first = sts
		}
	}
	return nil, s3err.SignatureDoesNotMatch.
		WithExtra("AWSAccessKeyId", accessKey).
		WithExtra("SignatureProvided", signature).
		WithExtra("StringToSign", first)
}

// v2RequestTime reads x-amz-date, else Date (both RFC 1123).
func v2RequestTime(h http.Header) (time.Time, error) {
	name := "X-Amz-Date"
	v, ok := firstHeader(h, name)
	if !ok {
		name = "Date"
		if v, ok = firstHeader(h, name); !ok {
			return time.Time{}, s3err.AccessDenied.With("AWS authentication requires a valid Date or x-amz-date header.")
		}
	}
	t, err := http.ParseTime(strings.TrimSpace(v))
	if err != nil || t.Before(epoch) {
		return time.Time{}, s3err.AccessDenied.With("AWS authentication requires a valid Date or x-amz-date header; %s %q is not a valid date.", name, v)
	}
	return t, nil
}

// v2StringsToSign returns the string to sign, and the variant some
// clients sign: with the Date line filled even though x-amz-date is sent.
func v2StringsToSign(r *http.Request) []string {
	var amz []string
	vals := map[string][]string{}
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") {
			if _, seen := vals[lk]; !seen {
				amz = append(amz, lk)
			}
			vals[lk] = append(vals[lk], vs...)
		}
	}
	sort.Strings(amz)
	var amzBlock strings.Builder
	for _, k := range amz {
		amzBlock.WriteString(k)
		amzBlock.WriteByte(':')
		amzBlock.Write(appendCanonicalValue(nil, vals[k]))
		amzBlock.WriteByte('\n')
	}
	resource := v2Resource(r)
	head := r.Method + "\n" + strings.TrimSpace(r.Header.Get("Content-Md5")) + "\n" + strings.TrimSpace(r.Header.Get("Content-Type")) + "\n"
	date := strings.TrimSpace(r.Header.Get("Date"))
	if _, amzDate := vals["x-amz-date"]; amzDate {
		out := []string{head + "\n" + amzBlock.String() + resource}
		if date != "" {
			out = append(out, head+date+"\n"+amzBlock.String()+resource)
		}
		return out
	}
	return []string{head + date + "\n" + amzBlock.String() + resource}
}

// v2Resource is the path as sent plus the sub-resources, sorted, with
// their values decoded.
func v2Resource(r *http.Request) string {
	res := rawRequestPath(r)
	var subs []string
	for _, p := range strings.Split(r.URL.RawQuery, "&") {
		if p == "" {
			continue
		}
		k, val, hasVal := strings.Cut(p, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if !v2SubResources[k] {
			continue
		}
		if hasVal {
			if dv, err := url.QueryUnescape(val); err == nil {
				val = dv
			}
			subs = append(subs, k+"="+val)
		} else {
			subs = append(subs, k)
		}
	}
	if len(subs) == 0 {
		return res
	}
	sort.SliceStable(subs, func(i, j int) bool {
		a, _, _ := strings.Cut(subs[i], "=")
		b, _, _ := strings.Cut(subs[j], "=")
		return a < b
	})
	return res + "?" + strings.Join(subs, "&")
}
