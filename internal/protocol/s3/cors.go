package s3

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
)

// errCORSForbidden is a CORS request no rule of the bucket allows.
var errCORSForbidden = &s3err.Error{Code: "AccessForbidden", Status: 403, Message: "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."}

func (b *bucket) corsRules() []s3xml.CORSRule {
	raw, ok := b.x[xCORS]
	if !ok {
		return nil
	}
	var c s3xml.CORSConfiguration
	if xml.Unmarshal(raw, &c) != nil {
		return nil
	}
	return c.Rules
}

// matchCORS finds the first rule allowing origin, method and headers.
func matchCORS(rules []s3xml.CORSRule, origin, method string, headers []string) *s3xml.CORSRule {
	for i := range rules {
		r := &rules[i]
		if !anyGlob(r.AllowedOrigins, origin, false) {
			continue
		}
		ok := false
		for _, m := range r.AllowedMethods {
			if m == method {
				ok = true
			}
		}
		if !ok {
			continue
		}
		for _, h := range headers {
			if !anyGlob(r.AllowedHeaders, strings.ToLower(h), true) {
				ok = false
				break
			}
		}
		if ok {
			return r
		}
	}
	return nil
}

// corsHeaders writes the CORS response headers of a matched rule.
func corsHeaders(h http.Header, r *s3xml.CORSRule, origin string, requested []string) {
	allow := origin
	for _, o := range r.AllowedOrigins {
		if o == "*" {
			allow = "*"
		}
	}
	h.Set("Access-Control-Allow-Origin", allow)
	if allow != "*" {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Methods", strings.Join(r.AllowedMethods, ", "))
	if len(requested) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(requested, ", "))
	}
	if len(r.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(r.ExposeHeaders, ", "))
	}
	if r.MaxAgeSeconds != nil {
		h.Set("Access-Control-Max-Age", strconv.Itoa(*r.MaxAgeSeconds))
	}
}

// applyCORS adds CORS headers to an actual (not preflight) request from a
// browser, when a rule of the bucket allows it.
func (q *request) applyCORS(b *bucket) {
	origin := q.r.Header.Get("Origin")
	if origin == "" || q.corsDone {
		return
	}
	q.corsDone = true
	method := q.r.Header.Get("Access-Control-Request-Method")
	if method == "" {
		method = q.r.Method
	}
	if r := matchCORS(b.corsRules(), origin, method, nil); r != nil {
		corsHeaders(q.w.Header(), r, origin, nil)
	}
}

// preflight answers a CORS preflight (OPTIONS) request. It needs no
// authentication: browsers send none.
func (q *request) preflight() error {
	origin := q.r.Header.Get("Origin")
	method := q.r.Header.Get("Access-Control-Request-Method")
	if origin == "" || method == "" {
		return s3err.InvalidRequest.With("Insufficient information. Origin request header needed.")
	}
	if q.bucket == "" {
		return errCORSForbidden
	}
	b, err := q.s.loadBucket(q.ctx, q.bucket)
	if err != nil {
		return err
	}
	var requested []string
	for _, h := range q.r.Header.Values("Access-Control-Request-Headers") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				requested = append(requested, strings.ToLower(p))
			}
		}
	}
	r := matchCORS(b.corsRules(), origin, method, requested)
	if r == nil {
		return errCORSForbidden
	}
	corsHeaders(q.w.Header(), r, origin, requested)
	return q.reply(200)
}
