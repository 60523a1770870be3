package sigv4

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The published AWS examples: the generic SigV4 test suite (service
// "service"), the S3 header-signing and presigned-URL examples, and the
// S3 streaming examples with and without trailers. They pin the canonical
// forms and the key derivation to values computed by AWS.

func TestSigningKeyVector(t *testing.T) {
	got := hex.EncodeToString(deriveSigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "service"))
	if got != "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75" {
		t.Fatalf("signing key %s", got)
	}
}

// rawRequest builds a server-side request as net/http would hand it over.
func rawRequest(t testing.TB, method, target, host string, headers [][2]string, body []byte) *http.Request {
	t.Helper()
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n")
	for _, h := range headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	if body != nil {
		b.WriteString("Content-Length: " + itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n")
	r, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(b.String()), bytes.NewReader(body))))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAWSTestSuiteVectors(t *testing.T) {
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	v := &Verifier{
		Secrets: secretMap{"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
		Region:  "us-east-1",
		Now:     func() time.Time { return at },
		service: "service",
	}
	cases := []struct {
		name, method, target, sig string
	}{
		{"get-vanilla", "GET", "/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"get-utf8", "GET", "/%E1%88%B4", "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
		{"post-vanilla", "POST", "/", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			auth := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + c.sig
			r := rawRequest(t, c.method, c.target, "example.amazonaws.com", [][2]string{{"X-Amz-Date", "20150830T123600Z"}, {"Authorization", auth}}, nil)
			ver, err := v.Verify(r)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ver.AccessKey != "AKIDEXAMPLE" {
				t.Fatalf("access key %q", ver.AccessKey)
			}
			// one digit off must fail
			r = rawRequest(t, c.method, c.target, "example.amazonaws.com", [][2]string{{"X-Amz-Date", "20150830T123600Z"}, {"Authorization", string(flipHex([]byte(auth), len(auth)-1))}}, nil)
			if _, err := v.Verify(r); errCode(err) != "SignatureDoesNotMatch" {
				t.Fatalf("altered signature: %v", err)
			}
		})
	}
}

const (
	docAccess = "AKIAIOSFODNN7EXAMPLE"
	docHost   = "examplebucket.s3.amazonaws.com"
)

func docVerifier(at time.Time) *Verifier {
	return newTestVerifier(func() time.Time { return at })
}

func TestS3DocumentationVectors(t *testing.T) {
	v := docVerifier(time.Date(2013, 5, 24, 0, 0, 5, 0, time.UTC))
	cred := "AWS4-HMAC-SHA256 Credential=" + docAccess + "/20130524/us-east-1/s3/aws4_request,"
	welcome := []byte("Welcome to Amazon S3.")
	cases := []struct {
		name    string
		method  string
		target  string
		headers [][2]string
		body    []byte
	}{
		{"GET object", "GET", "/test.txt", [][2]string{
			{"Range", "bytes=0-9"},
			{"x-amz-content-sha256", emptySHA256},
			{"x-amz-date", "20130524T000000Z"},
			{"Authorization", cred + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
		}, nil},
		// The example's key holds a "$" that the client may send raw; the
		// canonical URI encodes it.
		{"PUT object, raw $", "PUT", "/test$file.text", [][2]string{
			{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
			{"x-amz-date", "20130524T000000Z"},
			{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
			{"x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"},
			{"Authorization", cred + "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
		}, welcome},
		{"PUT object, encoded $", "PUT", "/test%24file.text", [][2]string{
			{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
			{"x-amz-date", "20130524T000000Z"},
			{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
			{"x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"},
			{"Authorization", cred + "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
		}, welcome},
		{"GET bucket lifecycle", "GET", "/?lifecycle", [][2]string{
			{"x-amz-date", "20130524T000000Z"},
			{"x-amz-content-sha256", emptySHA256},
			{"Authorization", cred + "SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
		}, nil},
		{"GET bucket list", "GET", "/?max-keys=2&prefix=J", [][2]string{
			{"x-amz-date", "20130524T000000Z"},
			{"x-amz-content-sha256", emptySHA256},
			{"Authorization", cred + "SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ver, err := v.Verify(rawRequest(t, c.method, c.target, docHost, c.headers, c.body))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(ver.Body)
			if err != nil || !bytes.Equal(got, c.body) {
				t.Fatalf("body %q, %v", got, err)
			}
			if ver.AccessKey != docAccess {
				t.Fatalf("access key %q", ver.AccessKey)
			}
		})
	}
}

func TestS3DocumentationPresignedVector(t *testing.T) {
	target := "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
		"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
		"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	cases := []struct {
		name string
		at   time.Time
		want string
	}{
		{"valid", time.Date(2013, 5, 24, 10, 0, 0, 0, time.UTC), ""},
		{"last second", time.Date(2013, 5, 24, 23, 59, 59, 0, time.UTC), ""},
		{"expired", time.Date(2013, 5, 25, 0, 0, 0, 0, time.UTC), "AccessDenied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ver, err := docVerifier(c.at).Verify(rawRequest(t, "GET", target, docHost, nil, nil))
			if errCode(err) != c.want {
				t.Fatalf("Verify: %v, want %q", err, c.want)
			}
			if err == nil && (!ver.Presigned || ver.AccessKey != docAccess) {
				t.Fatalf("presigned %v key %q", ver.Presigned, ver.AccessKey)
			}
			if err != nil && !strings.Contains(err.Error(), "Request has expired") {
				t.Fatalf("message %q", err.Error())
			}
		})
	}
}

// The S3 streaming example: 65 KiB of 'a' in a 64 KiB and a 1 KiB chunk.
func docStreamRequest(t testing.TB, body []byte) *http.Request {
	return rawRequest(t, "PUT", "/examplebucket/chunkObject.txt", "s3.amazonaws.com", [][2]string{
		{"x-amz-date", "20130524T000000Z"},
		{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
		{"Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
			"SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class," +
			"Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"},
		{"x-amz-content-sha256", streamingSigned},
		{"Content-Encoding", "aws-chunked"},
		{"x-amz-decoded-content-length", "66560"},
	}, body)
}

func docStreamBody() []byte {
	var b bytes.Buffer
	b.WriteString("10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n")
	b.Write(bytes.Repeat([]byte{'a'}, 65536))
	b.WriteString("\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n")
	b.Write(bytes.Repeat([]byte{'a'}, 1024))
	b.WriteString("\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")
	return b.Bytes()
}

func TestS3DocumentationStreamingVector(t *testing.T) {
	v := docVerifier(time.Date(2013, 5, 24, 0, 1, 0, 0, time.UTC))
	body := docStreamBody()
	if len(body) != 66824 {
		t.Fatalf("example body is %d bytes, the example says 66824", len(body))
	}
	cases := []struct {
		name     string
		body     []byte
		wantRead string
	}{
		{"as published", body, ""},
		{"second chunk's data altered", flipped(body, 66000), "SignatureDoesNotMatch"},
		{"first chunk's signature altered", flipHex(body, 30), "SignatureDoesNotMatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ver, err := v.Verify(docStreamRequest(t, c.body))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(ver.Body)
			if errCode(err) != c.wantRead {
				t.Fatalf("read: %v, want %q", err, c.wantRead)
			}
			if c.wantRead == "" && (len(got) != 66560 || bytes.Count(got, []byte{'a'}) != 66560 || ver.DecodedLength != 66560) {
				t.Fatalf("decoded %d bytes", len(got))
			}
		})
	}
}

// The S3 trailer example: the same payload signed with a trailing CRC32C.
func TestS3DocumentationTrailerVector(t *testing.T) {
	v := docVerifier(time.Date(2013, 5, 24, 0, 1, 0, 0, time.UTC))
	const trailerSig = "x-amz-trailer-signature:63bddb248ad2590c92712055f51b8e78ab024eead08276b24f010b0efd74843f"
	chunks := func(tail string) []byte {
		var b bytes.Buffer
		b.WriteString("10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n")
		b.Write(bytes.Repeat([]byte{'a'}, 65536))
		b.WriteString("\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n")
		b.Write(bytes.Repeat([]byte{'a'}, 1024))
		b.WriteString("\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n")
		b.WriteString(tail)
		return b.Bytes()
	}
	cases := []struct {
		name     string
		body     []byte
		wantRead string
	}{
		{"as published", chunks("x-amz-checksum-crc32c:sOO8/Q==\r\n" + trailerSig + "\r\n\r\n"), ""},
		{"bare LF and a blank line before the signature", chunks("x-amz-checksum-crc32c:sOO8/Q==\n\r\n" + trailerSig + "\r\n\r\n"), ""},
		{"no final blank line", chunks("x-amz-checksum-crc32c:sOO8/Q==\r\n" + trailerSig), ""},
		{"trailer value altered", chunks("x-amz-checksum-crc32c:AAAAAA==\r\n" + trailerSig + "\r\n\r\n"), "SignatureDoesNotMatch"},
		{"trailer signature altered", chunks("x-amz-checksum-crc32c:sOO8/Q==\r\n" + string(flipHex([]byte(trailerSig), 30)) + "\r\n\r\n"), "SignatureDoesNotMatch"},
		{"trailer after the signature", chunks(trailerSig + "\r\nx-amz-checksum-crc32c:sOO8/Q==\r\n\r\n"), "InvalidRequest"},
		{"no trailer signature", chunks("x-amz-checksum-crc32c:sOO8/Q==\r\n\r\n"), "SignatureDoesNotMatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rawRequest(t, "PUT", "/examplebucket/chunkObject.txt", "s3.amazonaws.com", [][2]string{
				{"x-amz-date", "20130524T000000Z"},
				{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
				{"Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
					"SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer," +
					"Signature=106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"},
				{"x-amz-content-sha256", streamingSignedTrailer},
				{"Content-Encoding", "aws-chunked"},
				{"x-amz-decoded-content-length", "66560"},
				{"x-amz-trailer", "x-amz-checksum-crc32c"},
			}, c.body)
			ver, err := v.Verify(r)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(ver.Body)
			if errCode(err) != c.wantRead {
				t.Fatalf("read: %v, want %q", err, c.wantRead)
			}
			if c.wantRead == "" {
				if len(got) != 66560 || ver.Checksums()["CRC32C"] != "sOO8/Q==" {
					t.Fatalf("decoded %d bytes, checksums %v", len(got), ver.Checksums())
				}
			}
		})
	}
}
