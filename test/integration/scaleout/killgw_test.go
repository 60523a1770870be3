package scaleout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/data"
	"github.com/claudefs/cfs-gateway/internal/engine/blob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

// gatewayProc is one `cfs-gateway serve` process on loopback ports the
// kernel chose, which it reports on its standard output.
type gatewayProc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	addrs   map[string]string // configuration key of a listener -> bound address
}

var listenLine = regexp.MustCompile(`listening on (\S+)\s+\(([a-z0-9_.]+)\)`)

// buildGateway compiles the gateway command once for the test.
func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cfs-gateway")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/claudefs/cfs-gateway/cmd/cfs-gateway").CombinedOutput()
	if err != nil {
		t.Fatalf("building cfs-gateway: %v\n%s", err, out)
	}
	return bin
}

// writeGatewayConfig writes the configuration of one gateway of the
// deployment under test: etcd metadata under /cfs/<name>/ and blocks under
// <name>/ in the test bucket, the same prefixes env.open uses, so that an
// in-process core can inspect what the processes wrote. The object store
// is reached at blobEndpoint, the S3 server's address or a proxy to it.
func writeGatewayConfig(t *testing.T, e *env, name, dir, blobEndpoint string) string {
	t.Helper()
	var eps []string
	for _, ep := range e.etcd.Endpoints() {
		eps = append(eps, strconv.Quote(ep))
	}
	cfg := fmt.Sprintf(`data_dir: %q
log: {level: info}
metadata:
  engine: etcd
  etcd:
    endpoints: [%s]
    prefix: /cfs/%s/
    # Short, so that a stopped gateway's locks free quickly.
    session_ttl_secs: 3
blob:
  engine: s3
  s3:
    endpoint: %q
    bucket: %q
    prefix: %s/
    region: %q
    access_key: %q
    secret_key: %q
cache:
  nfs_attr_cache: {default_ttl_secs: 1}
data:
  # Small buffers, so that a large upload reaches the object store while
  # it is still arriving.
  writeback_buffer_bytes: 67108864
  file_buffer_bytes: 4194304
  flush_interval_ms: 200
  block_delete_delay_secs: 0
  gc_safety_window_secs: 60
admin: {enabled: true, listen: "127.0.0.1:0"}
nfs:
  listen: "127.0.0.1:0"
  mount_listen: "127.0.0.1:0"
  nlm_listen: "127.0.0.1:0"
  exports:
    - {name: /export, path: /, root_squash: false}
nfs4: {enabled: false}
smb: {enabled: false}
s3: {listen: "127.0.0.1:0"}
`, filepath.Join(dir, "data"), strings.Join(eps, ", "), name,
		blobEndpoint, e.bucket, name, e.s3.Region, e.s3.AccessKey, e.s3.SecretKey)
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startGatewayProc starts a gateway and waits until it reports its
// listeners. It is stopped (SIGTERM, then SIGKILL) at the end of the test.
func startGatewayProc(t *testing.T, bin, cfgPath, name string) *gatewayProc {
	t.Helper()
	p := &gatewayProc{name: name, logPath: filepath.Join(filepath.Dir(cfgPath), name+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "serve", "--config", cfgPath)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// As backendtest does: a group of its own, and killed with the test.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting gateway %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(p.logPath)
		addrs := map[string]string{}
		for _, m := range listenLine.FindAllStringSubmatch(string(b), -1) {
			addrs[m[2]] = m[1]
		}
		if addrs["s3.listen"] != "" && addrs["nfs.listen"] != "" && addrs["admin.listen"] != "" {
			p.addrs = addrs
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("gateway %s exited before serving:\n%s", name, tail(b))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway %s did not report its listeners within 60 s:\n%s", name, tail(b))
		}
	}
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// kill sends SIGKILL and waits until the process is gone.
func (p *gatewayProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop asks the gateway to stop and kills it if it has not within 30 s.
func (p *gatewayProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
	}
}

func (p *gatewayProc) s3Endpoint() string { return "http://" + p.addrs["s3.listen"] }

// runCLI runs an operator command and returns its output and exit status.
func runCLI(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("cfs-gateway %s: %v\n%s", strings.Join(args, " "), err, out)
	return "", -1
}

// fillPattern writes the bytes of stream seed at offset off into p: each
// byte depends on its position and the stream, so data at a wrong offset,
// from another stream or a torn write shows.
func fillPattern(p []byte, off int64, seed uint64) {
	for i := range p {
		z := (uint64(off)+uint64(i))*0x9E3779B97F4A7C15 + seed*0xBF58476D1CE4E5B9
		z ^= z >> 31
		p[i] = byte(z >> 24)
	}
}

func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	fillPattern(b, 0, seed)
	return b
}

// errCut is how a paced body ends when its transfer is abandoned.
var errCut = errors.New("transfer abandoned: the gateway was killed")

// pacedBody is an upload body of size bytes of a pattern stream that
// sends at a bounded rate and stops at holdAt until release is closed,
// then fails: the transfer can never complete before the gateway dies.
type pacedBody struct {
	size, holdAt int64
	seed         uint64
	release      <-chan struct{}
	sent         atomic.Int64
}

func (b *pacedBody) Read(p []byte) (int, error) {
	sent := b.sent.Load()
	if sent >= b.size {
		return 0, io.EOF
	}
	if sent >= b.holdAt {
		<-b.release
		return 0, errCut
	}
	n := int64(min(len(p), 256<<10))
	n = min(n, b.holdAt-sent)
	fillPattern(p[:n], sent, b.seed)
	b.sent.Add(n)
	time.Sleep(2 * time.Millisecond)
	return int(n), nil
}

// s3Creds are the S3 keys of the test's user.
type s3Creds struct{ id, secret string }

func s3Client(endpoint, region string, c s3Creds) *s3.Client {
	return s3.New(s3.Options{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(c.id, c.secret, ""),
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
	})
}

// pacedPut sends one PUT whose body is b, signed with UNSIGNED-PAYLOAD so
// that the body streams as it is produced.
func pacedPut(ctx context.Context, endpoint, region string, c s3Creds, path string, query url.Values, b *pacedBody) error {
	u := endpoint + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, b)
	if err != nil {
		return err
	}
	req.ContentLength = b.size
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	creds := aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, "UNSIGNED-PAYLOAD", "s3", region, time.Now()); err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %s: %s", path, resp.Status, body)
	}
	return nil
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// unstableWriter writes a file with UNSTABLE WRITEs and COMMITs through
// the project's ONC RPC client (the Go NFS client only writes FILE_SYNC).
type unstableWriter struct {
	c  *oncrpc.Client
	fh []byte
}

func (w *unstableWriter) write(ctx context.Context, off uint64, data []byte) ([8]byte, error) {
	var res nfsv3.Write3res
	err := w.c.Call(ctx, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_WRITE,
		&nfsv3.Write3args{File: nfsv3.NfsFh3{Data: w.fh}, Offset: off, Count: uint32(len(data)), Stable: nfsv3.UNSTABLE, Data: data},
		oncrpc.ReaderFromFunc(func(r io.Reader) (int64, error) {
			v, n, err := nfsv3.ReadWrite3res(r)
			res = v
			return n, err
		}))
	if err != nil {
		return [8]byte{}, err
	}
	ok, isOK := res.(*nfsv3.Write3res_NFS3_OK)
	if !isOK {
		return [8]byte{}, fmt.Errorf("WRITE answered %s", nfs3.StatusName(res.GetStatus()))
	}
	if ok.Resok.Count != uint32(len(data)) {
		return [8]byte{}, fmt.Errorf("WRITE took %d of %d bytes", ok.Resok.Count, len(data))
	}
	return ok.Resok.Verf, nil
}

func (w *unstableWriter) commit(ctx context.Context) ([8]byte, error) {
	var res nfsv3.Commit3res
	err := w.c.Call(ctx, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_COMMIT,
		&nfsv3.Commit3args{File: nfsv3.NfsFh3{Data: w.fh}},
		oncrpc.ReaderFromFunc(func(r io.Reader) (int64, error) {
			v, n, err := nfsv3.ReadCommit3res(r)
			res = v
			return n, err
		}))
	if err != nil {
		return [8]byte{}, err
	}
	ok, isOK := res.(*nfsv3.Commit3res_NFS3_OK)
	if !isOK {
		return [8]byte{}, fmt.Errorf("COMMIT answered %s", nfs3.StatusName(res.GetStatus()))
	}
	return ok.Resok.Verf, nil
}

// dialRPC connects to the listener of g named by its configuration key, as
// root of client host machine; the connection closes with the test.
func dialRPC(t *testing.T, g *gatewayProc, listener, machine string) *oncrpc.Client {
	t.Helper()
	cred, err := oncrpc.SysCredential{MachineName: machine, UID: 0, GID: 0}.Credential()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := oncrpc.Dial(ctx, "tcp", g.addrs[listener], oncrpc.WithCredential(cred))
	if err != nil {
		t.Fatalf("dialing %s of gateway %s: %v", listener, g.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// nfsMount mounts /export of a gateway with the Go NFS client as root.
func nfsMount(t *testing.T, g *gatewayProc) *nfsc.Target {
	t.Helper()
	addr := g.addrs["nfs.listen"]
	i := strings.LastIndexByte(addr, ':')
	port, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	c, err := nfsc.DialServiceAtPort(addr[:i], port)
	if err != nil {
		t.Fatalf("dialing NFS on gateway %s: %v", g.name, err)
	}
	v, err := (&nfsc.Mount{Client: c}).Mount("/export", rpc.NewAuthUnix("killgw", 0, 0).Auth())
	if err != nil {
		c.Close()
		t.Fatalf("mounting /export on gateway %s: %v", g.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return v
}

// checkDurable checks a file read back after a crash: every byte before
// durable is the pattern; what follows, if anything, was acknowledged only
// unstably or not at all, so each of its bytes is the pattern or a hole
// (zero), never anything else.
func checkDurable(t *testing.T, what string, got []byte, durable int64, seed uint64) {
	t.Helper()
	if int64(len(got)) < durable {
		t.Errorf("%s: %d bytes after the crash, but %d were acknowledged durably", what, len(got), durable)
		return
	}
	want := pattern(len(got), seed)
	if i := firstDiff(got[:durable], want[:durable]); i >= 0 {
		t.Errorf("%s: durable byte %d is %#x, want %#x", what, i, got[i], want[i])
	}
	for i := durable; i < int64(len(got)); i++ {
		if got[i] != want[i] && got[i] != 0 {
			t.Errorf("%s: byte %d beyond the durable %d is %#x: neither the data written there (%#x) nor a hole", what, i, durable, got[i], want[i])
			break
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// blockKeys lists the block objects under the filesystem's prefix.
func blockKeys(t *testing.T, g *gateway) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	keys := map[string]bool{}
	if err := g.blobs.List(ctx, "chunks/", func(o blob.Object) bool { keys[o.Key] = true; return true }); err != nil {
		t.Fatalf("listing the blocks: %v", err)
	}
	return keys
}

// referenced reports whether a slice record names the block's slice.
func referenced(ctx context.Context, g *gateway, key string) (bool, error) {
	id, _, _, ok := data.ParseBlockKey(key)
	if !ok {
		return false, fmt.Errorf("%s is not a block key", key)
	}
	err := g.store.View(ctx, func(r kv.Reader) error {
		_, err := r.Get(ctx, meta.SliceRefKey(id))
		return err
	})
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// answerHold is a TCP proxy to the object store that can hold back the
// store's answers while requests still go through: a block PUT then lands
// in the store but its gateway never learns it, which is the moment
// between storing blocks and committing their metadata that a crash
// turns into orphaned blocks.
type answerHold struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	held   chan struct{} // nil while answers flow; closed to let them go
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startAnswerHold(t *testing.T, target string) *answerHold {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &answerHold{l: l, target: target}
	h.wg.Add(1)
	go h.accept()
	t.Cleanup(h.close)
	return h
}

func (h *answerHold) addr() string { return h.l.Addr().String() }

func (h *answerHold) accept() {
	defer h.wg.Done()
	for {
		c, err := h.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", h.target)
		if err != nil {
			c.Close()
			continue
		}
		h.mu.Lock()
		h.conns = append(h.conns, c, s)
		h.mu.Unlock()
		h.wg.Add(2)
		go func() {
			defer h.wg.Done()
			io.Copy(s, c)
			s.Close()
			c.Close()
		}()
		go func() {
			defer h.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 {
					h.wait()
					if _, werr := c.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			c.Close()
			s.Close()
		}()
	}
}

// hold keeps every answer read from now on from its client.
func (h *answerHold) hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held == nil {
		h.held = make(chan struct{})
	}
}

func (h *answerHold) wait() {
	h.mu.Lock()
	ch := h.held
	h.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (h *answerHold) close() {
	h.l.Close()
	h.mu.Lock()
	if h.held != nil {
		close(h.held)
		h.held = nil
	}
	for _, c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

var gcLine = regexp.MustCompile(`gc: purged (\d+) unlinked files, deleted (\d+) unreferenced slices, removed (\d+) orphan blocks \((\d+) bytes\); (\d+) young blocks spared`)

// TestGatewayKilledMidWrite runs two gateway processes over one etcd
// cluster and one object store, starts large S3 and NFSv3 writes on
// gateway A and kills A with SIGKILL halfway through them, just after
// blocks reached the object store whose answers A never received (a proxy
// holds them back), so that A surely leaves blocks no metadata names. B must
// then show no partial object (a new key absent, an overwritten key with
// its complete old content, neither listed wrongly), the multipart upload
// as an upload with exactly its acknowledged parts and not as an object,
// and the NFS files with every durably acknowledged byte. `cfs-gateway gc`
// must then remove every block no metadata references, which fsck
// confirms.
func TestGatewayKilledMidWrite(t *testing.T) {
	e := newEnv(t)
	bin := buildGateway(t)
	const name = "killgw"
	// A reaches the object store through a proxy that can hold back the
	// store's answers; B, gc and fsck reach it directly.
	proxy := startAnswerHold(t, e.s3.Endpoint)
	cfgA := writeGatewayConfig(t, e, name, t.TempDir(), proxy.addr())
	cfgB := writeGatewayConfig(t, e, name, t.TempDir(), e.s3.Endpoint)

	out, code := runCLI(t, bin, "user", "add", "alice", "--uid", "1000", "--gid", "1000", "--config", cfgA)
	if code != 0 {
		t.Fatalf("user add: exit %d:\n%s", code, out)
	}
	var creds s3Creds
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "S3 access key: "); ok {
			creds.id = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "S3 secret key: "); ok {
			creds.secret = strings.TrimSpace(v)
		}
	}
	if creds.id == "" || creds.secret == "" {
		t.Fatalf("user add printed no S3 keys:\n%s", out)
	}

	gwA := startGatewayProc(t, bin, cfgA, "A")
	gwB := startGatewayProc(t, bin, cfgB, "B")
	region := e.s3.Region
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// What exists, complete, before the large writes start.
	const bucket = "killgw"
	s3A := s3Client(gwA.s3Endpoint(), region, creds)
	if _, err := s3A.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket through A: %v", err)
	}
	const seedOld, seedNew, seedOver, seedPart, seedSync, seedUnstable = 1, 2, 3, 4, 5, 6
	oldBody := pattern(1<<20, seedOld)
	oldPut, err := s3A.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("overwritten"), Body: bytes.NewReader(oldBody)})
	if err != nil {
		t.Fatalf("PUT of the old object through A: %v", err)
	}
	mpu, err := s3A.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("multipart")})
	if err != nil {
		t.Fatal(err)
	}
	uploadID := aws.ToString(mpu.UploadId)
	const partSize = 5 << 20
	partETags := map[int32]string{}
	for n := int32(1); n <= 3; n++ {
		p, err := s3A.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("multipart"), UploadId: mpu.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(pattern(partSize, seedPart+uint64(n)<<8))})
		if err != nil {
			t.Fatalf("UploadPart %d through A: %v", n, err)
		}
		partETags[n] = aws.ToString(p.ETag)
	}
	nfsA := nfsMount(t, gwA)
	if _, err := nfsA.Mkdir("nfs", 0o777); err != nil {
		t.Fatalf("NFS mkdir through A: %v", err)
	}
	syncFile, err := nfsA.OpenFile("nfs/filesync", 0o644)
	if err != nil {
		t.Fatalf("NFS create through A: %v", err)
	}
	unstableFH, err := nfsA.Create("nfs/unstable", 0o644)
	if err != nil {
		t.Fatalf("NFS create through A: %v", err)
	}
	unstable := &unstableWriter{c: dialRPC(t, gwA, "nfs.listen", "killgw"), fh: unstableFH}

	// The inspector is a core over the same prefixes that runs no
	// background work: it counts blocks and runs fsck.
	insp := e.open(t, gatewayOptions{name: name, core: core.Options{NoBackground: true}})
	baseline := len(blockKeys(t, insp))

	// The large writes. Each stops short of its end until A is dead.
	killed := make(chan struct{})
	const big = 64 << 20
	transfers := []struct {
		what, key string
		part      bool
		body      *pacedBody
	}{
		{"PUT of a new key", "fresh", false, &pacedBody{size: big, holdAt: big - 8<<20, seed: seedNew, release: killed}},
		{"PUT over an existing key", "overwritten", false, &pacedBody{size: big, holdAt: big - 8<<20, seed: seedOver, release: killed}},
		{"part 4 of the multipart upload", "multipart", true, &pacedBody{size: 32 << 20, holdAt: 24 << 20, seed: seedPart + 4<<8, release: killed}},
	}
	var wg sync.WaitGroup
	results := make([]error, len(transfers))
	for i, tr := range transfers {
		q := url.Values{}
		if tr.part {
			q.Set("partNumber", "4")
			q.Set("uploadId", uploadID)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = pacedPut(ctx, gwA.s3Endpoint(), region, creds, "/"+bucket+"/"+tr.key, q, tr.body)
		}()
	}
	// FILE_SYNC writes with the Go client: each acknowledged write is
	// durable.
	var syncAcked atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		chunk := make([]byte, 1<<20)
		for off := int64(0); off < big; off += int64(len(chunk)) {
			if off >= big-8<<20 {
				<-killed
				return
			}
			fillPattern(chunk, off, seedSync)
			if _, err := syncFile.Write(chunk); err != nil {
				return
			}
			syncAcked.Store(off + int64(len(chunk)))
		}
	}()
	// UNSTABLE writes with a COMMIT every 4 MiB: durable is what the last
	// successful COMMIT covered.
	var committed atomic.Int64
	var verfErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		chunk := make([]byte, 1<<20)
		var verf [8]byte
		for off := int64(0); off < big; off += int64(len(chunk)) {
			if off >= big-8<<20 {
				<-killed
				return
			}
			fillPattern(chunk, off, seedUnstable)
			v, err := unstable.write(ctx, uint64(off), chunk)
			if err != nil {
				return
			}
			if off > 0 && v != verf {
				verfErr.Store(fmt.Sprintf("the write verifier changed at offset %d without a restart", off))
				return
			}
			verf = v
			if (off+int64(len(chunk)))%(4<<20) == 0 {
				cv, err := unstable.commit(ctx)
				if err != nil {
					return
				}
				if cv != verf {
					verfErr.Store("COMMIT answered another verifier than the WRITEs")
					return
				}
				committed.Store(off + int64(len(chunk)))
			}
		}
	}()

	// A is killed once every write is well under way and the object store
	// holds blocks of them, right after blocks landed in the store whose
	// answers A never got.
	progressed := func() bool {
		for _, tr := range transfers {
			if tr.body.sent.Load() < 8<<20 {
				return false
			}
		}
		return syncAcked.Load() >= 8<<20 && committed.Load() >= 8<<20
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !progressed() || len(blockKeys(t, insp)) <= baseline {
		if time.Now().After(deadline) {
			close(killed)
			var sent []string
			for _, tr := range transfers {
				sent = append(sent, fmt.Sprintf("%s %d MiB", tr.what, tr.body.sent.Load()>>20))
			}
			t.Fatalf("the writes did not get going within 2 minutes: %s, FILE_SYNC %d MiB, committed %d MiB, blocks %d (baseline %d)",
				strings.Join(sent, ", "), syncAcked.Load()>>20, committed.Load()>>20, len(blockKeys(t, insp)), baseline)
		}
		time.Sleep(20 * time.Millisecond)
	}
	proxy.hold()
	held := blockKeys(t, insp)
	landed := func() bool {
		for k := range blockKeys(t, insp) {
			if !held[k] {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(30 * time.Second); !landed(); {
		if time.Now().After(deadline) {
			close(killed)
			t.Fatal("no block reached the object store within 30 s of holding back its answers to A")
		}
		time.Sleep(10 * time.Millisecond)
	}
	gwA.kill()
	killedAt := time.Now()
	close(killed)
	var sent []string
	for _, tr := range transfers {
		sent = append(sent, fmt.Sprintf("%s: %d of %d MiB", tr.what, tr.body.sent.Load()>>20, tr.body.size>>20))
	}
	t.Logf("killed gateway A with %s sent; NFS FILE_SYNC %d MiB acknowledged, UNSTABLE %d MiB committed",
		strings.Join(sent, ", "), syncAcked.Load()>>20, committed.Load()>>20)
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(time.Minute):
		t.Fatal("the clients of gateway A did not give up within a minute of its death")
	}
	// The blocks A stored without hearing so: no metadata can name them.
	var stranded []string
	for k := range blockKeys(t, insp) {
		if !held[k] {
			stranded = append(stranded, k)
		}
	}
	sort.Strings(stranded)
	if len(stranded) == 0 {
		t.Fatal("the blocks that landed while A waited for their answers are gone before gc ran")
	}
	for i, err := range results {
		if err == nil {
			t.Errorf("%s succeeded although its body never ended", transfers[i].what)
		}
	}
	if v := verfErr.Load(); v != nil {
		t.Errorf("NFS UNSTABLE writes on A: %v", v)
	}

	s3B := s3Client(gwB.s3Endpoint(), region, creds)
	t.Run("S3 single PUTs", func(t *testing.T) {
		list, err := s3B.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range list.Contents {
			keys = append(keys, fmt.Sprintf("%s:%d:%s", aws.ToString(o.Key), aws.ToInt64(o.Size), aws.ToString(o.ETag)))
		}
		want := fmt.Sprintf("overwritten:%d:%s", len(oldBody), aws.ToString(oldPut.ETag))
		if len(keys) != 1 || keys[0] != want {
			t.Errorf("B lists %v, want only the complete old object %s", keys, want)
		}
		if _, err := s3B.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("fresh")}); apiCode(err) != "NotFound" {
			t.Errorf("HEAD of the key whose only PUT was cut: %v, want NotFound", err)
		}
		got, err := s3B.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("overwritten")})
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(got.Body)
		got.Body.Close()
		if err != nil || !bytes.Equal(body, oldBody) || aws.ToString(got.ETag) != aws.ToString(oldPut.ETag) {
			t.Errorf("GET of the key whose overwrite was cut: %d bytes, ETag %s, %v; want the %d old bytes, ETag %s",
				len(body), aws.ToString(got.ETag), err, len(oldBody), aws.ToString(oldPut.ETag))
		}
		// The namespace agrees: the bucket directory holds no other name.
		v := nfsMount(t, gwB)
		ents, err := v.ReadDirPlus("/" + bucket)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, en := range ents {
			if n := en.Name(); n != "." && n != ".." {
				names = append(names, n)
			}
		}
		if len(names) != 1 || names[0] != "overwritten" {
			t.Errorf("NFS on B lists %v in the bucket's directory, want only overwritten", names)
		}
		// The key of the cut PUT takes a new object through B.
		fresh := pattern(3<<20, seedNew)
		if _, err := s3B.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("fresh"), Body: bytes.NewReader(fresh)}); err != nil {
			t.Fatalf("PUT through B of the key whose PUT on A was cut: %v", err)
		}
		got, err = s3B.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("fresh")})
		if err != nil {
			t.Fatal(err)
		}
		body, err = io.ReadAll(got.Body)
		got.Body.Close()
		if err != nil || !bytes.Equal(body, fresh) {
			t.Errorf("GET after the PUT through B: %d bytes, %v", len(body), err)
		}
	})

	t.Run("S3 multipart upload", func(t *testing.T) {
		if _, err := s3B.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("multipart")}); apiCode(err) != "NotFound" {
			t.Errorf("HEAD of the key of an upload never completed: %v, want NotFound", err)
		}
		list, err := s3B.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("multipart")})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Contents) != 0 {
			t.Errorf("B lists %d objects under the key of an upload never completed", len(list.Contents))
		}
		ups, err := s3B.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		if len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].UploadId) != uploadID || aws.ToString(ups.Uploads[0].Key) != "multipart" {
			t.Errorf("B lists uploads %+v, want only %s of key multipart", ups.Uploads, uploadID)
		}
		parts, err := s3B.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String("multipart"), UploadId: aws.String(uploadID)})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int32]string{}
		for _, p := range parts.Parts {
			got[aws.ToInt32(p.PartNumber)] = aws.ToString(p.ETag)
			if aws.ToInt64(p.Size) != partSize {
				t.Errorf("part %d has %d bytes, want %d", aws.ToInt32(p.PartNumber), aws.ToInt64(p.Size), partSize)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(partETags) {
			t.Errorf("B lists parts %v, want the acknowledged %v (part 4 was cut)", got, partETags)
		}
		if _, err := s3B.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("multipart"), UploadId: aws.String(uploadID)}); err != nil {
			t.Fatalf("aborting through B the upload started on A: %v", err)
		}
		if _, err := s3B.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("multipart")}); apiCode(err) != "NotFound" {
			t.Errorf("HEAD after the abort: %v, want NotFound", err)
		}
	})

	t.Run("NFS acknowledged data", func(t *testing.T) {
		v := nfsMount(t, gwB)
		read := func(p string) []byte {
			f, err := v.Open(p)
			if err != nil {
				t.Fatalf("open %s through B: %v", p, err)
			}
			defer f.Close()
			b, err := io.ReadAll(f)
			if err != nil {
				t.Fatalf("read %s through B: %v", p, err)
			}
			return b
		}
		checkDurable(t, "FILE_SYNC file", read("nfs/filesync"), syncAcked.Load(), seedSync)
		checkDurable(t, "UNSTABLE file", read("nfs/unstable"), committed.Load(), seedUnstable)
	})

	t.Run("gc collects what A left", func(t *testing.T) {
		for _, k := range stranded {
			if ref, err := referenced(ctx, insp, k); err != nil || ref {
				t.Errorf("block %s, stored while A waited for the answer, is referenced (%v, %v)", k, ref, err)
			}
		}
		// Blocks A stored in its last moments are younger than any safety
		// window until it passes; the gc below spares blocks younger than
		// one second.
		time.Sleep(time.Until(killedAt.Add(2 * time.Second)))
		before := blockKeys(t, insp)
		rep, err := insp.fs.Fsck(ctx, core.FsckOptions{SkipBlocks: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range rep.Problems {
			t.Errorf("fsck after the crash: %v", p)
		}
		orphans := rep.UnreferencedBlocks
		if orphans < len(stranded) {
			t.Errorf("fsck counts %d unreferenced blocks, but A left at least %d: %v", orphans, len(stranded), stranded)
		}
		out, code := runCLI(t, bin, "gc", "--config", cfgB, "--safety-window", "1s")
		if code != 0 {
			t.Fatalf("cfs-gateway gc: exit %d:\n%s", code, out)
		}
		m := gcLine.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("cfs-gateway gc printed no report:\n%s", out)
		}
		removed, _ := strconv.Atoi(m[3])
		young, _ := strconv.Atoi(m[5])
		after := blockKeys(t, insp)
		t.Logf("blocks: %d before gc, %d of them referenced by no metadata (%d stored after A lost the answers); gc: %s; %d blocks after",
			len(before), orphans, len(stranded), strings.TrimPrefix(m[0], "gc: "), len(after))
		if removed != orphans || young != 0 {
			t.Errorf("gc removed %d orphan blocks and spared %d young ones; fsck counted %d unreferenced blocks, all older than the window", removed, young, orphans)
		}
		for _, k := range stranded {
			if after[k] {
				t.Errorf("block %s that A left is still there after gc", k)
			}
		}
		if len(after) > len(before)-removed {
			t.Errorf("%d blocks after gc, want at most %d (%d before, %d orphans removed)", len(after), len(before)-removed, len(before), removed)
		}
		out, code = runCLI(t, bin, "fsck", "--config", cfgB)
		if code != 0 || !strings.Contains(out, "fsck: no problems found") {
			t.Errorf("cfs-gateway fsck after gc: exit %d:\n%s", code, out)
		}
		rep, err = insp.fs.Fsck(ctx, core.FsckOptions{SkipBlocks: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.UnreferencedBlocks != 0 || len(rep.Problems) != 0 {
			t.Errorf("after gc fsck counts %d unreferenced blocks and %d problems %v, want none", rep.UnreferencedBlocks, len(rep.Problems), rep.Problems)
		}
	})

	// With data.block_delete_delay_secs 0, the blocks of slices that lost
	// their last reference (the aborted upload's parts) are due at once:
	// after gc every block left must belong to a slice a file references,
	// not merely to one queued for deletion.
	t.Run("gc leaves only referenced blocks", func(t *testing.T) {
		var pending []string
		for k := range blockKeys(t, insp) {
			if ref, err := referenced(ctx, insp, k); err != nil || !ref {
				pending = append(pending, fmt.Sprintf("%s (%v)", k, err))
			}
		}
		if len(pending) > 0 {
			sort.Strings(pending)
			t.Errorf("after gc with block_delete_delay_secs 0, %d blocks belong to no referenced slice: %v", len(pending), pending)
		}
	})
}
