package s3

import (
	"strings"
	"testing"
)

type versionsXML struct {
	IsTruncated         bool
	NextKeyMarker       string
	NextVersionIdMarker string
	Versions            []struct {
		Key, VersionId string
		IsLatest       bool
		Size           int64
	} `xml:"Version"`
	DeleteMarkers []struct {
		Key, VersionId string
		IsLatest       bool
	} `xml:"DeleteMarker"`
}

func (e *env) versions(bucket, query string) versionsXML {
	e.t.Helper()
	var v versionsXML
	decodeXML(e.t, e.ok(call{method: "GET", path: "/" + bucket + "?versions" + query, user: "alice"}, 200), &v)
	return v
}

// TestVersioningNullOnPlainBucket is what s3-tests' fixtures do around
// every test: list versions and delete them with VersionId=null.
func TestVersioningNullOnPlainBucket(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	e.put("alice", "/bkt/a", "1")
	e.put("alice", "/bkt/d/b", "2")
	v := e.versions("bkt", "")
	if len(v.Versions) != 2 || v.Versions[0].Key != "a" || v.Versions[0].VersionId != "null" || !v.Versions[0].IsLatest {
		t.Fatalf("versions %+v", v)
	}
	var del struct {
		Deleted []struct{ Key, VersionId string }
		Error   []struct{ Key, Code string }
	}
	decodeXML(t, e.ok(call{method: "POST", path: "/bkt?delete", user: "alice",
		body: `<Delete><Object><Key>a</Key><VersionId>null</VersionId></Object><Object><Key>d/b</Key><VersionId>null</VersionId></Object><Object><Key>zz</Key></Object></Delete>`}, 200), &del)
	if len(del.Deleted) != 3 || len(del.Error) != 0 || del.Deleted[0].VersionId != "null" {
		t.Fatalf("delete objects %+v", del)
	}
	if v := e.versions("bkt", ""); len(v.Versions) != 0 {
		t.Fatalf("left %+v", v)
	}
	e.ok(call{method: "DELETE", path: "/bkt", user: "alice"}, 204)
}

func TestVersioning(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/ver", user: "alice"}, 200)
	e.put("alice", "/ver/k", "v0") // the null version, before versioning
	e.ok(call{method: "PUT", path: "/ver?versioning", user: "alice", body: "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"}, 200)
	if !strings.Contains(e.ok(call{method: "GET", path: "/ver?versioning", user: "alice"}, 200).Body.String(), "<Status>Enabled</Status>") {
		t.Fatal("versioning not enabled")
	}
	v1 := e.put("alice", "/ver/k", "v1").Header().Get("X-Amz-Version-Id")
	v2 := e.put("alice", "/ver/k", "v2").Header().Get("X-Amz-Version-Id")
	if len(v1) != 24 || len(v2) != 24 || v1 == v2 {
		t.Fatalf("version ids %q %q", v1, v2)
	}
	if got := e.get("alice", "/ver/k"); got != "v2" {
		t.Fatalf("current %q", got)
	}
	for vid, want := range map[string]string{v1: "v1", v2: "v2", "null": "v0"} {
		if got := e.get("alice", "/ver/k?versionId="+vid); got != want {
			t.Fatalf("version %s reads %q, want %q", vid, got, want)
		}
	}
	e.fails(call{method: "GET", path: "/ver/k?versionId=000000000000000000000000", user: "alice"}, "NoSuchVersion", 404)
	v := e.versions("ver", "")
	if len(v.Versions) != 3 || v.Versions[0].VersionId != v2 || !v.Versions[0].IsLatest || v.Versions[1].VersionId != v1 || v.Versions[2].VersionId != "null" || v.Versions[1].IsLatest {
		t.Fatalf("versions %+v", v)
	}
	// Paging through versions one at a time.
	var seen []string
	marker := ""
	for {
		q := "&max-keys=1"
		if marker != "" {
			q += "&key-marker=k&version-id-marker=" + marker
		}
		p := e.versions("ver", q)
		for _, x := range p.Versions {
			seen = append(seen, x.VersionId)
		}
		if !p.IsTruncated {
			break
		}
		marker = p.NextVersionIdMarker
	}
	if strings.Join(seen, ",") != v2+","+v1+",null" {
		t.Fatalf("paged versions %v", seen)
	}
	// DELETE makes a delete marker; the key is gone but its versions stay.
	w := e.ok(call{method: "DELETE", path: "/ver/k", user: "alice"}, 204)
	dm := w.Header().Get("X-Amz-Version-Id")
	if w.Header().Get("X-Amz-Delete-Marker") != "true" || len(dm) != 24 {
		t.Fatalf("delete marker headers %v", w.Header())
	}
	e.fails(call{method: "GET", path: "/ver/k", user: "alice"}, "NoSuchKey", 404)
	if h := e.do(call{method: "GET", path: "/ver/k", user: "alice"}).Header(); h.Get("X-Amz-Delete-Marker") != "true" {
		t.Fatalf("404 headers %v", h)
	}
	e.fails(call{method: "GET", path: "/ver/k?versionId=" + dm, user: "alice"}, "MethodNotAllowed", 405)
	v = e.versions("ver", "")
	if len(v.DeleteMarkers) != 1 || !v.DeleteMarkers[0].IsLatest || len(v.Versions) != 3 || v.Versions[0].IsLatest {
		t.Fatalf("versions after delete %+v", v)
	}
	e.fails(call{method: "DELETE", path: "/ver", user: "alice"}, "BucketNotEmpty", 409)
	// Deleting the marker brings v2 back.
	e.ok(call{method: "DELETE", path: "/ver/k?versionId=" + dm, user: "alice"}, 204)
	if got := e.get("alice", "/ver/k"); got != "v2" {
		t.Fatalf("after removing the marker: %q", got)
	}
	// Deleting the current version makes the previous one current.
	e.ok(call{method: "DELETE", path: "/ver/k?versionId=" + v2, user: "alice"}, 204)
	if got := e.get("alice", "/ver/k"); got != "v1" {
		t.Fatalf("after removing v2: %q", got)
	}
	// Suspended: writes replace the null version.
	e.ok(call{method: "PUT", path: "/ver?versioning", user: "alice", body: "<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>"}, 200)
	// As S3 does, a PUT in a suspended bucket names no version.
	if id := e.put("alice", "/ver/k", "s1").Header().Get("X-Amz-Version-Id"); id != "" {
		t.Fatalf("suspended PUT version %q", id)
	}
	e.put("alice", "/ver/k", "s2")
	v = e.versions("ver", "")
	if len(v.Versions) != 2 || v.Versions[0].VersionId != "null" || v.Versions[1].VersionId != v1 {
		t.Fatalf("suspended versions %+v", v)
	}
	// Remove everything, as the s3-tests fixtures do.
	var objs strings.Builder
	for _, x := range v.Versions {
		objs.WriteString("<Object><Key>" + x.Key + "</Key><VersionId>" + x.VersionId + "</VersionId></Object>")
	}
	e.ok(call{method: "POST", path: "/ver?delete", user: "alice", body: "<Delete>" + objs.String() + "</Delete>"}, 200)
	if v := e.versions("ver", ""); len(v.Versions)+len(v.DeleteMarkers) != 0 {
		t.Fatalf("left %+v", v)
	}
	e.ok(call{method: "DELETE", path: "/ver", user: "alice"}, 204)
}

func TestVersionListingAcrossKeys(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/ver", user: "alice"}, 200)
	e.ok(call{method: "PUT", path: "/ver?versioning", user: "alice", body: "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"}, 200)
	for _, k := range []string{"a", "b/c", "b/d", "e"} {
		e.put("alice", "/ver/"+k, "1")
		e.put("alice", "/ver/"+k, "2")
	}
	e.ok(call{method: "DELETE", path: "/ver/b/c", user: "alice"}, 204)
	v := e.versions("ver", "&delimiter=/")
	var prefixes struct {
		CommonPrefixes []struct{ Prefix string }
	}
	decodeXML(t, e.ok(call{method: "GET", path: "/ver?versions&delimiter=/", user: "alice"}, 200), &prefixes)
	if len(v.Versions) != 4 || len(prefixes.CommonPrefixes) != 1 || prefixes.CommonPrefixes[0].Prefix != "b/" {
		t.Fatalf("with delimiter: %+v %+v", v, prefixes)
	}
	v = e.versions("ver", "&prefix=b/")
	if len(v.Versions) != 4 || len(v.DeleteMarkers) != 1 || v.Versions[0].Key != "b/c" || v.Versions[2].Key != "b/d" {
		t.Fatalf("prefix b/: %+v", v)
	}
	var all []string
	km, vm := "", ""
	for {
		q := "&max-keys=3"
		if km != "" {
			q += "&key-marker=" + km + "&version-id-marker=" + vm
		}
		p := e.versions("ver", q)
		for _, x := range p.Versions {
			all = append(all, x.Key)
		}
		for _, x := range p.DeleteMarkers {
			all = append(all, x.Key+"(dm)")
		}
		if !p.IsTruncated {
			break
		}
		km, vm = p.NextKeyMarker, p.NextVersionIdMarker
	}
	if len(all) != 9 {
		t.Fatalf("paged %v", all)
	}
}

func TestObjectLock(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/locked", user: "alice", header: map[string]string{"X-Amz-Bucket-Object-Lock-Enabled": "true"}}, 200)
	e.ok(call{method: "PUT", path: "/plain", user: "alice"}, 200)
	e.fails(call{method: "PUT", path: "/plain?object-lock", user: "alice", body: "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>"}, "InvalidBucketState", 409)
	e.fails(call{method: "GET", path: "/plain?object-lock", user: "alice"}, "ObjectLockConfigurationNotFoundError", 404)
	e.ok(call{method: "PUT", path: "/locked?object-lock", user: "alice", body: "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>"}, 200)
	e.fails(call{method: "PUT", path: "/locked?versioning", user: "alice", body: "<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>"}, "InvalidBucketState", 409)
	vid := e.put("alice", "/locked/k", "data").Header().Get("X-Amz-Version-Id")
	if !strings.Contains(e.ok(call{method: "GET", path: "/locked/k?retention", user: "alice"}, 200).Body.String(), "GOVERNANCE") {
		t.Fatal("default retention not applied")
	}
	e.fails(call{method: "DELETE", path: "/locked/k?versionId=" + vid, user: "alice"}, "AccessDenied", 403)
	e.ok(call{method: "DELETE", path: "/locked/k?versionId=" + vid, user: "alice", header: map[string]string{"X-Amz-Bypass-Governance-Retention": "true"}}, 204)
	vid = e.ok(call{method: "PUT", path: "/locked/h", user: "alice", body: "x", header: map[string]string{"X-Amz-Object-Lock-Legal-Hold": "ON"}}, 200).Header().Get("X-Amz-Version-Id")
	e.fails(call{method: "DELETE", path: "/locked/h?versionId=" + vid, user: "alice", header: map[string]string{"X-Amz-Bypass-Governance-Retention": "true"}}, "AccessDenied", 403)
	// A delete without a version id only adds a marker: allowed.
	e.ok(call{method: "DELETE", path: "/locked/h", user: "alice"}, 204)
	e.ok(call{method: "PUT", path: "/locked/h?legal-hold&versionId=" + vid, user: "alice", body: "<LegalHold><Status>OFF</Status></LegalHold>"}, 200)
	e.ok(call{method: "DELETE", path: "/locked/h?versionId=" + vid, user: "alice", header: map[string]string{"X-Amz-Bypass-Governance-Retention": "true"}}, 204)
	e.fails(call{method: "PUT", path: "/plain/x", user: "alice", body: "x", header: map[string]string{"X-Amz-Object-Lock-Legal-Hold": "ON"}}, "InvalidRequest", 400)
}

func TestBucketConfiguration(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/cfg", user: "alice"}, 200)
	tag := "<Tagging><TagSet><Tag><Key>team</Key><Value>storage</Value></Tag></TagSet></Tagging>"
	e.fails(call{method: "GET", path: "/cfg?tagging", user: "alice"}, "NoSuchTagSet", 404)
	e.ok(call{method: "PUT", path: "/cfg?tagging", user: "alice", body: tag}, 200)
	if !strings.Contains(e.ok(call{method: "GET", path: "/cfg?tagging", user: "alice"}, 200).Body.String(), "<Key>team</Key><Value>storage</Value>") {
		t.Fatal("bucket tags not returned")
	}
	e.ok(call{method: "DELETE", path: "/cfg?tagging", user: "alice"}, 204)
	e.fails(call{method: "GET", path: "/cfg?tagging", user: "alice"}, "NoSuchTagSet", 404)
	// CORS, and its preflight.
	e.fails(call{method: "OPTIONS", path: "/cfg/x", header: map[string]string{"Origin": "http://a.example", "Access-Control-Request-Method": "GET"}}, "AccessForbidden", 403)
	cors := "<CORSConfiguration><CORSRule><AllowedOrigin>http://*.example</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>x-custom-*</AllowedHeader><MaxAgeSeconds>60</MaxAgeSeconds></CORSRule></CORSConfiguration>"
	e.ok(call{method: "PUT", path: "/cfg?cors", user: "alice", body: cors}, 200)
	w := e.ok(call{method: "OPTIONS", path: "/cfg/x", header: map[string]string{"Origin": "http://a.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-Custom-One"}}, 200)
	if w.Header().Get("Access-Control-Allow-Origin") != "http://a.example" || w.Header().Get("Access-Control-Max-Age") != "60" {
		t.Fatalf("preflight headers %v", w.Header())
	}
	e.fails(call{method: "OPTIONS", path: "/cfg/x", header: map[string]string{"Origin": "http://a.example", "Access-Control-Request-Method": "PUT"}}, "AccessForbidden", 403)
	e.fails(call{method: "OPTIONS", path: "/cfg/x", header: map[string]string{"Origin": "http://evil.test", "Access-Control-Request-Method": "GET"}}, "AccessForbidden", 403)
	e.fails(call{method: "OPTIONS", path: "/cfg/x", header: map[string]string{"Origin": "http://a.example"}}, "InvalidRequest", 400)
	e.put("alice", "/cfg/x", "1")
	w = e.ok(call{method: "GET", path: "/cfg/x", user: "alice", header: map[string]string{"Origin": "http://a.example"}}, 200)
	if w.Header().Get("Access-Control-Allow-Origin") != "http://a.example" {
		t.Fatalf("CORS headers on GET: %v", w.Header())
	}
	e.ok(call{method: "DELETE", path: "/cfg?cors", user: "alice"}, 204)
	e.fails(call{method: "GET", path: "/cfg?cors", user: "alice"}, "NoSuchCORSConfiguration", 404)
	// ACLs.
	if b := e.ok(call{method: "GET", path: "/cfg?acl", user: "alice"}, 200).Body.String(); !strings.Contains(b, "FULL_CONTROL") || strings.Contains(b, "AllUsers") {
		t.Fatalf("private ACL: %s", b)
	}
	e.ok(call{method: "PUT", path: "/cfg?acl", user: "alice", header: map[string]string{"X-Amz-Acl": "public-read"}}, 200)
	if b := e.ok(call{method: "GET", path: "/cfg?acl", user: "alice"}, 200).Body.String(); !strings.Contains(b, "AllUsers") {
		t.Fatalf("public-read ACL: %s", b)
	}
	e.ok(call{method: "GET", path: "/cfg?list-type=2"}, 200)
	e.ok(call{method: "PUT", path: "/cfg/x?acl", user: "alice", header: map[string]string{"X-Amz-Grant-Read": `id="bob"`}}, 200)
	if got := e.get("bob", "/cfg/x"); got != "1" {
		t.Fatalf("bob reads %q", got)
	}
	e.fails(call{method: "PUT", path: "/cfg/x?acl", user: "alice", header: map[string]string{"X-Amz-Grant-Read": `id="nobody-here"`}}, "InvalidArgument", 400)
	e.fails(call{method: "PUT", path: "/cfg/x?acl", user: "alice", header: map[string]string{"X-Amz-Acl": "public-read", "X-Amz-Grant-Read": `id="bob"`}}, "InvalidRequest", 400)
	// Object tagging.
	e.ok(call{method: "PUT", path: "/cfg/x?tagging", user: "alice", body: tag}, 200)
	if !strings.Contains(e.ok(call{method: "GET", path: "/cfg/x?tagging", user: "alice"}, 200).Body.String(), "<Key>team</Key>") {
		t.Fatal("object tags not returned")
	}
	e.ok(call{method: "DELETE", path: "/cfg/x?tagging", user: "alice"}, 204)
	if strings.Contains(e.ok(call{method: "GET", path: "/cfg/x?tagging", user: "alice"}, 200).Body.String(), "<Tag>") {
		t.Fatal("object tags not removed")
	}
	// Attributes.
	w = e.ok(call{method: "GET", path: "/cfg/x?attributes", user: "alice", header: map[string]string{"X-Amz-Object-Attributes": "ETag,ObjectSize,StorageClass"}}, 200)
	if b := w.Body.String(); !strings.Contains(b, "<ObjectSize>1</ObjectSize>") || !strings.Contains(b, "<StorageClass>STANDARD</StorageClass>") {
		t.Fatalf("attributes %s", b)
	}
	// Unsupported configurations answer clearly.
	e.fails(call{method: "GET", path: "/cfg?lifecycle", user: "alice"}, "NoSuchLifecycleConfiguration", 404)
	e.fails(call{method: "PUT", path: "/cfg?website", user: "alice", body: "<x/>"}, "NotImplemented", 501)
	if !strings.Contains(e.ok(call{method: "GET", path: "/cfg?location", user: "alice"}, 200).Body.String(), "LocationConstraint") {
		t.Fatal("location")
	}
}
