package sigv4

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// TestLargeBodyMD5 covers bodies long enough for MD5 to be hashed on its
// own goroutine: the digest must equal the inline one, and the goroutine
// must end however the body ends.
func TestLargeBodyMD5(t *testing.T) {
	data := pattern(5<<20 + 12345)
	sum := md5.Sum(data)
	want := hex.EncodeToString(sum[:])
	v := newTestVerifier(fixedNow)
	before := runtime.NumGoroutine()

	type result struct {
		n   int
		err error
		md5 string
	}
	read := func(ver *Verified, limit int, readSize int) result {
		buf := make([]byte, readSize)
		var r result
		for r.n < limit {
			n, err := ver.Body.Read(buf)
			r.n += n
			if err != nil {
				if err != io.EOF {
					r.err = err
				}
				break
			}
		}
		r.md5 = ver.MD5Hex()
		return r
	}
	newReq := func(ctx context.Context, body io.Reader, length int64, chunked bool) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://gw.test/bucket/big", body)
		req.ContentLength = length
		req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
		if chunked {
			req.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailr)
		}
		return req
	}
	t.Run("known length", func(t *testing.T) {
		for _, rs := range []int{1000, 64 << 10, 1 << 20} {
			ver, err := v.Verify(newReq(context.Background(), bytes.NewReader(data), int64(len(data)), false))
			if err != nil {
				t.Fatal(err)
			}
			if r := read(ver, len(data)+1, rs); r.err != nil || r.n != len(data) || r.md5 != want {
				t.Fatalf("read size %d: %d bytes, %v, md5 %s", rs, r.n, r.err, r.md5)
			}
			ver.Body.Close()
		}
	})
	t.Run("length learnt while reading", func(t *testing.T) {
		enc := encodeChunks(data, 64<<10, nil, nil)
		ver, err := v.Verify(newReq(context.Background(), bytes.NewReader(enc), int64(len(enc)), true))
		if err != nil || ver.DecodedLength != -1 {
			t.Fatal(err, ver.DecodedLength)
		}
		if r := read(ver, len(data)+1, 32<<10); r.err != nil || r.n != len(data) || r.md5 != want {
			t.Fatalf("%d bytes, %v, md5 %s", r.n, r.err, r.md5)
		}
	})
	t.Run("Content-MD5 checked against the async digest", func(t *testing.T) {
		req := newReq(context.Background(), bytes.NewReader(data), int64(len(data)), false)
		req.Header.Set("Content-Md5", md5B64(data[1:]))
		ver, _ := v.Verify(req)
		if r := read(ver, len(data)+1, 1<<20); errCode(r.err) != "BadDigest" || r.md5 != "" {
			t.Fatalf("%v, md5 %q", r.err, r.md5)
		}
	})
	t.Run("closed half way", func(t *testing.T) {
		ver, _ := v.Verify(newReq(context.Background(), bytes.NewReader(data), int64(len(data)), false))
		read(ver, 3<<20, 64<<10)
		ver.Body.Close()
		if ver.MD5() != nil {
			t.Fatal("an MD5 for half a body")
		}
	})
	t.Run("connection lost half way", func(t *testing.T) {
		body := io.MultiReader(bytes.NewReader(data[:3<<20]), errReader{io.ErrUnexpectedEOF})
		ver, _ := v.Verify(newReq(context.Background(), body, int64(len(data)), false))
		if r := read(ver, len(data)+1, 64<<10); errCode(r.err) != "IncompleteBody" {
			t.Fatalf("%v", r.err)
		}
	})
	t.Run("request ended half way", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		go func() {
			pw.Write(data[:3<<20])
			cancel()
			time.Sleep(50 * time.Millisecond)
			pw.Write(data[3<<20:])
			pw.Close()
		}()
		ver, _ := v.Verify(newReq(ctx, pr, int64(len(data)), false))
		r := read(ver, len(data)+1, 64<<10)
		if r.err == nil || r.md5 != "" {
			t.Fatalf("a body whose request ended gave %d bytes, %v, md5 %q", r.n, r.err, r.md5)
		}
		pr.Close()
	})
	// every hashing goroutine has ended
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
