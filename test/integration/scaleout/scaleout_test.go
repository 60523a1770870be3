package scaleout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claudefs/cfs-gateway/internal/backend"
	"github.com/claudefs/cfs-gateway/internal/backend/backendtest"
	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/coretest"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/s3blob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/etcdkv"
	"github.com/claudefs/cfs-gateway/internal/metrics"
)

var quiet = slog.New(slog.DiscardHandler)

// env is one etcd cluster and one S3 server shared by the filesystems of
// a test; each filesystem gets key and object prefixes of its own.
type env struct {
	etcd   *backendtest.EtcdCluster
	s3     *backendtest.S3Server
	bucket string
	seq    atomic.Int64
}

func newEnv(t testing.TB) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an etcd cluster and an S3 server")
	}
	e := &env{etcd: backendtest.StartEtcd(t, 3), s3: backendtest.StartS3(t)}
	e.bucket = e.s3.NewBucket()
	return e
}

// gateway is one filesystem over the shared backends, as one gateway
// process would run it.
type gateway struct {
	fs    *core.FS
	store *etcdkv.Store
	blobs *s3blob.Store
	reg   *prometheus.Registry
	// session shares the lock table with the other gateways, when the
	// options asked for one.
	session *etcdkv.Session
}

type gatewayOptions struct {
	name    string // the prefixes; "" for fresh ones
	pool    backend.PoolConfig
	breaker backend.BreakerConfig
	core    core.Options
	// sessionTTL, if set, gives the gateway a lock session of this TTL.
	sessionTTL time.Duration
}

// open starts a gateway; it is closed at the end of the test.
func (e *env) open(t testing.TB, o gatewayOptions) *gateway {
	t.Helper()
	if o.name == "" {
		o.name = fmt.Sprintf("fs%d", e.seq.Add(1))
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := etcdkv.Open(ctx, etcdkv.Options{
		Endpoints: e.etcd.Endpoints(),
		Prefix:    "/cfs/" + o.name + "/",
		Pool:      o.pool,
		Breaker:   o.breaker,
		Metrics:   m,
		Logger:    quiet,
	})
	if err != nil {
		t.Fatalf("opening the etcd engine: %v", err)
	}
	blobs, err := s3blob.Open(ctx, s3blob.Options{
		Endpoints: []string{e.s3.Endpoint},
		Bucket:    e.bucket,
		Prefix:    o.name + "/",
		Region:    e.s3.Region,
		AccessKey: e.s3.AccessKey,
		SecretKey: e.s3.SecretKey,
		Pool:      o.pool,
		Breaker:   o.breaker,
		Metrics:   m,
		Logger:    quiet,
	})
	if err != nil {
		store.Close()
		t.Fatalf("opening the S3 engine: %v", err)
	}
	opts := o.core
	opts.Store, opts.Blobs = store, blobs
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	var session *etcdkv.Session
	var lost atomic.Pointer[core.FS]
	if o.sessionTTL > 0 {
		session, err = store.OpenSession(ctx, o.sessionTTL, func(int64) {
			if f := lost.Load(); f != nil {
				f.SessionLost()
			}
		})
		if err != nil {
			store.Close()
			blobs.Close()
			t.Fatalf("opening the lock session: %v", err)
		}
		opts.LockSession = session
	}
	fsys, err := core.New(ctx, opts)
	if err != nil {
		store.Close()
		blobs.Close()
		t.Fatalf("core.New: %v", err)
	}
	lost.Store(fsys)
	g := &gateway{fs: fsys, store: store, blobs: blobs, reg: reg, session: session}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := fsys.Close(cctx); err != nil {
			t.Errorf("closing the filesystem: %v", err)
		}
		if session != nil {
			session.Close()
		}
		store.Close()
		blobs.Close()
	})
	return g
}

// metric returns the value of a family's series whose backend label is
// backend ("" for a family without labels).
func (g *gateway) metric(t testing.TB, family, backendName string) float64 {
	t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, s := range mf.GetMetric() {
			label := ""
			for _, l := range s.GetLabel() {
				if l.GetName() == "backend" {
					label = l.GetValue()
				}
			}
			if label != backendName {
				continue
			}
			if s.Counter != nil {
				return s.Counter.GetValue()
			}
			return s.Gauge.GetValue()
		}
	}
	return 0
}

func (g *gateway) breakers(t testing.TB, names ...string) []metrics.BreakerState {
	t.Helper()
	var out []metrics.BreakerState
	for _, n := range names {
		out = append(out, metrics.BreakerState(g.metric(t, metrics.NameCircuitBreakerState, n)))
	}
	return out
}

func allIn(states []metrics.BreakerState, want metrics.BreakerState) bool {
	for _, s := range states {
		if s != want {
			return false
		}
	}
	return true
}

var metaNodes = []string{"meta-1", "meta-2", "meta-3"}

// TestSemantics runs the core's semantics suite on etcd and S3.
func TestSemantics(t *testing.T) {
	e := newEnv(t)
	coretest.Run(t, func(t *testing.T, opts core.Options) *core.FS {
		return e.open(t, gatewayOptions{core: opts}).fs
	})
}

// Failure-test settings: short enough for a test, in the guide's ratios.
var (
	testPool    = backend.PoolConfig{MinPerNode: 2, MaxPerNode: 8, ConnectTimeout: time.Second, HealthCheckInterval: 500 * time.Millisecond, MaxIdle: time.Minute}
	testBreaker = backend.BreakerConfig{FailureThreshold: 3, SuccessThreshold: 2, OpenDuration: 3 * time.Second, Timeout: time.Second}
)

// slack is what the failure tests allow beyond the configured bounds for
// scheduling, process start and the measuring itself.
const slack = 1500 * time.Millisecond

// TestQuorumLoss kills two of three etcd members: requests get the retry
// answer within timeout_ms, the members' breakers open and then reject at
// once, counting rejections; once quorum is back the breakers close by
// themselves within open_duration_ms plus one health interval, and
// requests succeed again.
func TestQuorumLoss(t *testing.T) {
	e := newEnv(t)
	g := e.open(t, gatewayOptions{pool: testPool, breaker: testBreaker})
	ctx := context.Background()
	create := func(name string) (time.Duration, error) {
		start := time.Now()
		_, _, err := g.fs.Create(ctx, &core.Root, core.RootIno, name, 0o644, core.CreateGuarded, 0)
		return time.Since(start), err
	}
	if _, err := create("before"); err != nil {
		t.Fatal(err)
	}
	leader := e.etcd.Leader()
	other := (leader + 1) % 3
	e.etcd.Kill(leader)
	e.etcd.Kill(other)

	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("breakers did not all open within 30 s of lost quorum: %v", g.breakers(t, metaNodes...))
		}
		took, err := create(fmt.Sprintf("during-%d", i))
		if err == nil {
			t.Fatalf("a create succeeded without quorum")
		}
		if !errors.Is(err, core.ErrUnavailable) || core.Errno(err) != syscall.EAGAIN {
			t.Fatalf("create without quorum = %v, want core.ErrUnavailable (the protocols' retry answer)", err)
		}
		if took > testBreaker.Timeout+slack/3 {
			t.Fatalf("create without quorum took %v, want the retry answer within timeout_ms %v", took, testBreaker.Timeout)
		}
		if allIn(g.breakers(t, metaNodes...), metrics.BreakerOpen) {
			break
		}
	}
	took, err := create("while-open")
	if !errors.Is(err, backend.ErrOpen) || !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("create with every breaker open = %v, want an immediate rejection", err)
	}
	if took > testBreaker.Timeout/4 {
		t.Errorf("a rejected create took %v; an open breaker must fail at once", took)
	}
	if got := g.metric(t, metrics.NameRejectedRequests, ""); got < 1 {
		t.Errorf("gateway_rejected_requests_total = %v after a rejection", got)
	}
	errs := 0.0
	for _, n := range metaNodes {
		errs += g.metric(t, metrics.NameBackendErrors, n)
	}
	if errs < float64(testBreaker.FailureThreshold) {
		t.Errorf("gateway_backend_errors_total summed over members = %v, want at least failure_threshold", errs)
	}

	e.etcd.Start(leader)
	e.etcd.Start(other)
	e.etcd.WaitHealthy(30 * time.Second)
	back := time.Now()
	bound := testBreaker.OpenDuration + testPool.HealthCheckInterval + slack
	for !allIn(g.breakers(t, metaNodes...), metrics.BreakerClosed) {
		if time.Since(back) > bound {
			t.Fatalf("breakers %v %v after quorum returned, want all closed within open_duration + one health interval (%v)",
				g.breakers(t, metaNodes...), time.Since(back), testBreaker.OpenDuration+testPool.HealthCheckInterval)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("breakers closed %v after quorum returned", time.Since(back).Round(time.Millisecond))
	if _, err := create("after"); err != nil {
		t.Fatalf("create after recovery: %v", err)
	}
}

// TestObjectStoreOutage stops the S3 server: stable writes get the retry
// answer within timeout_ms, the endpoint's breaker opens and rejects, and
// after the server is back it closes by itself in time.
func TestObjectStoreOutage(t *testing.T) {
	e := newEnv(t)
	g := e.open(t, gatewayOptions{pool: testPool, breaker: testBreaker})
	ctx := context.Background()
	f, _, err := g.fs.Create(ctx, &core.Root, core.RootIno, "data", 0o644, core.CreateGuarded, 0)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 64<<10)
	write := func(i int) (time.Duration, error) {
		start := time.Now()
		block[0] = byte(i)
		_, err := g.fs.Write(ctx, &core.Root, f.Ino, uint64(i)*uint64(len(block)), block, core.FileSync)
		return time.Since(start), err
	}
	if _, err := write(0); err != nil {
		t.Fatal(err)
	}
	e.s3.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for i := 1; g.metric(t, metrics.NameCircuitBreakerState, "blob-1") != float64(metrics.BreakerOpen); i++ {
		if time.Now().After(deadline) {
			t.Fatal("the blob-1 breaker did not open within 30 s of the object store stopping")
		}
		took, err := write(i)
		if err == nil {
			t.Fatalf("a stable write succeeded with the object store stopped")
		}
		if !errors.Is(err, core.ErrUnavailable) {
			t.Fatalf("stable write with the object store stopped = %v, want core.ErrUnavailable", err)
		}
		// A stable write may wait for the background flush of the same
		// file, itself one bounded block write, before its own.
		if took > 2*testBreaker.Timeout+slack/3 {
			t.Fatalf("stable write took %v, want the retry answer within two block writes of timeout_ms %v", took, testBreaker.Timeout)
		}
	}
	took, err := write(100)
	if !errors.Is(err, backend.ErrOpen) || !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("stable write with the breaker open = %v, want an immediate rejection", err)
	}
	if took > testBreaker.Timeout/4 {
		t.Errorf("a rejected write took %v; an open breaker must fail at once", took)
	}
	if got := g.metric(t, metrics.NameRejectedRequests, ""); got < 1 {
		t.Errorf("gateway_rejected_requests_total = %v after a rejection", got)
	}
	if got := g.metric(t, metrics.NameBackendErrors, "blob-1"); got < float64(testBreaker.FailureThreshold) {
		t.Errorf("gateway_backend_errors_total{backend=blob-1} = %v, want at least failure_threshold", got)
	}

	e.s3.Start()
	back := time.Now()
	bound := testBreaker.OpenDuration + testPool.HealthCheckInterval + slack
	for g.metric(t, metrics.NameCircuitBreakerState, "blob-1") != float64(metrics.BreakerClosed) {
		if time.Since(back) > bound {
			t.Fatalf("blob-1 breaker still not closed %v after the object store returned", time.Since(back))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("blob-1 breaker closed %v after the object store returned", time.Since(back).Round(time.Millisecond))
	if _, err := write(200); err != nil {
		t.Fatalf("stable write after recovery: %v", err)
	}
	buf := make([]byte, len(block))
	if n, _, err := g.fs.Read(ctx, &core.Root, f.Ino, 0, buf); err != nil || n != len(buf) || buf[0] != 0 {
		t.Fatalf("reading the data written before the outage: %d bytes, %v", n, err)
	}
}

// TestLeaderKillDuringCreates kills the etcd leader with SIGKILL while
// 1000 creates run concurrently, spread over two gateways (alternating, so
// that both create in every directory), ten in each of 100 directories.
// Clients retry what got the retry answer, as NFS clients do. Afterwards a
// third gateway lists the directories: every acknowledged create is there,
// no name twice, no two names on one inode, and fsck finds no problem.
func TestLeaderKillDuringCreates(t *testing.T) {
	e := newEnv(t)
	opts := gatewayOptions{
		name:    "kill",
		pool:    testPool,
		breaker: backend.BreakerConfig{FailureThreshold: 5, SuccessThreshold: 2, OpenDuration: 2 * time.Second, Timeout: 3 * time.Second},
	}
	g := e.open(t, opts)
	gateways := []*gateway{g, e.open(t, opts)}
	ctx := context.Background()
	const creates, perDir = 1000, 10
	dirs := make([]core.Ino, creates/perDir)
	for i := range dirs {
		d, err := g.fs.Mkdir(ctx, &core.Root, core.RootIno, fmt.Sprintf("d%02d", i), 0o777)
		if err != nil {
			t.Fatal(err)
		}
		dirs[i] = d.Ino
	}
	name := func(i int) string { return fmt.Sprintf("f%04d", i) }
	var acked, existed, retries atomic.Int64
	ackedNames := make([]bool, creates)
	killAt := make(chan struct{})
	var killOnce sync.Once
	var wg sync.WaitGroup
	giveUp := time.Now().Add(3 * time.Minute)
	for i := 0; i < creates; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, _, err := gateways[i%2].fs.Create(ctx, &core.Root, dirs[i/perDir], name(i), 0o644, core.CreateGuarded, 0)
				switch {
				case err == nil:
					ackedNames[i] = true
					if acked.Add(1) == creates/4 {
						killOnce.Do(func() { close(killAt) })
					}
					return
				case errors.Is(err, syscall.EEXIST):
					// An earlier attempt was applied although its answer
					// was lost with the leader.
					existed.Add(1)
					return
				case errors.Is(err, core.ErrUnavailable) && time.Now().Before(giveUp):
					retries.Add(1)
					time.Sleep(50 * time.Millisecond)
				default:
					t.Errorf("create %s: %v", name(i), err)
					return
				}
			}
		}()
	}
	var killed int
	select {
	case <-killAt:
		killed = e.etcd.Leader()
		e.etcd.Kill(killed)
	case <-time.After(2 * time.Minute):
		t.Fatal("a quarter of the creates did not finish within two minutes")
	}
	wg.Wait()
	e.etcd.Restart(killed)
	t.Logf("killed the leader m%d after %d acknowledged creates; in all %d acknowledged, %d found existing after a lost answer, %d retries",
		killed+1, creates/4, acked.Load(), existed.Load(), retries.Load())
	if t.Failed() {
		return
	}

	other := e.open(t, opts)
	seen := map[string]int{}
	inodes := map[core.Ino]string{}
	for di, dir := range dirs {
		after := ""
		for {
			ents, more, err := other.fs.ReadDirNames(ctx, &core.Root, dir, after, 256, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range ents {
				seen[en.Name]++
				if prev, dup := inodes[en.Ino]; dup {
					t.Errorf("%s and %s share inode %d", prev, en.Name, en.Ino)
				}
				inodes[en.Ino] = en.Name
				var idx int
				if _, err := fmt.Sscanf(en.Name, "f%d", &idx); err != nil || idx/perDir != di {
					t.Errorf("directory d%02d lists %s, which was created elsewhere", di, en.Name)
				}
			}
			if !more || len(ents) == 0 {
				break
			}
			after = ents[len(ents)-1].Name
		}
	}
	for n, c := range seen {
		if c > 1 {
			t.Errorf("%s is listed %d times", n, c)
		}
	}
	for i := 0; i < creates; i++ {
		if seen[name(i)] == 0 {
			if ackedNames[i] {
				t.Errorf("acknowledged create %s is lost", name(i))
			} else {
				t.Errorf("%s is missing although its create was retried until it succeeded", name(i))
			}
		}
	}
	if len(seen) != creates {
		t.Errorf("the directories list %d names, want %d", len(seen), creates)
	}
	rep, err := other.fs.Fsck(ctx, core.FsckOptions{SkipBlocks: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("fsck: %v", p)
	}
}
