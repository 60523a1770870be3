package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// The aws-chunked framing, as the SigV4 streaming forms send it:
//
//	<hex size>[;chunk-signature=<64 hex>]\r\n<size bytes>\r\n   (repeated)
//	0[;chunk-signature=<64 hex>]\r\n                            (the final chunk)
//	[name:value\r\n ... [x-amz-trailer-signature:<64 hex>\r\n]] (the -TRAILER forms)
//	\r\n
//
// Clients differ in the line ends around the trailers (some end trailer
// lines with a bare \n, some put a blank line between the trailers and the
// trailer signature), so after the final chunk the decoder reads lines to
// the end of the body and ignores blank ones.
const (
	chunkBufSize    = 32 << 10
	maxChunkLine    = 4 << 10 // a chunk header or trailer line
	maxTrailerBytes = 16 << 10
	maxTrailers     = 32
	// maxChunkSize bounds one chunk's declared size: S3 takes at most
	// 5 GiB in one PUT. Nothing is allocated by size; the bound only keeps
	// the arithmetic sane and rejects nonsense early.
	maxChunkSize = 5 << 30
	// directReadMin is the smallest read passed straight to the source
	// instead of through the decoder's buffer.
	directReadMin = 4 << 10
	maxEmptyReads = 100
)

var chunkBufPool = sync.Pool{New: func() any {
	b := make([]byte, chunkBufSize)
	return &b
}}

type chunkState uint8

const (
	stHeader   chunkState = iota // before a chunk header line
	stData                       // inside a chunk's data
	stDataEnd                    // after a chunk's data, before its CRLF
	stTrailers                   // after the final chunk
	stDone
)

type trailerField struct{ name, value string }

// chunkedReader decodes an aws-chunked body, verifying each chunk's
// signature when the chunks are signed. It never holds more than one
// buffer of the body.
type chunkedReader struct {
	src    io.Reader
	bufp   *[]byte
	buf    []byte
	r, w   int
	srcErr error // what the source returned last (io.EOF included)

	state       chunkState
	left        int64 // data bytes left in the current chunk
	chunks      int
	decoded     int64
	want        int64 // x-amz-decoded-content-length, or -1
	trailerMode bool
	signer      *chunkSigner
	chunkSig    string
	trailers    []trailerField
	err         error
}

func newChunkedReader(src io.Reader, decodedLength int64, trailerMode bool) *chunkedReader {
	bp := chunkBufPool.Get().(*[]byte)
	return &chunkedReader{src: src, bufp: bp, buf: *bp, want: decodedLength, trailerMode: trailerMode}
}

// release gives the buffer back once the body is finished with.
func (c *chunkedReader) release() {
	if c.bufp != nil {
		chunkBufPool.Put(c.bufp)
		c.bufp, c.buf = nil, nil
		c.r, c.w = 0, 0
	}
}

func (c *chunkedReader) fail(err error) error {
	c.err = err
	c.release()
	return err
}

func malformedChunk(format string, args ...any) *s3err.Error {
	return s3err.InvalidRequest.With("The aws-chunked body is malformed: "+format, args...)
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	for {
		if c.err != nil {
			return 0, c.err
		}
		switch c.state {
		case stHeader:
			if err := c.readChunkHeader(); err != nil {
				return 0, c.fail(err)
			}
		case stData:
			if len(p) == 0 {
				return 0, nil
			}
			n, err := c.readData(p)
			if n > 0 {
				c.left -= int64(n)
				c.decoded += int64(n)
				if c.signer != nil {
					c.signer.sha.Write(p[:n])
				}
				if c.left == 0 {
					if err := c.endChunk(); err != nil {
						return 0, c.fail(err)
					}
					c.state = stDataEnd
				}
				return n, nil
			}
			if err != nil {
				if err == io.EOF {
					err = s3err.IncompleteBody.With("The body ended inside chunk %d, %d bytes short.", c.chunks, c.left)
				}
				return 0, c.fail(readError(err))
			}
		case stDataEnd:
			line, err := c.readLine()
			if err != nil {
				if err == io.EOF {
					err = s3err.IncompleteBody.With("The body ended after chunk %d without the final chunk.", c.chunks)
				}
				return 0, c.fail(readError(err))
			}
			if len(line) != 0 {
				return 0, c.fail(malformedChunk("chunk %d carries more data than its size says.", c.chunks))
			}
			c.state = stHeader
		case stTrailers:
			if err := c.readTrailers(); err != nil {
				return 0, c.fail(err)
			}
			c.state = stDone
			c.release()
		case stDone:
			return 0, io.EOF
		}
	}
}

// fill reads once from the source into the buffer.
func (c *chunkedReader) fill() {
	if c.r > 0 {
		copy(c.buf, c.buf[c.r:c.w])
		c.w -= c.r
		c.r = 0
	}
	for i := 0; i < maxEmptyReads; i++ {
		n, err := c.src.Read(c.buf[c.w:])
		c.w += n
		if err != nil {
			c.srcErr = err
			return
		}
		if n > 0 {
			return
		}
	}
	c.srcErr = io.ErrNoProgress
}

// readLine returns the next line without its \n or \r\n; the slice is
// valid until the next read. A last line cut off by the end of the body
// is returned as it is; after it, io.EOF.
func (c *chunkedReader) readLine() ([]byte, error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(c.buf[c.r+scanned:c.w], '\n'); i >= 0 {
			end := c.r + scanned + i
			line := c.buf[c.r:end]
			c.r = end + 1
			return bytes.TrimSuffix(line, []byte{'\r'}), nil
		}
		scanned = c.w - c.r
		if scanned > maxChunkLine {
			return nil, malformedChunk("a chunk header or trailer line is longer than %d bytes.", maxChunkLine)
		}
		if c.srcErr != nil {
			if c.srcErr == io.EOF && c.w > c.r {
				line := c.buf[c.r:c.w]
				c.r = c.w
				return bytes.TrimSuffix(line, []byte{'\r'}), nil
			}
			return nil, c.srcErr
		}
		c.fill()
	}
}

// readData reads at most the rest of the current chunk into p.
func (c *chunkedReader) readData(p []byte) (int, error) {
	max := len(p)
	if int64(max) > c.left {
		max = int(c.left)
	}
	for {
		if c.r < c.w {
			n := copy(p[:max], c.buf[c.r:c.w])
			c.r += n
			return n, nil
		}
		if c.srcErr != nil {
			return 0, c.srcErr
		}
		if max >= directReadMin {
			// Large reads go straight to the caller: most of the body
			// is never copied twice.
			for i := 0; i < maxEmptyReads; i++ {
				n, err := c.src.Read(p[:max])
				if err != nil {
					c.srcErr = err
				}
				if n > 0 || err != nil {
					return n, nil
				}
			}
			c.srcErr = io.ErrNoProgress
			continue
		}
		c.fill()
	}
}

func (c *chunkedReader) readChunkHeader() error {
	line, err := c.readLine()
	if err != nil {
		if err == io.EOF {
			return s3err.IncompleteBody.With("The body ended before the final (zero-length) chunk.")
		}
		return readError(err)
	}
	size, sig, err := parseChunkHeader(line, c.signer != nil, c.chunks+1)
	if err != nil {
		return err
	}
	c.chunks++
	if c.want >= 0 && size > c.want-c.decoded {
		return malformedChunk("the chunks carry more than x-amz-decoded-content-length (%d) bytes.", c.want)
	}
	if size == 0 {
		if c.signer != nil {
			c.signer.sha.Reset()
			if !c.signer.checkChunk(sig) {
				return chunkSignatureMismatch(c.chunks)
			}
		}
		if c.want >= 0 && c.decoded != c.want {
			return s3err.IncompleteBody.With("The chunks carried %d bytes; x-amz-decoded-content-length promised %d.", c.decoded, c.want)
		}
		c.state = stTrailers
		return nil
	}
	c.left = size
	c.chunkSig = sig
	if c.signer != nil {
		c.signer.sha.Reset()
	}
	c.state = stData
	return nil
}

// endChunk verifies a finished chunk's signature.
func (c *chunkedReader) endChunk() error {
	if c.signer != nil && !c.signer.checkChunk(c.chunkSig) {
		return chunkSignatureMismatch(c.chunks)
	}
	return nil
}

func chunkSignatureMismatch(n int) *s3err.Error {
	return s3err.SignatureDoesNotMatch.With("The signature of chunk %d does not match its data.", n)
}

// parseChunkHeader parses "<hex size>[;ext=value]..." and returns the
// chunk-signature extension.
func parseChunkHeader(line []byte, signed bool, n int) (int64, string, error) {
	sizePart, ext, _ := bytes.Cut(line, []byte{';'})
	sizePart = bytes.Trim(sizePart, " \t")
	if len(sizePart) == 0 || len(sizePart) > 16 {
		return 0, "", malformedChunk("chunk %d header %q has no valid hexadecimal size.", n, truncate(line))
	}
	var size int64
	for _, ch := range sizePart {
		var d byte
		switch {
		case '0' <= ch && ch <= '9':
			d = ch - '0'
		case 'a' <= ch && ch <= 'f':
			d = ch - 'a' + 10
		case 'A' <= ch && ch <= 'F':
			d = ch - 'A' + 10
		default:
			return 0, "", malformedChunk("chunk %d header %q has no valid hexadecimal size.", n, truncate(line))
		}
		size = size<<4 | int64(d)
		if size > maxChunkSize {
			return 0, "", malformedChunk("chunk %d declares more than %d bytes.", n, int64(maxChunkSize))
		}
	}
	var sig string
	for len(ext) > 0 {
		var e []byte
		e, ext, _ = bytes.Cut(ext, []byte{';'})
		k, v, _ := bytes.Cut(e, []byte{'='})
		if string(bytes.Trim(k, " \t")) == "chunk-signature" {
			sig = string(bytes.Trim(v, " \t"))
		}
	}
	if signed {
		if sig == "" {
			return 0, "", s3err.SignatureDoesNotMatch.With("Chunk %d carries no chunk-signature.", n)
		}
		if !isHexSignature(sig) {
			return 0, "", s3err.SignatureDoesNotMatch.With("The chunk-signature of chunk %d is not 64 hexadecimal digits.", n)
		}
	}
	return size, sig, nil
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// readTrailers reads what follows the final chunk up to the end of the
// body and verifies the trailer signature of the signed form.
func (c *chunkedReader) readTrailers() error {
	var trailerSig string
	sigSeen := false
	total := 0
	for {
		line, err := c.readLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			return readError(err)
		}
		total += len(line) + 2
		if total > maxTrailerBytes {
			return malformedChunk("more than %d bytes follow the final chunk.", maxTrailerBytes)
		}
		if len(line) == 0 {
			continue
		}
		if !c.trailerMode {
			return malformedChunk("data follows the final chunk, and x-amz-content-sha256 announces no trailer.")
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return malformedChunk("trailer line %q is not name:value.", truncate(line))
		}
		n := strings.ToLower(string(bytes.Trim(name, " \t")))
		v := string(bytes.Trim(value, " \t"))
		if n == "" {
			return malformedChunk("trailer line %q has no name.", truncate(line))
		}
		if n == "x-amz-trailer-signature" && c.signer != nil {
			if sigSeen {
				return malformedChunk("x-amz-trailer-signature is sent twice.")
			}
			trailerSig, sigSeen = v, true
			continue
		}
		if sigSeen {
			return malformedChunk("trailer %q follows x-amz-trailer-signature.", n)
		}
		if len(c.trailers) >= maxTrailers {
			return malformedChunk("more than %d trailers.", maxTrailers)
		}
		c.trailers = append(c.trailers, trailerField{n, v})
	}
	if c.signer != nil && c.trailerMode {
		if !sigSeen {
			return s3err.SignatureDoesNotMatch.With("The trailing headers carry no x-amz-trailer-signature.")
		}
		if !isHexSignature(trailerSig) || !c.signer.checkTrailers(trailerSig, c.trailers) {
			return s3err.SignatureDoesNotMatch.With("The x-amz-trailer-signature does not match the trailing headers.")
		}
	}
	return nil
}

// trailer returns a trailing header's value.
func (c *chunkedReader) trailer(name string) (string, bool) {
	for _, t := range c.trailers {
		if t.name == name {
			return t.value, true
		}
	}
	return "", false
}

// undeclaredChecksum rejects a trailing checksum that x-amz-trailer did not
// announce: it was not computed, so it cannot be vouched for.
func (c *chunkedReader) undeclaredChecksum(checks []*checksumCheck) error {
	for _, t := range c.trailers {
		alg, ok := checksumFromHeaderName(t.name)
		if !ok {
			continue
		}
		declared := false
		for _, ch := range checks {
			if ch.trailer && ch.alg == alg {
				declared = true
			}
		}
		if !declared {
			return s3err.InvalidRequest.With("The trailing %s was not announced in x-amz-trailer.", t.name)
		}
	}
	return nil
}

// chunkSigner continues a request's signature chain over its chunks.
type chunkSigner struct {
	mac           hash.Hash // HMAC-SHA256 with the signing key
	sha           hash.Hash // SHA-256 of the current chunk's data
	chunkPrefix   string
	trailerPrefix string
	prev          string // the previous signature, lower-case hex
	sts           []byte
}

func newChunkSigner(s *signing) *chunkSigner {
	return &chunkSigner{
		mac:           hmac.New(sha256.New, s.key),
		sha:           sha256.New(),
		chunkPrefix:   "AWS4-HMAC-SHA256-PAYLOAD\n" + s.amzDate + "\n" + s.scope + "\n",
		trailerPrefix: "AWS4-HMAC-SHA256-TRAILER\n" + s.amzDate + "\n" + s.scope + "\n",
		prev:          s.signature,
	}
}

func (s *chunkSigner) sign(sts []byte) []byte {
	s.mac.Reset()
	s.mac.Write(sts)
	return s.mac.Sum(nil)
}

// checkChunk verifies the signature of the chunk whose data s.sha holds.
func (s *chunkSigner) checkChunk(given string) bool {
	b := append(s.sts[:0], s.chunkPrefix...)
	b = append(b, s.prev...)
	b = append(b, '\n')
	b = append(b, emptySHA256...)
	b = append(b, '\n')
	var sum [sha256.Size]byte
	b = hex.AppendEncode(b, s.sha.Sum(sum[:0]))
	s.sts = b
	if !signatureMatches(s.sign(b), given) {
		return false
	}
	s.prev = strings.ToLower(given)
	return true
}

// checkTrailers verifies the trailer signature over the trailing headers
// in the order sent, or sorted by name as some signers order them. The
// string to sign starts AWS4-HMAC-SHA256-TRAILER; the published AWS
// example was computed with AWS4-HMAC-SHA256-PAYLOAD instead, which is
// accepted too (it has one line fewer than a chunk's string to sign, so the
// two can never be confused).
func (s *chunkSigner) checkTrailers(given string, trailers []trailerField) bool {
	try := func(ts []trailerField) bool {
		h := sha256.New()
		for _, t := range ts {
			h.Write([]byte(t.name))
			h.Write([]byte{':'})
			h.Write([]byte(t.value))
			h.Write([]byte{'\n'})
		}
		var sum [sha256.Size]byte
		digest := h.Sum(sum[:0])
		for _, prefix := range []string{s.trailerPrefix, s.chunkPrefix} {
			b := append(s.sts[:0], prefix...)
			b = append(b, s.prev...)
			b = append(b, '\n')
			b = hex.AppendEncode(b, digest)
			s.sts = b
			if signatureMatches(s.sign(b), given) {
				return true
			}
		}
		return false
	}
	if try(trailers) {
		return true
	}
	if len(trailers) > 1 {
		sorted := append([]trailerField(nil), trailers...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
		return try(sorted)
	}
	return false
}
