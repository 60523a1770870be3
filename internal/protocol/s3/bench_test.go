package s3

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func benchEnv(b *testing.B) *env { return newEnv(b, Config{}) }

// fill stores n keys named by name(i) in bucket bkt.
func (e *env) fill(b testing.TB, n int, name func(i int) string) {
	for i := 0; i < n; i++ {
		w := e.do(call{method: "PUT", path: "/bkt/" + name(i), user: "alice", body: "x"})
		if w.Code != 200 {
			b.Fatalf("PUT %s: %d %s", name(i), w.Code, w.Body.String())
		}
	}
}

// walkAll lists every key of bkt with ListObjectsV2 pages of 1000 and
// returns how many it saw.
func (e *env) walkAll(b testing.TB) int {
	n, token := 0, ""
	for {
		q := url.Values{"list-type": {"2"}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		r := httptest.NewRequest("GET", "http://s3.test/bkt?"+q.Encode(), nil)
		r.Header.Set("X-Test-Key", "alice")
		w := httptest.NewRecorder()
		e.s.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("list: %d %s", w.Code, w.Body.String())
		}
		body := w.Body.String()
		n += strings.Count(body, "<Contents>")
		i := strings.Index(body, "<NextContinuationToken>")
		if i < 0 {
			return n
		}
		rest := body[i+len("<NextContinuationToken>"):]
		token = rest[:strings.Index(rest, "<")]
	}
}

// BenchmarkListWalk10000 walks 10,000 keys with ListObjectsV2, flat and in
// 100 directories of 100.
func BenchmarkListWalk10000(b *testing.B) {
	for _, layout := range []struct {
		name string
		key  func(i int) string
	}{
		{"flat", func(i int) string { return fmt.Sprintf("key-%05d", i) }},
		{"nested", func(i int) string { return fmt.Sprintf("dir%02d/key-%05d", i/100, i) }},
	} {
		b.Run(layout.name, func(b *testing.B) {
			e := benchEnv(b)
			e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
			e.fill(b, 10000, layout.key)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if n := e.walkAll(b); n != 10000 {
					b.Fatalf("walk saw %d keys", n)
				}
			}
		})
	}
}

// BenchmarkPut4K measures 4 KiB PUTs through the handler.
func BenchmarkPut4K(b *testing.B) {
	e := benchEnv(b)
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	body := strings.Repeat("x", 4096)
	b.SetBytes(4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := e.do(call{method: "PUT", path: "/bkt/obj-" + strconv.Itoa(i), user: "alice", body: body})
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkGet4K measures 4 KiB GETs through the handler.
func BenchmarkGet4K(b *testing.B) {
	e := benchEnv(b)
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	e.put("alice", "/bkt/obj", strings.Repeat("x", 4096))
	b.SetBytes(4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := e.do(call{method: "GET", path: "/bkt/obj", user: "alice"})
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkPut4KParallel measures 4 KiB PUTs from 16 concurrent clients,
// of new keys and of keys that already exist (each PUT replaces an object,
// whose old file the background reaper then purges).
func BenchmarkPut4KParallel(b *testing.B) {
	for _, tt := range []struct {
		name string
		keys int64 // 0: every PUT a new key
	}{{"new", 0}, {"overwrite", 1000}} {
		b.Run(tt.name, func(b *testing.B) {
			e := benchEnv(b)
			e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
			body := strings.Repeat("x", 4096)
			key := func(n int64) string {
				if tt.keys > 0 {
					n %= tt.keys
				}
				return "/bkt/obj-" + strconv.FormatInt(n, 10)
			}
			if tt.keys > 0 {
				for n := int64(0); n < tt.keys; n++ {
					e.ok(call{method: "PUT", path: key(n), user: "alice", body: body}, 200)
				}
			}
			var seq atomic.Int64
			b.SetBytes(4096)
			b.SetParallelism(8) // 8 x GOMAXPROCS(2) = 16 clients
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := httptest.NewRequest("PUT", "http://s3.test"+key(seq.Add(1)), strings.NewReader(body))
					r.Header.Set("X-Test-Key", "alice")
					r.Header.Set("Content-Length", "4096")
					w := httptest.NewRecorder()
					e.s.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Error(w.Code)
						return
					}
				}
			})
		})
	}
}

// discardResponse is a ResponseWriter that keeps only the status and the
// byte count, so that large GETs measure the server, not a buffer.
type discardResponse struct {
	header http.Header
	status int
	n      int64
}

func (d *discardResponse) Header() http.Header { return d.header }
func (d *discardResponse) WriteHeader(status int) {
	if d.status == 0 {
		d.status = status
	}
}
func (d *discardResponse) Write(p []byte) (int, error) {
	d.WriteHeader(200)
	d.n += int64(len(p))
	return len(p), nil
}

// BenchmarkGet64MiB measures whole GETs of a 64 MiB object through the
// handler (its blocks mostly in the page cache after the first).
func BenchmarkGet64MiB(b *testing.B) {
	e := benchEnv(b)
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	const size = 64 << 20
	e.put("alice", "/bkt/big", strings.Repeat("0123456789abcdef", size/16))
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest("GET", "http://s3.test/bkt/big", nil)
		r.Header.Set("X-Test-Key", "alice")
		w := &discardResponse{header: http.Header{}}
		e.s.ServeHTTP(w, r)
		if w.status != 200 || w.n != size {
			b.Fatalf("GET: status %d, %d bytes", w.status, w.n)
		}
	}
}
