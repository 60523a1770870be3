package etcdkv

import (
	"bytes"
	"context"
	"fmt"
	"slices"

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

var _ kv.Reader = (*reader)(nil)

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
		resp, err = c.kv.Range(ctx, req, grpc.WaitForReady(false))
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

var _ kv.Txn = (*txn)(nil)

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
