package s3

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// errMalformedPolicy is a bucket policy that cannot be used.
var errMalformedPolicy = &s3err.Error{Code: "MalformedPolicy", Status: 400, Message: "Policies must be valid JSON and the first byte must be '{'"}

// policy is a parsed bucket policy.
type policy struct {
	Version   string      `json:"Version"`
	ID        string      `json:"Id,omitempty"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid          string                    `json:"Sid,omitempty"`
	Effect       string                    `json:"Effect"`
	Principal    json.RawMessage           `json:"Principal,omitempty"`
	NotPrincipal json.RawMessage           `json:"NotPrincipal,omitempty"`
	Action       stringOrList              `json:"Action,omitempty"`
	NotAction    stringOrList              `json:"NotAction,omitempty"`
	Resource     stringOrList              `json:"Resource,omitempty"`
	NotResource  stringOrList              `json:"NotResource,omitempty"`
	Condition    map[string]map[string]any `json:"Condition,omitempty"`
	principals   []string                  // parsed Principal: "*" or ARNs / names
	notPrincs    []string                  // parsed NotPrincipal
	conds        map[string]map[string][]string
}

// stringOrList is a JSON string or list of strings.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// parsePrincipal accepts "*", {"AWS": "*" | "arn" | ["arn", ...]} and
// {"CanonicalUser": ...}.
func parsePrincipal(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if s != "*" {
			return nil, fmt.Errorf("a principal string must be \"*\"")
		}
		return []string{"*"}, nil
	}
	var m map[string]stringOrList
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	var out []string
	for kind, list := range m {
		switch kind {
		case "AWS", "CanonicalUser":
			out = append(out, list...)
		default:
			return nil, fmt.Errorf("unsupported principal type %q", kind)
		}
	}
	return out, nil
}

// parsePolicy parses and checks a bucket policy for bucket.
func parsePolicy(doc []byte, bucket string) (*policy, error) {
	doc = bytes.TrimSpace(doc)
	if len(doc) == 0 || doc[0] != '{' {
		return nil, errMalformedPolicy
	}
	var p policy
	if err := json.Unmarshal(doc, &p); err != nil {
		return nil, errMalformedPolicy.With("The policy is not valid JSON: %v", err)
	}
	if len(p.Statement) == 0 {
		return nil, errMalformedPolicy.With("Missing required field Statement")
	}
	for i := range p.Statement {
		st := &p.Statement[i]
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return nil, errMalformedPolicy.With("Invalid effect: %q", st.Effect)
		}
		var err error
		if st.principals, err = parsePrincipal(st.Principal); err != nil {
			return nil, errMalformedPolicy.With("Invalid principal in policy: %v", err)
		}
		if st.notPrincs, err = parsePrincipal(st.NotPrincipal); err != nil {
			return nil, errMalformedPolicy.With("Invalid principal in policy: %v", err)
		}
		if len(st.notPrincs) > 0 && st.Effect == "Allow" {
			return nil, errMalformedPolicy.With("NotPrincipal is only supported with the Deny effect")
		}
		if len(st.principals) == 0 && len(st.notPrincs) == 0 {
			return nil, errMalformedPolicy.With("Missing required field Principal")
		}
		if len(st.Action) == 0 && len(st.NotAction) == 0 {
			return nil, errMalformedPolicy.With("Missing required field Action")
		}
		for _, a := range append(append([]string(nil), st.Action...), st.NotAction...) {
			if a != "*" && !strings.HasPrefix(a, "s3:") {
				return nil, errMalformedPolicy.With("Policy has invalid action %q", a)
			}
		}
		if len(st.Resource) == 0 && len(st.NotResource) == 0 {
			return nil, errMalformedPolicy.With("Missing required field Resource")
		}
		for _, r := range append(append([]string(nil), st.Resource...), st.NotResource...) {
			rest, ok := strings.CutPrefix(r, "arn:aws:s3:::")
			if r == "*" {
				continue
			}
			b, _, _ := strings.Cut(rest, "/")
			if !ok || !globMatch(b, bucket) {
				return nil, errMalformedPolicy.With("Policy has invalid resource %q", r)
			}
		}
		st.conds = map[string]map[string][]string{}
		for op, kv := range st.Condition {
			if !knownConditionOp(op) {
				return nil, errMalformedPolicy.With("Invalid Condition type %q", op)
			}
			st.conds[op] = map[string][]string{}
			for k, v := range kv {
				vals, err := conditionValues(v)
				if err != nil {
					return nil, errMalformedPolicy.With("Invalid Condition value for %s %s", op, k)
				}
				st.conds[op][strings.ToLower(k)] = vals
			}
		}
	}
	return &p, nil
}

func conditionValues(v any) ([]string, error) {
	switch t := v.(type) {
	case string:
		return []string{t}, nil
	case bool:
		return []string{strconv.FormatBool(t)}, nil
	case float64:
		return []string{strconv.FormatFloat(t, 'f', -1, 64)}, nil
	case []any:
		var out []string
		for _, e := range t {
			vs, err := conditionValues(e)
			if err != nil {
				return nil, err
			}
			out = append(out, vs...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value %v", v)
}

func baseConditionOp(op string) string {
	op = strings.TrimPrefix(strings.TrimPrefix(op, "ForAnyValue:"), "ForAllValues:")
	return strings.TrimSuffix(op, "IfExists")
}

func knownConditionOp(op string) bool {
	switch baseConditionOp(op) {
	case "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
		"StringLike", "StringNotLike", "IpAddress", "NotIpAddress", "Bool", "Null",
		"NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
		"NumericGreaterThan", "NumericGreaterThanEquals", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike",
		"DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals":
		return true
	}
	return false
}

// public reports whether the policy allows anyone (principal "*")
// without conditions.
func (p *policy) public() bool {
	if p == nil {
		return false
	}
	for _, st := range p.Statement {
		if st.Effect != "Allow" || len(st.conds) > 0 {
			continue
		}
		for _, pr := range st.principals {
			if pr == "*" {
				return true
			}
		}
	}
	return false
}

// policyRequest is what a policy is evaluated against.
type policyRequest struct {
	anonymous bool
	user      string // user name of an authenticated caller
	action    string // "s3:GetObject"
	resource  string // "arn:aws:s3:::bucket" or "arn:aws:s3:::bucket/key"
	// cond returns the values of a condition key (lower-case) and whether
	// the request has it.
	cond func(key string) ([]string, bool)
}

// decision is a policy's verdict.
type decision int

const (
	noDecision decision = iota
	allowed
	denied
)

// evaluate returns Deny if a Deny statement matches, else Allow if an Allow
// statement matches, else noDecision.
func (p *policy) evaluate(r *policyRequest) decision {
	if p == nil {
		return noDecision
	}
	out := noDecision
	for i := range p.Statement {
		st := &p.Statement[i]
		if !st.matches(r) {
			continue
		}
		if st.Effect == "Deny" {
			return denied
		}
		out = allowed
	}
	return out
}

func (st *statement) matches(r *policyRequest) bool {
	if len(st.principals) > 0 && !principalMatch(st.principals, r) {
		return false
	}
	if len(st.notPrincs) > 0 && principalMatch(st.notPrincs, r) {
		return false
	}
	if len(st.Action) > 0 && !anyGlob(st.Action, r.action, true) {
		return false
	}
	if len(st.NotAction) > 0 && anyGlob(st.NotAction, r.action, true) {
		return false
	}
	if len(st.Resource) > 0 && !anyGlob(st.Resource, r.resource, false) {
		return false
	}
	if len(st.NotResource) > 0 && anyGlob(st.NotResource, r.resource, false) {
		return false
	}
	for op, kv := range st.conds {
		for key, want := range kv {
			have, ok := r.cond(key)
			if !conditionHolds(op, have, ok, want) {
				return false
			}
		}
	}
	return true
}

func principalMatch(list []string, r *policyRequest) bool {
	for _, p := range list {
		if p == "*" {
			return true
		}
		if r.anonymous {
			continue
		}
		name := p
		if strings.HasPrefix(p, "arn:aws:iam::") {
			_, after, ok := strings.Cut(p, ":user/")
			if !ok {
				if strings.HasSuffix(p, ":root") {
					return true // the account: every user of this gateway
				}
				continue
			}
			name = after[strings.LastIndexByte(after, '/')+1:]
		}
		if name == r.user {
			return true
		}
	}
	return false
}

func anyGlob(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			if globMatch(strings.ToLower(p), strings.ToLower(s)) {
				return true
			}
		} else if globMatch(p, s) {
			return true
		}
	}
	return false
}

// globMatch matches s against a pattern with * (any run) and ? (one
// character), as IAM does.
func globMatch(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globMatch(pattern, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		}
	}
	return s == ""
}

func conditionHolds(op string, have []string, present bool, want []string) bool {
	base := baseConditionOp(op)
	if !present {
		switch {
		case strings.HasSuffix(op, "IfExists"):
			return true
		case base == "Null":
			return len(want) > 0 && want[0] == "true"
		case strings.Contains(base, "Not"):
			return true
		}
		return false
	}
	if base == "Null" {
		return len(want) > 0 && want[0] == "false"
	}
	any := func(f func(h, w string) bool) bool {
		for _, h := range have {
			for _, w := range want {
				if f(h, w) {
					return true
				}
			}
		}
		return false
	}
	num := func(f func(h, w float64) bool) bool {
		return any(func(h, w string) bool {
			a, err1 := strconv.ParseFloat(h, 64)
			b, err2 := strconv.ParseFloat(w, 64)
			return err1 == nil && err2 == nil && f(a, b)
		})
	}
	switch base {
	case "StringEquals", "ArnEquals":
		return any(func(h, w string) bool { return h == w })
	case "StringNotEquals", "ArnNotEquals":
		return !any(func(h, w string) bool { return h == w })
	case "StringEqualsIgnoreCase":
		return any(strings.EqualFold)
	case "StringNotEqualsIgnoreCase":
		return !any(strings.EqualFold)
	case "StringLike", "ArnLike":
		return any(func(h, w string) bool { return globMatch(w, h) })
	case "StringNotLike", "ArnNotLike":
		return !any(func(h, w string) bool { return globMatch(w, h) })
	case "IpAddress":
		return any(ipIn)
	case "NotIpAddress":
		return !any(ipIn)
	case "Bool":
		return any(strings.EqualFold)
	case "NumericEquals":
		return num(func(h, w float64) bool { return h == w })
	case "NumericNotEquals":
		return !num(func(h, w float64) bool { return h == w })
	case "NumericLessThan":
		return num(func(h, w float64) bool { return h < w })
	case "NumericLessThanEquals":
		return num(func(h, w float64) bool { return h <= w })
	case "NumericGreaterThan":
		return num(func(h, w float64) bool { return h > w })
	case "NumericGreaterThanEquals":
		return num(func(h, w float64) bool { return h >= w })
	}
	// Date conditions are accepted in policies but never hold: the
	// gateway has no condition keys of that type.
	return false
}

func ipIn(ip, cidr string) bool {
	addr := net.ParseIP(ip)
	if addr == nil {
		return false
	}
	if !strings.Contains(cidr, "/") {
		other := net.ParseIP(cidr)
		return other != nil && other.Equal(addr)
	}
	_, n, err := net.ParseCIDR(cidr)
	return err == nil && n.Contains(addr)
}

// resourceARN is the policy resource of a bucket or an object.
func resourceARN(bucket, key string) string {
	if key == "" {
		return "arn:aws:s3:::" + bucket
	}
	return "arn:aws:s3:::" + path.Join(bucket, "") + "/" + key
}
