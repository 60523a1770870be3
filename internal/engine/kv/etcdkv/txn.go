package etcdkv

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
)

// opState is what one run of View or Update learned about its member.
type opState struct {
	// failure is the last error that was the member's fault.
	failure error
}

// reader serves the reads of one run from one member at one revision.
type reader struct {
	s  *Store
	m  *member
	op opState
	// rev is the read revision, fixed by the first read; 0 before it.
	rev int64
}

var (
	_ kv.Reader      = (*reader)(nil)
	_ kv.MultiGetter = (*reader)(nil)
)

// rpc runs one call on a connection of the run's member, bounded by the
// breaker timeout and refused by members without a leader.
func (r *reader) rpc(ctx context.Context, what string, call func(ctx context.Context, c *conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := r.m.acquire()
	if err != nil {
		e := fmt.Errorf("etcdkv: %s: %w", what, err)
		r.op.failure = e
		return &kv.Unavailable{Err: e}
	}
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), r.s.timeout)
	err = call(rctx, c)
	timedOut := rctx.Err() == context.DeadlineExceeded
	cancel()
	c.release()
	if err != nil {
		if timedOut && ctx.Err() == nil {
			err = fmt.Errorf("%w (timeout_ms %d exceeded): %v", context.DeadlineExceeded, r.s.timeout.Milliseconds(), err)
		}
		return r.op.mapError(ctx, what, r.m, err)
	}
	return nil
}

// rangeAt runs a Range at the run's revision; the first one is
// linearizable and fixes that revision.
func (r *reader) rangeAt(ctx context.Context, req *pb.RangeRequest) (*pb.RangeResponse, error) {
	if r.rev != 0 {
		req.Revision = r.rev
		// The member already served a linearizable read at rev, so it has
		// applied it: a local read is exact.
		req.Serializable = true
	}
	var resp *pb.RangeResponse
	err := r.rpc(ctx, "read", func(ctx context.Context, c *conn) error {
		var err error
		resp, err = c.kv.Range(ctx, req, grpc.WaitForReady(false), recvLimit)
		return err
	})
	if err != nil {
		return nil, err
	}
	if r.rev == 0 && resp.Header != nil {
		r.rev = resp.Header.Revision
	}
	return resp, nil
}

func (r *reader) fullKey(key []byte) []byte { return r.s.fullKey(key) }

// get reads one key and returns its value and modification revision
// (0 when missing).
func (r *reader) get(ctx context.Context, key []byte) ([]byte, int64, error) {
	resp, err := r.rangeAt(ctx, &pb.RangeRequest{Key: r.fullKey(key)})
	if err != nil {
		return nil, 0, err
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, nil
	}
	kvp := resp.Kvs[0]
	v := kvp.Value
	if v == nil {
		v = []byte{}
	}
	return clip(v), kvp.ModRevision, nil
}

func (r *reader) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, mod, err := r.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if mod == 0 {
		return nil, kv.ErrNotFound
	}
	return v, nil
}

func (r *reader) Scan(ctx context.Context, start, end []byte, limit int, reverse bool) ([]kv.Pair, error) {
	return r.scan(ctx, start, end, limit, reverse, nil)
}

func (r *reader) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	values, _, err := r.getMany(ctx, keys)
	return values, err
}

const (
	// getManyOps is the most keys one request of a batched read asks for:
	// etcd refuses a Txn of more operations than its --max-txn-ops, 128
	// by default like its limit on comparisons.
	getManyOps = maxCompares
	// getManyKeyBytes bounds the keys of one request of a batched read,
	// well within etcd's --max-request-bytes (1.5 MiB by default).
	getManyKeyBytes = 512 << 10
)

// recvLimit lifts gRPC's default 4 MiB limit on a response for reads of
// many values: a batched read (getManyOps values) or a scan page of up to
// kv.MaxValueSize each may exceed it. etcd's own client does the same for
// every call.
var recvLimit = grpc.MaxCallRecvMsgSize(math.MaxInt32)

// getMany reads keys at the run's revision and returns their values and
// modification revisions (nil and 0 for a missing key). Each distinct key
// is asked for once, by a Range in a read-only etcd Txn that carries up
// to getManyOps of them; like get, the first request of a run is
// linearizable and fixes the revision, later ones are served locally at
// it, so every batch reads the same snapshot.
func (r *reader) getMany(ctx context.Context, keys [][]byte) ([][]byte, []int64, error) {
	values := make([][]byte, len(keys))
	mods := make([]int64, len(keys))
	first := make(map[string]int, len(keys))
	distinct := make([]int, 0, len(keys))
	for i, k := range keys {
		if _, dup := first[string(k)]; !dup {
			first[string(k)] = i
			distinct = append(distinct, i)
		}
	}
	var batches [][]int
	for len(distinct) > 0 {
		n, size := 0, 0
		for n < len(distinct) && n < getManyOps {
			size += len(r.s.prefix) + len(keys[distinct[n]])
			if n > 0 && size > getManyKeyBytes {
				break
			}
			n++
		}
		batches = append(batches, distinct[:n])
		distinct = distinct[n:]
	}
	if len(batches) > 0 && r.rev == 0 {
		// The first read of the run fixes the revision the others use.
		if err := r.readBatch(ctx, keys, batches[0], values, mods); err != nil {
			return nil, nil, err
		}
		batches = batches[1:]
	}
	if err := r.readBatches(ctx, keys, batches, values, mods); err != nil {
		return nil, nil, err
	}
	for i, k := range keys {
		if j := first[string(k)]; j != i {
			values[i], mods[i] = bytes.Clone(values[j]), mods[j]
		}
	}
	return values, mods, nil
}

// getManyParallel is how many requests of one batched read are in flight
// at once, once the run's revision is fixed: a listing page of a thousand
// entries needs a dozen or more, which in turn would cost as many round
// trips.
const getManyParallel = 4

// readBatches runs readBatch for each batch, getManyParallel at a time,
// at the run's revision (already fixed). Each request runs on a reader of
// its own, at that revision and on the same member, so that their failures
// are recorded apart; the last one is then charged to the run.
func (r *reader) readBatches(ctx context.Context, keys [][]byte, batches [][]int, values [][]byte, mods []int64) error {
	if len(batches) == 1 || r.rev == 0 {
		// One request, or no revision to share (a member that answered
		// without one): in turn, as the first read fixes the revision.
		for _, idx := range batches {
			if err := r.readBatch(ctx, keys, idx, values, mods); err != nil {
				return err
			}
		}
		return nil
	}
	readers := make([]reader, len(batches))
	errs := make([]error, len(batches))
	sem := make(chan struct{}, getManyParallel)
	var wg sync.WaitGroup
	for i, idx := range batches {
		readers[i] = reader{s: r.s, m: r.m, rev: r.rev}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// Each batch writes only its own keys' places in values and mods.
			errs[i] = readers[i].readBatch(ctx, keys, idx, values, mods)
		}()
	}
	wg.Wait()
	for i := range readers {
		if f := readers[i].op.failure; f != nil {
			r.op.failure = f
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// readBatch reads keys[i] for every i in idx with one etcd Txn and stores
// the answers at values[i] and mods[i].
func (r *reader) readBatch(ctx context.Context, keys [][]byte, idx []int, values [][]byte, mods []int64) error {
	req := &pb.TxnRequest{Success: make([]*pb.RequestOp, len(idx))}
	for n, i := range idx {
		rr := &pb.RangeRequest{Key: r.fullKey(keys[i])}
		if r.rev != 0 {
			// As in rangeAt: the member has applied rev, so a local read
			// is exact, and a Txn whose ranges are all local is served
			// without a round of the quorum.
			rr.Revision, rr.Serializable = r.rev, true
		}
		req.Success[n] = &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: rr}}
	}
	var resp *pb.TxnResponse
	err := r.rpc(ctx, "batched read", func(ctx context.Context, c *conn) error {
		var err error
		resp, err = c.kv.Txn(ctx, req, grpc.WaitForReady(false), recvLimit)
		return err
	})
	if err != nil {
		return err
	}
	if len(resp.Responses) != len(idx) {
		return fmt.Errorf("etcdkv: batched read on etcd member %s returned %d answers for %d keys", r.m.name, len(resp.Responses), len(idx))
	}
	for n, i := range idx {
		rr := resp.Responses[n].GetResponseRange()
		if rr == nil {
			return fmt.Errorf("etcdkv: batched read on etcd member %s answered key %q with something other than a range", r.m.name, keys[i])
		}
		if len(rr.Kvs) == 0 {
			continue
		}
		kvp := rr.Kvs[0]
		v := kvp.Value
		if v == nil {
			v = []byte{}
		}
		values[i], mods[i] = clip(v), kvp.ModRevision
	}
	if r.rev == 0 && resp.Header != nil {
		r.rev = resp.Header.Revision
	}
	return nil
}

// bounds turns a scan's unprefixed [start, end) into etcd's key and range
// end. ok is false for an empty range.
func (r *reader) bounds(start, end []byte) (lo, hi []byte, ok bool) {
	if start != nil && end != nil && bytes.Compare(start, end) >= 0 {
		return nil, nil, false
	}
	lo = r.fullKey(start)
	if len(lo) == 0 {
		// etcd has no empty key; the zero byte is the smallest there is.
		lo = []byte{0}
	}
	switch {
	case end != nil:
		hi = r.fullKey(end)
	case len(r.s.prefix) > 0:
		hi = kv.PrefixEnd(r.s.prefix)
	}
	if hi == nil {
		// No upper bound: etcd's range end "\x00" means every key >= lo.
		hi = []byte{0}
	}
	return lo, hi, true
}

// scan merges the committed pairs in [start, end) at the run's revision
// with the run's own buffered writes (nil in a View). It pages through
// etcd so that no response grows without bound.
func (r *reader) scan(ctx context.Context, start, end []byte, limit int, reverse bool, own *writeSet) ([]kv.Pair, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lo, hi, ok := r.bounds(start, end)
	if !ok {
		return nil, nil
	}
	local := own.inRange(start, end, reverse)
	page := int64(scanPage)
	if limit > 0 {
		// Buffered deletes may hide committed pairs; ask for enough to
		// fill the limit in one request when possible.
		page = min(page, int64(limit+len(local)))
	}
	it := remoteIter{r: r, lo: lo, hi: hi, reverse: reverse, page: page}
	var out []kv.Pair
	if limit > 0 {
		out = make([]kv.Pair, 0, min(limit, scanPage))
	}
	p := len(r.s.prefix)
	remote, err := it.next(ctx)
	if err != nil {
		return nil, err
	}
	li := 0
	for limit <= 0 || len(out) < limit {
		var lk []byte
		if li < len(local) {
			lk = local[li].key
		}
		if remote == nil && lk == nil {
			break
		}
		order := 0
		switch {
		case remote == nil:
			order = 1
		case lk == nil:
			order = -1
		default:
			order = bytes.Compare(remote.Key[p:], lk)
			if reverse {
				order = -order
			}
		}
		if order >= 0 {
			// The buffered write wins over a committed pair of the same
			// key, and comes first when it sorts first.
			w := local[li]
			li++
			if !w.del {
				out = append(out, kv.Pair{Key: bytes.Clone(w.key), Value: bytes.Clone(w.value)})
			}
			if order > 0 {
				continue
			}
		} else {
			v := remote.Value
			if v == nil {
				v = []byte{}
			}
			out = append(out, kv.Pair{Key: clip(remote.Key[p:]), Value: clip(v)})
		}
		if remote, err = it.next(ctx); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// remoteIter walks a key range at the run's revision, a page at a time.
type remoteIter struct {
	r       *reader
	lo, hi  []byte
	reverse bool
	page    int64
	kvs     []*mvccpb.KeyValue
	i       int
	done    bool
}

// next returns the next pair, or nil at the end.
func (it *remoteIter) next(ctx context.Context) (*mvccpb.KeyValue, error) {
	for it.i >= len(it.kvs) {
		if it.done {
			return nil, nil
		}
		req := &pb.RangeRequest{Key: it.lo, RangeEnd: it.hi, Limit: it.page}
		if it.reverse {
			req.SortOrder = pb.RangeRequest_DESCEND
			req.SortTarget = pb.RangeRequest_KEY
		}
		resp, err := it.r.rangeAt(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, kvp := range resp.Kvs {
			if !bytes.HasPrefix(kvp.Key, it.r.s.prefix) {
				return nil, fmt.Errorf("etcdkv: read on etcd member %s returned key %q outside the range asked for", it.r.m.name, kvp.Key)
			}
		}
		it.kvs, it.i = resp.Kvs, 0
		if !resp.More || len(resp.Kvs) == 0 {
			it.done = true
		} else {
			last := resp.Kvs[len(resp.Kvs)-1].Key
			if it.reverse {
				it.hi = last
			} else {
				it.lo = append(bytes.Clone(last), 0)
			}
		}
		// Later pages are fetched only when the first did not suffice:
		// make them full.
		it.page = scanPage
	}
	kvp := it.kvs[it.i]
	it.i++
	return kvp, nil
}

// write is one buffered Put or Delete.
type write struct {
	key   []byte
	value []byte
	del   bool
}

// writeSet is a transaction's buffered writes, last one per key.
type writeSet struct {
	byKey map[string]*write
}

// inRange returns the writes with start <= key < end in scan order.
func (ws *writeSet) inRange(start, end []byte, reverse bool) []*write {
	if ws == nil || len(ws.byKey) == 0 {
		return nil
	}
	var out []*write
	for _, w := range ws.byKey {
		if (start == nil || bytes.Compare(w.key, start) >= 0) && (end == nil || bytes.Compare(w.key, end) < 0) {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b *write) int {
		if reverse {
			return bytes.Compare(b.key, a.key)
		}
		return bytes.Compare(a.key, b.key)
	})
	return out
}

// txn is one run of an Update function.
type txn struct {
	reader
	// reads holds the modification revision each Get of committed state
	// saw, 0 for missing: the keys the commit compares.
	reads  map[string]int64
	writes writeSet
	ops    int
	// err is the first limit violation; Put and Delete have no error
	// result.
	err error
}

var (
	_ kv.Txn         = (*txn)(nil)
	_ kv.MultiGetter = (*txn)(nil)
)

func newTxn(s *Store, m *member) *txn {
	return &txn{
		reader: reader{s: s, m: m},
		reads:  make(map[string]int64, 8),
		writes: writeSet{byKey: make(map[string]*write, 8)},
	}
}

func (t *txn) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if w, ok := t.writes.byKey[string(key)]; ok {
		if w.del {
			return nil, kv.ErrNotFound
		}
		return bytes.Clone(w.value), nil
	}
	v, mod, err := t.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if _, seen := t.reads[string(key)]; !seen {
		t.reads[string(key)] = mod
	}
	if mod == 0 {
		return nil, kv.ErrNotFound
	}
	return v, nil
}

// GetMany answers the keys the transaction wrote from its writes and reads
// the others in one batch, recording each for the commit's comparison as
// Get does.
func (t *txn) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	values := make([][]byte, len(keys))
	var remote [][]byte
	var at []int
	for i, k := range keys {
		if w, ok := t.writes.byKey[string(k)]; ok {
			if !w.del {
				values[i] = append([]byte{}, w.value...)
			}
			continue
		}
		remote = append(remote, k)
		at = append(at, i)
	}
	got, mods, err := t.getMany(ctx, remote)
	if err != nil {
		return nil, err
	}
	for n, i := range at {
		values[i] = got[n]
		if _, seen := t.reads[string(remote[n])]; !seen {
			t.reads[string(remote[n])] = mods[n]
		}
	}
	return values, nil
}

// Scan reads the committed state merged with the buffered writes. Keys it
// returns are not compared at commit: the kv contract leaves phantoms to
// guard keys.
func (t *txn) Scan(ctx context.Context, start, end []byte, limit int, reverse bool) ([]kv.Pair, error) {
	return t.scan(ctx, start, end, limit, reverse, &t.writes)
}

func (t *txn) Put(key, value []byte) {
	if !t.admit(len(value)) {
		return
	}
	t.writes.byKey[string(key)] = &write{key: bytes.Clone(key), value: bytes.Clone(value)}
}

func (t *txn) Delete(key []byte) {
	if !t.admit(0) {
		return
	}
	t.writes.byKey[string(key)] = &write{key: bytes.Clone(key), del: true}
}

// admit counts one write against the kv limits and reports whether it is
// within them.
func (t *txn) admit(valueLen int) bool {
	t.ops++
	switch {
	case t.err != nil:
	case t.ops > kv.MaxTxnOps:
		t.err = fmt.Errorf("%w: more than %d writes in one transaction; split it", kv.ErrTooLarge, kv.MaxTxnOps)
	case valueLen > kv.MaxValueSize:
		t.err = fmt.Errorf("%w: value of %d bytes, the limit is %d", kv.ErrTooLarge, valueLen, kv.MaxValueSize)
	}
	return t.err == nil
}

// commit sends the buffered writes guarded by the comparisons.
func (t *txn) commit(ctx context.Context) error {
	if len(t.writes.byKey) == 0 {
		return nil
	}
	size := 0
	for _, w := range t.writes.byKey {
		size += len(w.key) + len(w.value)
	}
	if size > kv.MaxTxnBytes {
		return fmt.Errorf("%w: the transaction writes %d bytes of keys and values, the limit is %d", kv.ErrTooLarge, size, kv.MaxTxnBytes)
	}
	cmps, err := t.compares()
	if err != nil {
		return err
	}
	req := &pb.TxnRequest{Compare: cmps, Success: make([]*pb.RequestOp, 0, len(t.writes.byKey))}
	for _, w := range t.writes.byKey {
		if w.del {
			req.Success = append(req.Success, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{
				RequestDeleteRange: &pb.DeleteRangeRequest{Key: t.fullKey(w.key)}}})
		} else {
			req.Success = append(req.Success, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{
				RequestPut: &pb.PutRequest{Key: t.fullKey(w.key), Value: w.value}}})
		}
	}
	var resp *pb.TxnResponse
	err = t.rpc(ctx, "commit", func(ctx context.Context, c *conn) error {
		var err error
		resp, err = c.kv.Txn(ctx, req, grpc.WaitForReady(false))
		return err
	})
	if err != nil {
		// Unavailable here is ambiguous: the commit may have been applied.
		return err
	}
	if !resp.Succeeded {
		return errRerun
	}
	t.s.commits.Add(1)
	return nil
}

// compares builds the commit's guard: one comparison per key read, none
// for keys only written; see the package comment.
func (t *txn) compares() ([]*pb.Compare, error) {
	cmps := make([]*pb.Compare, 0, min(len(t.reads), maxCompares))
	var missing [][]byte
	for k, mod := range t.reads {
		if mod != 0 {
			cmps = append(cmps, modEquals(t.fullKey([]byte(k)), mod))
		} else {
			missing = append(missing, []byte(k))
		}
	}
	if len(cmps)+len(missing) <= maxCompares {
		for _, k := range missing {
			cmps = append(cmps, modEquals(t.fullKey(k), 0))
		}
		return cmps, nil
	}
	budget := maxCompares - len(cmps)
	if budget < 1 {
		return nil, fmt.Errorf("%w: the transaction read %d existing keys; etcd compares at most %d per transaction", kv.ErrTooLarge, len(cmps), maxCompares)
	}
	// Every key was read as missing at the read revision, so any key of
	// a range modified after it is a change the commit must not miss;
	// keys of the range that the transaction did not read only add
	// needless reruns.
	ceiling := t.rev + 1
	slices.SortFunc(missing, bytes.Compare)
	for g := 0; g < budget; g++ {
		first, last := g*len(missing)/budget, (g+1)*len(missing)/budget-1
		switch {
		case first > last:
		case first == last:
			cmps = append(cmps, modEquals(t.fullKey(missing[first]), 0))
		default:
			end := append(t.fullKey(missing[last]), 0)
			cmps = append(cmps, modBelow(t.fullKey(missing[first]), end, ceiling))
		}
	}
	return cmps, nil
}

func modEquals(key []byte, mod int64) *pb.Compare {
	return &pb.Compare{
		Key:         key,
		Target:      pb.Compare_MOD,
		Result:      pb.Compare_EQUAL,
		TargetUnion: &pb.Compare_ModRevision{ModRevision: mod},
	}
}

// modBelow compares key, or every key in [key, end) when end is set.
func modBelow(key, end []byte, rev int64) *pb.Compare {
	return &pb.Compare{
		Key:         key,
		RangeEnd:    end,
		Target:      pb.Compare_MOD,
		Result:      pb.Compare_LESS,
		TargetUnion: &pb.Compare_ModRevision{ModRevision: rev},
	}
}
