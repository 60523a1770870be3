package s3

import (
	"math/rand"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
)

type listResultXML struct {
	IsTruncated           bool
	NextMarker            string
	NextContinuationToken string
	KeyCount              int
	Contents              []struct {
		Key   string
		ETag  string
		Size  int64
		Owner *struct{ ID string }
	}
	CommonPrefixes []struct{ Prefix string }
}

// reference lists keys the way S3 defines it: sorted, after the start,
// with the prefix, common prefixes rolled up.
func reference(keys []string, prefix, delim string) []string {
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	var out []string
	seen := map[string]bool{}
	for _, k := range sorted {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				cp := k[:len(prefix)+i+len(delim)]
				if !seen[cp] {
					seen[cp] = true
					out = append(out, "P:"+cp)
				}
				continue
			}
		}
		out = append(out, "K:"+k)
	}
	return out
}

// listAll pages through a listing and returns keys and prefixes in order.
func (e *env) listAll(bucket, prefix, delim string, max int, v2 bool) []string {
	e.t.Helper()
	var out []string
	token, marker := "", ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			e.t.Fatal("listing does not end")
		}
		q := url.Values{"prefix": {prefix}, "delimiter": {delim}, "max-keys": {strconv.Itoa(max)}}
		if v2 {
			q.Set("list-type", "2")
			if token != "" {
				q.Set("continuation-token", token)
			}
		} else if marker != "" {
			q.Set("marker", marker)
		}
		var res listResultXML
		decodeXML(e.t, e.ok(call{method: "GET", path: "/" + bucket + "?" + q.Encode(), user: "alice"}, 200), &res)
		var page []string
		for _, c := range res.Contents {
			page = append(page, "K:"+c.Key)
		}
		for _, p := range res.CommonPrefixes {
			page = append(page, "P:"+p.Prefix)
		}
		sort.Slice(page, func(i, j int) bool { return page[i][2:] < page[j][2:] })
		if len(page) > max {
			e.t.Fatalf("page of %d items for max-keys %d", len(page), max)
		}
		out = append(out, page...)
		if !res.IsTruncated {
			return out
		}
		if len(page) == 0 {
			e.t.Fatal("empty truncated page")
		}
		token = res.NextContinuationToken
		marker = res.NextMarker
		if marker == "" {
			marker = page[len(page)-1][2:]
		}
	}
}

// TestListingOrder checks listings against the definition on keys chosen
// to exercise the order of "/" among its neighbours ('-' and '.' sort
// before it, '0' after).
func TestListingOrder(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	keys := []string{"x", "x-y", "x.y", "x0", "x/a", "x/b/c", "x/b-c", "x/b.d/e", "x-/q", "x-z/z", "a b", "a-", "a/", "a/in", "ab/", "ab/c", "z/z/z/z"}
	// "x" is a file and "x/a" needs a directory "x": a key conflict.
	keys = keys[1:]
	for _, k := range keys {
		if strings.HasSuffix(k, "/") {
			e.ok(call{method: "PUT", path: "/bkt/" + url.PathEscape(k), user: "alice"}, 200)
		} else {
			e.put("alice", "/bkt/"+url.PathEscape(k), k)
		}
	}
	for _, tt := range []struct{ prefix, delim string }{
		{"", ""}, {"", "/"}, {"x", ""}, {"x", "/"}, {"x/", "/"}, {"x/b", ""}, {"x-", "/"}, {"a", "/"}, {"", "-"}, {"x", "b"}, {"nothing", ""},
	} {
		want := reference(keys, tt.prefix, tt.delim)
		for _, max := range []int{1, 2, 3, 1000} {
			for _, v2 := range []bool{false, true} {
				got := e.listAll("bkt", tt.prefix, tt.delim, max, v2)
				if strings.Join(got, "|") != strings.Join(want, "|") {
					t.Fatalf("prefix %q delimiter %q max %d v2 %v:\n got %v\nwant %v", tt.prefix, tt.delim, max, v2, got, want)
				}
			}
		}
	}
}

// TestListingRandom compares listings of random trees with the definition.
func TestListingRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []string{"a", "b", "-", ".", "0", "/", " ", "~"}
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/rnd", user: "alice"}, 200)
	var keys []string
	have := map[string]bool{}
	for len(keys) < 150 {
		n := 1 + rng.Intn(6)
		var sb strings.Builder
		for i := 0; i < n; i++ {
			sb.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		k := sb.String()
		if _, err := splitKey(k); err != nil || strings.HasSuffix(k, "/") || have[k] {
			continue
		}
		w := e.do(call{method: "PUT", path: "/rnd/" + url.PathEscape(k), user: "alice", body: "v"})
		if w.Code == 409 {
			continue // conflicts with a key already there
		}
		if w.Code != 200 {
			t.Fatalf("PUT %q: %d %s", k, w.Code, w.Body.String())
		}
		have[k] = true
		keys = append(keys, k)
	}
	for _, tt := range []struct{ prefix, delim string }{{"", ""}, {"", "/"}, {"a", "/"}, {"a/", ""}, {"b", "-"}, {"", "a"}, {"-", "/"}} {
		want := reference(keys, tt.prefix, tt.delim)
		for _, max := range []int{7, 1000} {
			got := e.listAll("rnd", tt.prefix, tt.delim, max, true)
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("prefix %q delimiter %q max %d:\n got %q\nwant %q", tt.prefix, tt.delim, max, got, want)
			}
		}
	}
}

func TestListingDetails(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	e.put("alice", "/bkt/a%20b+c", "12345")
	e.put("alice", "/bkt/d/e", "1")
	var res listResultXML
	decodeXML(t, e.ok(call{method: "GET", path: "/bkt?list-type=2&encoding-type=url&fetch-owner=true", user: "alice"}, 200), &res)
	if len(res.Contents) != 2 || res.Contents[0].Key != "a%20b%2Bc" || res.Contents[0].Size != 5 ||
		res.Contents[0].Owner == nil || res.Contents[0].Owner.ID != "alice" || res.KeyCount != 2 {
		t.Fatalf("listing %+v", res)
	}
	var plain listResultXML
	decodeXML(t, e.ok(call{method: "GET", path: "/bkt?list-type=2", user: "alice"}, 200), &plain)
	if plain.Contents[0].Owner != nil {
		t.Fatal("v2 lists owners only with fetch-owner")
	}
	var zero, after listResultXML
	decodeXML(t, e.ok(call{method: "GET", path: "/bkt?max-keys=0", user: "alice"}, 200), &zero)
	if len(zero.Contents) != 0 || zero.IsTruncated {
		t.Fatalf("max-keys=0: %+v", zero)
	}
	decodeXML(t, e.ok(call{method: "GET", path: "/bkt?list-type=2&start-after=a", user: "alice"}, 200), &after)
	if len(after.Contents) != 2 {
		t.Fatalf("start-after: %+v", after)
	}
}
