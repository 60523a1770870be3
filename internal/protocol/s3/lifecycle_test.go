package s3

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/coretest"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
)

// t0 is when the lifecycle tests write their objects: half a second into
// a second, so that rounding up to the next day boundary shows.
var t0 = time.Date(2030, 1, 1, 12, 0, 0, 500_000_000, time.UTC)

// logBuffer collects a server's JSON log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the log records whose message is msg.
func (l *logBuffer) records(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// finished sums the counts of the end lines of bucket's passes.
func (l *logBuffer) finished(bucket string) map[string]int {
	sum := map[string]int{}
	for _, m := range l.records("S3 lifecycle pass over bucket finished") {
		if m["bucket"] != bucket {
			continue
		}
		sum["passes"]++
		for _, k := range []string{"objects_expired", "versions_removed", "delete_markers_removed", "uploads_aborted", "errors"} {
			f, _ := m[k].(float64)
			sum[k] += int(f)
		}
	}
	return sum
}

// lcEnv is a server with a test clock, one-second lifecycle days and
// captured logs.
type lcEnv struct {
	*env
	clock *coretest.Clock
	logs  *logBuffer
}

func newLifecycleEnv(t testing.TB, cfg Config) *lcEnv {
	clock := coretest.NewClock(t0)
	logs := &logBuffer{}
	cfg.Now = clock.Now
	cfg.LifecycleDay = time.Second
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return &lcEnv{env: newEnv(t, cfg), clock: clock, logs: logs}
}

// lifecycleDoc wraps rules in a LifecycleConfiguration.
func lifecycleDoc(rules string) string {
	return `<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` + rules + `</LifecycleConfiguration>`
}

func (e *lcEnv) setLifecycle(bucket, rules string) {
	e.t.Helper()
	e.ok(call{method: "PUT", path: "/" + bucket + "?lifecycle", user: "alice", body: lifecycleDoc(rules)}, 200)
}

func (e *lcEnv) enableVersioning(bucket, status string) {
	e.t.Helper()
	e.ok(call{method: "PUT", path: "/" + bucket + "?versioning", user: "alice",
		body: "<VersioningConfiguration><Status>" + status + "</Status></VersioningConfiguration>"}, 200)
}

func (e *lcEnv) run() {
	e.t.Helper()
	if err := e.s.RunLifecycle(context.Background()); err != nil {
		e.t.Fatalf("lifecycle pass: %v", err)
	}
}

// keys lists every current key of bucket.
func (e *env) keys(bucket string) []string {
	e.t.Helper()
	var res struct {
		Contents []struct{ Key string }
	}
	decodeXML(e.t, e.ok(call{method: "GET", path: "/" + bucket + "?list-type=2", user: "alice"}, 200), &res)
	out := []string{}
	for _, c := range res.Contents {
		out = append(out, c.Key)
	}
	return out
}

// normalised re-encodes a configuration for comparison.
func normalised(t *testing.T, body string) *s3xml.LifecycleConfiguration {
	t.Helper()
	c, err := s3xml.ParseLifecycle([]byte(body))
	if err != nil {
		t.Fatalf("parsing %s: %v", body, err)
	}
	c.Xmlns = ""
	return c
}

func TestLifecycleConfiguration(t *testing.T) {
	e := newLifecycleEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/lcb", user: "alice"}, 200)
	e.fails(call{method: "GET", path: "/lcb?lifecycle", user: "alice"}, "NoSuchLifecycleConfiguration", 404)
	e.fails(call{method: "GET", path: "/nobucket?lifecycle", user: "alice"}, "NoSuchBucket", 404)

	good := []struct{ name, rules string }{
		{"days by prefix", `<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration></Rule>`},
		{"generated id", `<Rule><Filter></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`},
		{"legacy prefix", `<Rule><ID>old</ID><Prefix>tmp/</Prefix><Status>Disabled</Status><Expiration><Days>7</Days></Expiration></Rule>`},
		{"every action", `<Rule><ID>all</ID><Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag><ObjectSizeGreaterThan>1</ObjectSizeGreaterThan><ObjectSizeLessThan>9</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Date>2031-06-01T00:00:00Z</Date></Expiration><NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>` +
			`<Rule><ID>markers</ID><Filter><Prefix>a/</Prefix></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			e.setLifecycle("lcb", tt.rules)
			w := e.ok(call{method: "GET", path: "/lcb?lifecycle", user: "alice"}, 200)
			got := normalised(t, w.Body.String())
			want := normalised(t, lifecycleDoc(tt.rules))
			for i := range want.Rules {
				if want.Rules[i].ID == "" {
					if got.Rules[i].ID == "" {
						t.Fatalf("rule %d has no generated ID: %s", i, w.Body.String())
					}
					want.Rules[i].ID = got.Rules[i].ID
				}
			}
			g, _ := xml.Marshal(got)
			wn, _ := xml.Marshal(want)
			if !bytes.Equal(g, wn) {
				t.Fatalf("GET returned\n%s\nwant\n%s", g, wn)
			}
		})
	}
	e.t = t
	before := e.ok(call{method: "GET", path: "/lcb?lifecycle", user: "alice"}, 200).Body.String()

	bad := []struct{ name, body, code string }{
		{"not xml", `<LifecycleConfiguration><Rule>`, "MalformedXML"},
		{"no action", lifecycleDoc(`<Rule><Filter/><Status>Enabled</Status></Rule>`), "MalformedXML"},
		{"no filter", lifecycleDoc(`<Rule><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`), "MalformedXML"},
		{"zero days", lifecycleDoc(`<Rule><Filter/><Status>Enabled</Status><Expiration><Days>0</Days></Expiration></Rule>`), "InvalidArgument"},
		{"date not midnight", lifecycleDoc(`<Rule><Filter/><Status>Enabled</Status><Expiration><Date>2031-01-01T01:00:00Z</Date></Expiration></Rule>`), "InvalidArgument"},
		{"duplicate ids", lifecycleDoc(`<Rule><ID>a</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule><Rule><ID>a</ID><Filter/><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule>`), "InvalidArgument"},
		{"transition", lifecycleDoc(`<Rule><Filter/><Status>Enabled</Status><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition></Rule>`), "InvalidStorageClass"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			e.fails(call{method: "PUT", path: "/lcb?lifecycle", user: "alice", body: tt.body}, tt.code, 400)
			if got := e.ok(call{method: "GET", path: "/lcb?lifecycle", user: "alice"}, 200).Body.String(); got != before {
				t.Fatalf("a refused PUT changed the configuration to %s", got)
			}
		})
	}
	e.t = t

	// Only the owner, or whom a policy allows, reads or changes it.
	e.fails(call{method: "GET", path: "/lcb?lifecycle", user: "bob"}, "AccessDenied", 403)
	e.fails(call{method: "PUT", path: "/lcb?lifecycle", user: "bob", body: lifecycleDoc(good[0].rules)}, "AccessDenied", 403)
	e.fails(call{method: "DELETE", path: "/lcb?lifecycle", user: "bob"}, "AccessDenied", 403)
	e.ok(call{method: "PUT", path: "/lcb?policy", user: "alice",
		body: `{"Statement":[{"Effect":"Allow","Principal":{"AWS":["bob"]},"Action":["s3:GetLifecycleConfiguration"],"Resource":["arn:aws:s3:::lcb"]}]}`}, 204)
	e.ok(call{method: "GET", path: "/lcb?lifecycle", user: "bob"}, 200)
	e.fails(call{method: "DELETE", path: "/lcb?lifecycle", user: "bob"}, "AccessDenied", 403)

	e.ok(call{method: "DELETE", path: "/lcb?lifecycle", user: "alice"}, 204)
	e.fails(call{method: "GET", path: "/lcb?lifecycle", user: "alice"}, "NoSuchLifecycleConfiguration", 404)
	e.ok(call{method: "DELETE", path: "/lcb?lifecycle", user: "alice"}, 204)
}

type lcObject struct{ key, body, tags string }

func (e *lcEnv) putObjects(bucket string, objs []lcObject) {
	e.t.Helper()
	for _, o := range objs {
		c := call{method: "PUT", path: "/" + bucket + "/" + o.key, user: "alice", body: o.body}
		if o.tags != "" {
			c.header = map[string]string{"X-Amz-Tagging": o.tags}
		}
		e.ok(c, 200)
	}
}

// pagedObjects spread over nested directories, in an order where a
// directory sorts among its siblings as its name with "/" ("a-x" and "a.y"
// before "a/"); the two-byte ones are due under a size rule.
var pagedObjects = []lcObject{{"a/1", "xx", ""}, {"a/2", "x", ""}, {"a/b/1", "xx", ""}, {"a/b/2", "xx", ""}, {"a-x", "xx", ""},
	{"a.y", "x", ""}, {"b/1", "xx", ""}, {"b/2/3", "x", ""}, {"c", "xx", ""}, {"d/e/f", "xx", ""}, {"d/e/g", "xx", ""}, {"z", "x", ""}}

var pagedRemain = []string{"a.y", "a/2", "b/2/3", "z"}

func TestLifecycleExpiresCurrentObjects(t *testing.T) {
	untilDay2 := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC).Sub(t0)
	tests := []struct {
		name    string
		rules   string
		objects []lcObject
		advance time.Duration
		remain  []string
		page    int // entries per page; 0 for the default
	}{
		{"by prefix", `<Rule><ID>r</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			[]lcObject{{key: "logs/a"}, {key: "logs/b/c"}, {key: "data/x"}, {key: "logsx"}}, 2 * time.Second, []string{"data/x", "logsx"}, 0},
		{"not yet due", `<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>3</Days></Expiration></Rule>`,
			[]lcObject{{key: "a"}, {key: "b"}}, 2 * time.Second, []string{"a", "b"}, 0},
		{"due at the next day boundary", `<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			[]lcObject{{key: "a"}}, 1500 * time.Millisecond, []string{}, 0},
		{"not before the day boundary", `<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			[]lcObject{{key: "a"}}, 1499 * time.Millisecond, []string{"a"}, 0},
		{"by tag", `<Rule><ID>r</ID><Filter><Tag><Key>env</Key><Value>tmp</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			[]lcObject{{key: "t1", tags: "env=tmp"}, {key: "t2", tags: "env=prod"}, {key: "t3"}, {key: "t4", tags: "team=x&env=tmp"}}, 2 * time.Second, []string{"t2", "t3"}, 0},
		{"by prefix and tags", `<Rule><ID>r</ID><Filter><And><Prefix>a/</Prefix><Tag><Key>env</Key><Value>tmp</Value></Tag><Tag><Key>team</Key><Value>x</Value></Tag></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			[]lcObject{{key: "a/1", tags: "env=tmp&team=x"}, {key: "a/2", tags: "env=tmp"}, {key: "b/1", tags: "env=tmp&team=x"}}, 2 * time.Second, []string{"a/2", "b/1"}, 0},
		{"larger than", `<Rule><ID>r</ID><Filter><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			[]lcObject{{key: "small", body: "abc"}, {key: "exact", body: "12345"}, {key: "big", body: "0123456789"}}, 2 * time.Second, []string{"exact", "small"}, 0},
		{"size range", `<Rule><ID>r</ID><Filter><And><ObjectSizeGreaterThan>2</ObjectSizeGreaterThan><ObjectSizeLessThan>6</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			[]lcObject{{key: "one", body: "a"}, {key: "four", body: "abcd"}, {key: "eight", body: "abcdefgh"}}, 2 * time.Second, []string{"eight", "one"}, 0},
		{"legacy prefix", `<Rule><ID>r</ID><Prefix>tmp/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			[]lcObject{{key: "tmp/a"}, {key: "keep"}}, 2 * time.Second, []string{"keep"}, 0},
		{"date not reached", `<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Date>2030-01-02T00:00:00Z</Date></Expiration></Rule>`,
			[]lcObject{{key: "a"}}, untilDay2 - time.Millisecond, []string{"a"}, 0},
		{"date reached", `<Rule><ID>r</ID><Filter><Prefix>a</Prefix></Filter><Status>Enabled</Status><Expiration><Date>2030-01-02T00:00:00Z</Date></Expiration></Rule>`,
			[]lcObject{{key: "a"}, {key: "b"}}, untilDay2, []string{"b"}, 0},
		{"disabled rule", `<Rule><ID>r</ID><Filter/><Status>Disabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			[]lcObject{{key: "a"}}, time.Hour, []string{"a"}, 0},
		{"directory markers", `<Rule><ID>r</ID><Filter><Prefix>m/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			[]lcObject{{key: "m/"}, {key: "m/a"}, {key: "n/"}}, 2 * time.Second, []string{"n/"}, 0},
		{"across pages of one entry", `<Rule><ID>r</ID><Filter><ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			pagedObjects, 2 * time.Second, pagedRemain, 1},
		{"across pages of three entries", `<Rule><ID>r</ID><Filter><ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			pagedObjects, 2 * time.Second, pagedRemain, 3},
		{"across pages under a prefix", `<Rule><ID>r</ID><Filter><And><Prefix>a</Prefix><ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			pagedObjects, 2 * time.Second, []string{"a.y", "a/2", "b/1", "b/2/3", "c", "d/e/f", "d/e/g", "z"}, 2},
		{"one of several rules", `<Rule><ID>r1</ID><Filter><Prefix>x/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>` +
			`<Rule><ID>r2</ID><Filter><Prefix>y/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>5</Days></Expiration></Rule>`,
			[]lcObject{{key: "x/1"}, {key: "y/1"}, {key: "z/1"}}, 2 * time.Second, []string{"y/1", "z/1"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newLifecycleEnv(t, Config{})
			e.s.lifecycle.page = tt.page
			e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
			e.putObjects("bkt", tt.objects)
			e.setLifecycle("bkt", tt.rules)
			e.clock.Advance(tt.advance)
			e.run()
			got := e.keys("bkt")
			sort.Strings(tt.remain)
			if strings.Join(got, ",") != strings.Join(tt.remain, ",") {
				t.Fatalf("remaining keys %q, want %q", got, tt.remain)
			}
			// The progress lines count what went.
			passes := 1
			if !strings.Contains(tt.rules, "Enabled") {
				passes = 0 // no enabled rule: the bucket is not passed over
			}
			n := e.logs.finished("bkt")
			if n["passes"] != passes || n["objects_expired"] != len(tt.objects)-len(tt.remain) || n["errors"] != 0 {
				t.Fatalf("pass counts %v", n)
			}
			if len(e.logs.records("S3 lifecycle pass over bucket started")) != passes {
				t.Fatal("no start line")
			}
			// A second pass finds nothing more to do.
			e.run()
			if n := e.logs.finished("bkt"); n["objects_expired"] != len(tt.objects)-len(tt.remain) || n["errors"] != 0 {
				t.Fatalf("second pass counts %v", n)
			}
		})
	}
}

func TestLifecycleSkipsBucketsWithoutRules(t *testing.T) {
	e := newLifecycleEnv(t, Config{})
	e.s.lifecycle.page = 1 // one bucket per listing page
	for _, b := range []string{"aaa-plain", "bbb-off", "ccc-on", "ddd-plain"} {
		e.ok(call{method: "PUT", path: "/" + b, user: "alice"}, 200)
		e.put("alice", "/"+b+"/a", "x")
	}
	e.setLifecycle("bbb-off", `<Rule><ID>r</ID><Filter/><Status>Disabled</Status><Expiration><Days>1</Days></Expiration></Rule>`)
	e.setLifecycle("ccc-on", `<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`)
	e.clock.Advance(time.Hour)
	e.run()
	for b, want := range map[string]int{"aaa-plain": 1, "bbb-off": 1, "ccc-on": 0, "ddd-plain": 1} {
		if got := len(e.keys(b)); got != want {
			t.Fatalf("bucket %s has %d objects, want %d", b, got, want)
		}
	}
	started := e.logs.records("S3 lifecycle pass over bucket started")
	if len(started) != 1 || started[0]["bucket"] != "ccc-on" {
		t.Fatalf("buckets passed over: %v, want only ccc-on", started)
	}
}

func TestLifecycleExpirationHeader(t *testing.T) {
	e := newLifecycleEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/hdr", user: "alice"}, 200)
	e.setLifecycle("hdr", `<Rule><ID>days</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule>`+
		`<Rule><ID>date</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Date>2030-01-03T00:00:00Z</Date></Expiration></Rule>`+
		`<Rule><ID>dated</ID><Filter><Prefix>old/</Prefix></Filter><Status>Enabled</Status><Expiration><Date>2030-01-03T00:00:00Z</Date></Expiration></Rule>`+
		`<Rule><ID>tagged</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>5</Days></Expiration></Rule>`+
		`<Rule><ID>off</ID><Filter><Prefix>off/</Prefix></Filter><Status>Disabled</Status><Expiration><Days>1</Days></Expiration></Rule>`+
		`<Rule><ID>versions</ID><Filter><Prefix>nc/</Prefix></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>`)
	tests := []struct {
		key, tags, want string
	}{
		// Days 2 from 12:00:00.5 end at the second boundary after 12:00:02.5.
		{"logs/a", "", `expiry-date="Tue, 01 Jan 2030 12:00:03 GMT", rule-id="days"`},
		{"old/a", "", `expiry-date="Thu, 03 Jan 2030 00:00:00 GMT", rule-id="dated"`},
		{"tagged", "k=v", `expiry-date="Tue, 01 Jan 2030 12:00:06 GMT", rule-id="tagged"`},
		{"untagged", "k=w", ""},
		{"off/a", "", ""},
		{"nc/a", "", ""},
		{"other", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			e.t = t
			c := call{method: "PUT", path: "/hdr/" + tt.key, user: "alice", body: "data"}
			if tt.tags != "" {
				c.header = map[string]string{"X-Amz-Tagging": tt.tags}
			}
			if got := e.ok(c, 200).Header().Get("X-Amz-Expiration"); got != tt.want {
				t.Fatalf("PUT: x-amz-expiration %q, want %q", got, tt.want)
			}
			for _, m := range []string{"GET", "HEAD"} {
				if got := e.ok(call{method: m, path: "/hdr/" + tt.key, user: "alice"}, 200).Header().Get("X-Amz-Expiration"); got != tt.want {
					t.Fatalf("%s: x-amz-expiration %q, want %q", m, got, tt.want)
				}
			}
		})
	}
}

func TestLifecycleHeaderOnlyForCurrentVersion(t *testing.T) {
	e := newLifecycleEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/hvb", user: "alice"}, 200)
	e.enableVersioning("hvb", "Enabled")
	e.setLifecycle("hvb", `<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`)
	v1 := e.put("alice", "/hvb/k", "1").Header().Get("X-Amz-Version-Id")
	v2 := e.put("alice", "/hvb/k", "2").Header().Get("X-Amz-Version-Id")
	tests := []struct {
		path   string
		header bool
	}{
		{"/hvb/k", true},
		{"/hvb/k?versionId=" + v2, true},
		{"/hvb/k?versionId=" + v1, false},
	}
	for _, tt := range tests {
		got := e.ok(call{method: "HEAD", path: tt.path, user: "alice"}, 200).Header().Get("X-Amz-Expiration")
		if (got != "") != tt.header {
			t.Fatalf("HEAD %s: x-amz-expiration %q, want one: %v", tt.path, got, tt.header)
		}
	}
}

// versionIDs lists the version ids of key (versions, then delete markers).
func versionIDs(v versionsXML, key string) (versions, markers []string) {
	for _, x := range v.Versions {
		if x.Key == key {
			versions = append(versions, x.VersionId)
		}
	}
	for _, x := range v.DeleteMarkers {
		if x.Key == key {
			markers = append(markers, x.VersionId)
		}
	}
	return versions, markers
}

func TestLifecycleVersionedBuckets(t *testing.T) {
	// putAt writes key at the current clock time and returns its version.
	putAt := func(e *lcEnv, key, body string, after time.Duration) string {
		e.t.Helper()
		e.clock.Advance(after)
		return e.put("alice", "/vbk/"+key, body).Header().Get("X-Amz-Version-Id")
	}
	tests := []struct {
		name  string
		rules string
		// setup writes the versions and returns what must remain of key
		// "k": version ids (newest first) and whether a delete marker is
		// the latest.
		setup  func(e *lcEnv) (versions []string, marker bool)
		counts map[string]int
	}{
		{"current version gets a delete marker",
			`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			func(e *lcEnv) ([]string, bool) {
				e.enableVersioning("vbk", "Enabled")
				v1 := putAt(e, "k", "one", 0)
				e.clock.Advance(2 * time.Second)
				return []string{v1}, true
			}, map[string]int{"objects_expired": 1}},
		{"suspended bucket: a null delete marker replaces the null version",
			`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			func(e *lcEnv) ([]string, bool) {
				e.enableVersioning("vbk", "Enabled")
				v1 := putAt(e, "k", "one", 0)
				e.enableVersioning("vbk", "Suspended")
				putAt(e, "k", "two", 0)
				e.clock.Advance(2 * time.Second)
				return []string{v1}, true
			}, map[string]int{"objects_expired": 1}},
		{"noncurrent versions expire days after they became noncurrent",
			`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>`,
			func(e *lcEnv) ([]string, bool) {
				e.enableVersioning("vbk", "Enabled")
				putAt(e, "k", "1", 0)
				v2 := putAt(e, "k", "2", time.Second)    // v1 noncurrent since 12:00:01.5
				v3 := putAt(e, "k", "3", 20*time.Second) // v2 noncurrent since 12:00:21.5
				e.clock.Advance(time.Second)             // 12:00:22.5: v1 due at 12:00:03, v2 at 12:00:23
				return []string{v3, v2}, false
			}, map[string]int{"versions_removed": 1}},
		{"the newest noncurrent versions are kept",
			`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>`,
			func(e *lcEnv) ([]string, bool) {
				e.enableVersioning("vbk", "Enabled")
				var ids []string
				for i := 0; i < 5; i++ {
					ids = append([]string{putAt(e, "k", fmt.Sprint(i), time.Second)}, ids...)
				}
				e.clock.Advance(time.Minute)
				return ids[:3], false
			}, map[string]int{"versions_removed": 2}},
		{"noncurrent filter by size",
			`<Rule><ID>r</ID><Filter><ObjectSizeGreaterThan>3</ObjectSizeGreaterThan></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>`,
			func(e *lcEnv) ([]string, bool) {
				e.enableVersioning("vbk", "Enabled")
				v1 := putAt(e, "k", "1", 0)
				putAt(e, "k", "22222", time.Second)
				v3 := putAt(e, "k", "3", time.Second)
				e.clock.Advance(time.Minute)
				return []string{v3, v1}, false
			}, map[string]int{"versions_removed": 1}},
		{"an expired delete marker is removed",
			`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>`,
			func(e *lcEnv) ([]string, bool) {
				e.enableVersioning("vbk", "Enabled")
				v1 := putAt(e, "k", "1", 0)
				e.clock.Advance(time.Millisecond)
				e.ok(call{method: "DELETE", path: "/vbk/k", user: "alice"}, 204)
				e.ok(call{method: "DELETE", path: "/vbk/k?versionId=" + v1, user: "alice"}, 204)
				// Another key's marker still hides a version: it stays.
				putAt(e, "other", "1", 0)
				e.clock.Advance(time.Millisecond)
				e.ok(call{method: "DELETE", path: "/vbk/other", user: "alice"}, 204)
				return nil, false
			}, map[string]int{"delete_markers_removed": 1}},
		{"a Days rule removes a lone delete marker once it is due",
			`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
			func(e *lcEnv) ([]string, bool) {
				e.enableVersioning("vbk", "Enabled")
				v1 := putAt(e, "k", "1", 0)
				e.clock.Advance(time.Millisecond)
				e.ok(call{method: "DELETE", path: "/vbk/k", user: "alice"}, 204)
				e.ok(call{method: "DELETE", path: "/vbk/k?versionId=" + v1, user: "alice"}, 204)
				e.clock.Advance(2 * time.Second)
				return nil, false
			}, map[string]int{"delete_markers_removed": 1}},
		{"noncurrent versions go, then the marker left alone",
			`<Rule><ID>nc</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>` +
				`<Rule><ID>dm</ID><Filter/><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>`,
			func(e *lcEnv) ([]string, bool) {
				e.enableVersioning("vbk", "Enabled")
				putAt(e, "k", "1", 0)
				e.clock.Advance(time.Millisecond)
				e.ok(call{method: "DELETE", path: "/vbk/k", user: "alice"}, 204)
				e.clock.Advance(5 * time.Second)
				return nil, false
			}, map[string]int{"versions_removed": 1, "delete_markers_removed": 1}},
		{"a retained version stays",
			`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>`,
			func(e *lcEnv) ([]string, bool) {
				e.ok(call{method: "DELETE", path: "/vbk", user: "alice"}, 204)
				e.ok(call{method: "PUT", path: "/vbk", user: "alice", header: map[string]string{"X-Amz-Bucket-Object-Lock-Enabled": "true"}}, 200)
				until := e.clock.Now().Add(time.Hour).Format(time.RFC3339)
				w := e.ok(call{method: "PUT", path: "/vbk/k", user: "alice", body: "1",
					header: map[string]string{"X-Amz-Object-Lock-Mode": "GOVERNANCE", "X-Amz-Object-Lock-Retain-Until-Date": until}}, 200)
				v1 := w.Header().Get("X-Amz-Version-Id")
				v2 := putAt(e, "k", "2", time.Second)
				e.clock.Advance(time.Minute)
				return []string{v2, v1}, false
			}, map[string]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newLifecycleEnv(t, Config{})
			e.ok(call{method: "PUT", path: "/vbk", user: "alice"}, 200)
			wantVersions, wantMarker := tt.setup(e)
			e.setLifecycle("vbk", tt.rules)
			e.run()
			v := e.versions("vbk", "")
			versions, markers := versionIDs(v, "k")
			if strings.Join(versions, ",") != strings.Join(wantVersions, ",") {
				t.Fatalf("versions of k %q, want %q (%+v)", versions, wantVersions, v)
			}
			if (len(markers) == 1) != wantMarker || len(markers) > 1 {
				t.Fatalf("delete markers of k %q, want one: %v", markers, wantMarker)
			}
			if wantMarker {
				e.fails(call{method: "GET", path: "/vbk/k", user: "alice"}, "NoSuchKey", 404)
				if got := e.get("alice", "/vbk/k?versionId="+wantVersions[0]); got == "" {
					t.Fatal("the expired version's data is gone")
				}
			}
			n := e.logs.finished("vbk")
			for _, k := range []string{"objects_expired", "versions_removed", "delete_markers_removed", "uploads_aborted", "errors"} {
				if n[k] != tt.counts[k] {
					t.Fatalf("pass counts %v, want %v", n, tt.counts)
				}
			}
		})
	}
}

func TestLifecycleEmptiedBucketCanBeDeleted(t *testing.T) {
	e := newLifecycleEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/gone", user: "alice"}, 200)
	e.enableVersioning("gone", "Enabled")
	e.setLifecycle("gone", `<Rule><ID>cur</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`+
		`<Rule><ID>nc</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>`)
	e.s.lifecycle.page = 1
	for _, k := range []string{"a/b", "a/c/d", "c", "e", "f/g"} {
		e.put("alice", "/gone/"+k, k)
	}
	// The current versions expire first; their versions and then the
	// markers left alone go in the passes after.
	for i := 0; i < 3; i++ {
		e.clock.Advance(3 * time.Second)
		e.run()
	}
	if v := e.versions("gone", ""); len(v.Versions)+len(v.DeleteMarkers) != 0 {
		t.Fatalf("left %+v", v)
	}
	e.ok(call{method: "DELETE", path: "/gone", user: "alice"}, 204)
}

func TestLifecycleAbortsUploads(t *testing.T) {
	e := newLifecycleEnv(t, Config{})
	e.s.lifecycle.page = 1
	e.ok(call{method: "PUT", path: "/upl", user: "alice"}, 200)
	e.setLifecycle("upl", `<Rule><ID>r</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`)
	old := e.initiate("/upl/tmp/a", nil)
	e.uploadPart("/upl/tmp/a", old, 1, "part")
	other := e.initiate("/upl/keep/b", nil)
	e.clock.Advance(5 * time.Second)
	young := e.initiate("/upl/tmp/c", nil) // began 12:00:05.5: due at 12:00:07
	e.clock.Advance(time.Second)
	e.run()
	var res struct {
		Upload []struct{ Key, UploadId string }
	}
	decodeXML(t, e.ok(call{method: "GET", path: "/upl?uploads", user: "alice"}, 200), &res)
	got := map[string]string{}
	for _, u := range res.Upload {
		got[u.Key] = u.UploadId
	}
	if len(got) != 2 || got["keep/b"] != other || got["tmp/c"] != young {
		t.Fatalf("uploads left %v", got)
	}
	e.fails(call{method: "PUT", path: "/upl/tmp/a?partNumber=2&uploadId=" + old, user: "alice", body: "x"}, "NoSuchUpload", 404)
	if n := e.logs.finished("upl"); n["uploads_aborted"] != 1 || n["errors"] != 0 {
		t.Fatalf("pass counts %v", n)
	}
}

// TestLifecycleAbortHeaders: CreateMultipartUpload names the first
// enabled rule that will abort the upload, and when.
func TestLifecycleAbortHeaders(t *testing.T) {
	e := newLifecycleEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/abt", user: "alice"}, 200)
	e.setLifecycle("abt", `<Rule><ID>three</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`+
		`<Rule><ID>one</ID><Filter><Prefix>tmp/x</Prefix></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`+
		`<Rule><ID>off</ID><Filter><Prefix>off/</Prefix></Filter><Status>Disabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`)
	tests := []struct {
		key, date, rule string
	}{
		// Begun at 12:00:00.5 with one-second days.
		{"tmp/a", "Tue, 01 Jan 2030 12:00:04 GMT", "three"},
		{"tmp/xyz", "Tue, 01 Jan 2030 12:00:02 GMT", "one"},
		{"off/a", "", ""},
		{"other", "", ""},
	}
	for _, tt := range tests {
		h := e.ok(call{method: "POST", path: "/abt/" + tt.key + "?uploads", user: "alice"}, 200).Header()
		if got, rule := h.Get("X-Amz-Abort-Date"), h.Get("X-Amz-Abort-Rule-Id"); got != tt.date || rule != tt.rule {
			t.Errorf("%s: abort date %q, rule %q; want %q, %q", tt.key, got, rule, tt.date, tt.rule)
		}
	}
}

// TestLifecycleActsOnlyOnWhatItEvaluated changes an object between its
// evaluation and the worker's act, as a client (or another gateway's
// worker) may.
func TestLifecycleActsOnlyOnWhatItEvaluated(t *testing.T) {
	tests := []struct {
		name      string
		versioned bool
		change    func(e *lcEnv)
		wantBody  string // "" when the object must be gone
		expired   int
	}{
		{"unchanged", false, func(*lcEnv) {}, "", 1},
		{"overwritten", false, func(e *lcEnv) { e.put("alice", "/race/k", "new") }, "new", 0},
		{"retagged", false, func(e *lcEnv) {
			e.ok(call{method: "PUT", path: "/race/k?tagging", user: "alice", body: `<Tagging><TagSet><Tag><Key>env</Key><Value>prod</Value></Tag></TagSet></Tagging>`}, 200)
		}, "old", 0},
		{"already deleted", false, func(e *lcEnv) { e.ok(call{method: "DELETE", path: "/race/k", user: "alice"}, 204) }, "", 0},
		{"overwritten in a versioned bucket", true, func(e *lcEnv) { e.put("alice", "/race/k", "new") }, "new", 0},
		{"expired by another gateway first", true, func(e *lcEnv) {
			other := New(Config{FS: e.fs, Now: e.clock.Now, LifecycleDay: time.Second, Logger: e.s.log})
			if err := other.RunLifecycle(context.Background()); err != nil {
				e.t.Fatal(err)
			}
		}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newLifecycleEnv(t, Config{})
			ctx := context.Background()
			e.ok(call{method: "PUT", path: "/race", user: "alice"}, 200)
			if tt.versioned {
				e.enableVersioning("race", "Enabled")
			}
			e.ok(call{method: "PUT", path: "/race/k", user: "alice", body: "old", header: map[string]string{"X-Amz-Tagging": "env=tmp"}}, 200)
			e.setLifecycle("race", `<Rule><ID>r</ID><Filter><Tag><Key>env</Key><Value>tmp</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`)
			e.clock.Advance(2 * time.Second)

			b, err := e.s.loadBucket(ctx, "race")
			if err != nil {
				t.Fatal(err)
			}
			r := e.s.newLifecycleRun(ctx, b, lifecycleOf(b))
			a, err := e.fs.Lookup(ctx, &core.Root, b.ino(), "k")
			if err != nil {
				t.Fatal(err)
			}
			it := walkItem{key: "k", attr: &a}
			if !r.dueItem(&it) {
				t.Fatal("the object is not due")
			}
			tt.change(e)
			r.expireObject(&it)

			if tt.wantBody == "" {
				e.fails(call{method: "GET", path: "/race/k", user: "alice"}, "NoSuchKey", 404)
			} else if got := e.get("alice", "/race/k"); got != tt.wantBody {
				t.Fatalf("object reads %q, want %q", got, tt.wantBody)
			}
			if r.n.expired != tt.expired || r.n.errors != 0 {
				t.Fatalf("counts %+v, want %d expired", r.n, tt.expired)
			}
			if tt.versioned {
				if _, markers := versionIDs(e.versions("race", ""), "k"); len(markers) > 1 {
					t.Fatalf("%d delete markers, want at most one", len(markers))
				}
			}
		})
	}
}

// TestLifecycleConcurrentWorkers runs the passes of two gateways over one
// namespace at once: every object expires once, with one delete marker.
func TestLifecycleConcurrentWorkers(t *testing.T) {
	for _, versioned := range []bool{false, true} {
		t.Run(fmt.Sprintf("versioned=%v", versioned), func(t *testing.T) {
			e := newLifecycleEnv(t, Config{})
			e.ok(call{method: "PUT", path: "/two", user: "alice"}, 200)
			if versioned {
				e.enableVersioning("two", "Enabled")
			}
			const n = 40
			for i := 0; i < n; i++ {
				e.put("alice", fmt.Sprintf("/two/d%d/k%02d", i%4, i), "x")
			}
			e.setLifecycle("two", `<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`)
			e.clock.Advance(2 * time.Second)
			otherLogs := &logBuffer{}
			other := New(Config{FS: e.fs, Now: e.clock.Now, LifecycleDay: time.Second,
				Logger: slog.New(slog.NewJSONHandler(otherLogs, nil))})
			var wg sync.WaitGroup
			errs := make(chan error, 2)
			for _, s := range []*Server{e.s, other} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- s.RunLifecycle(context.Background())
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if keys := e.keys("two"); len(keys) != 0 {
				t.Fatalf("left %q", keys)
			}
			a, b := e.logs.finished("two"), otherLogs.finished("two")
			if a["objects_expired"]+b["objects_expired"] != n || a["errors"]+b["errors"] != 0 {
				t.Fatalf("counts %v + %v, want %d expired in all", a, b, n)
			}
			if versioned {
				v := e.versions("two", "")
				if len(v.DeleteMarkers) != n || len(v.Versions) != n {
					t.Fatalf("%d delete markers and %d versions, want %d of each", len(v.DeleteMarkers), len(v.Versions), n)
				}
			}
		})
	}
}

func TestLifecycleWorker(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		runs     bool
	}{
		{"runs every interval", 10 * time.Millisecond, true},
		{"off with a negative interval", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newLifecycleEnv(t, Config{LifecycleInterval: tt.interval})
			e.ok(call{method: "PUT", path: "/wkr", user: "alice"}, 200)
			e.put("alice", "/wkr/a", "x")
			e.setLifecycle("wkr", `<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`)
			e.clock.Advance(2 * time.Second)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- e.s.Serve(l) }()
			if tt.runs {
				// The worker's passes are not timed here: wait, boundedly, for
				// the one that removes the object.
				deadline := time.Now().Add(30 * time.Second)
				for len(e.keys("wkr")) != 0 {
					if time.Now().After(deadline) {
						t.Fatal("the worker did not expire the object")
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := e.s.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Fatalf("Serve returned %v", err)
			}
			w := &e.s.lifecycle
			if tt.runs {
				select {
				case <-w.done:
				default:
					t.Fatal("the worker still runs after Shutdown")
				}
			} else {
				if w.cancel != nil {
					t.Fatal("the worker started although it is off")
				}
				if len(e.keys("wkr")) != 1 {
					t.Fatal("an object expired with the worker off")
				}
			}
			// A server shut down does not start it again.
			if err := e.s.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				t.Fatalf("Serve after Shutdown returned %v", err)
			}
		})
	}
}

func TestDayEnd(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		t    time.Time
		days int
		want time.Time
		ok   bool
	}{
		// S3's own example: created 2014-01-15 10:30 UTC, 3 days, expires
		// 2014-01-19 00:00 UTC.
		{time.Date(2014, 1, 15, 10, 30, 0, 0, time.UTC), 3, time.Date(2014, 1, 19, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2014, 1, 15, 23, 59, 59, 0, time.UTC), 1, time.Date(2014, 1, 17, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2014, 1, 15, 10, 30, 0, 0, time.FixedZone("x", 11*3600)), 1, time.Date(2014, 1, 16, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2014, 1, 15, 0, 0, 0, 0, time.UTC), 1 << 30, time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := dayEnd(tt.t, tt.days, day)
		if ok != tt.ok || (ok && !got.Equal(tt.want)) {
			t.Fatalf("dayEnd(%v, %d) = %v %v, want %v %v", tt.t, tt.days, got, ok, tt.want, tt.ok)
		}
	}
}

// BenchmarkLifecycleScan measures a pass over a bucket none of whose
// objects is due: the cost every interval brings.
func BenchmarkLifecycleScan(b *testing.B) {
	e := newLifecycleEnv(b, Config{})
	e.ok(call{method: "PUT", path: "/scan", user: "alice"}, 200)
	const n = 2000
	for i := 0; i < n; i++ {
		e.put("alice", fmt.Sprintf("/scan/d%02d/k%04d", i%20, i), "x")
	}
	e.setLifecycle("scan", `<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>30</Days></Expiration></Rule>`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.run()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/object")
}

// BenchmarkLifecycleExpire measures expiring objects.
func BenchmarkLifecycleExpire(b *testing.B) {
	e := newLifecycleEnv(b, Config{})
	e.ok(call{method: "PUT", path: "/exp", user: "alice"}, 200)
	e.setLifecycle("exp", `<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`)
	const n = 200
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := 0; j < n; j++ {
			e.put("alice", fmt.Sprintf("/exp/d%d/k%03d", j%10, j), "x")
		}
		e.clock.Advance(2 * time.Second)
		b.StartTimer()
		e.run()
	}
	b.StopTimer()
	if len(e.keys("exp")) != 0 {
		b.Fatal("objects left")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/object")
}
