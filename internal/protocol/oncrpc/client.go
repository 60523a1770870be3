package oncrpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
)

// ErrClientClosed is returned by calls on a closed Client, and by calls
// in flight when it is closed.
var ErrClientClosed = errors.New("oncrpc: client closed")

// Client makes RPC calls over one stream connection. Any number of
// calls may be in flight at once; replies are matched to calls by xid.
// A Client is safe for concurrent use.
type Client struct {
	nc        net.Conn
	cred      OpaqueAuth
	maxRecord int
	logger    *slog.Logger
	nextXID   atomic.Uint32

	wmu sync.Mutex // serialises record writes

	mu      sync.Mutex
	pending map[uint32]chan []byte
	err     error // set once the connection is unusable
	done    chan struct{}
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithCredential sets the credential sent with every call; the default
// is AUTH_NONE. See SysCredential.Credential for AUTH_SYS.
func WithCredential(cred OpaqueAuth) ClientOption {
	return func(c *Client) { c.cred = cred }
}

// WithMaxReplySize caps the size of a reply record; a larger one breaks
// the connection. The default is DefaultMaxRecordSize.
func WithMaxReplySize(n int) ClientOption {
	return func(c *Client) { c.maxRecord = n }
}

// WithClientLogger sets the logger; slog.Default() otherwise.
func WithClientLogger(l *slog.Logger) ClientOption {
	return func(c *Client) { c.logger = l }
}

// Dial connects to an RPC server over a stream network ("tcp",
// "tcp4", "tcp6" or "unix").
func Dial(ctx context.Context, network, address string, opts ...ClientOption) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("oncrpc: dial %s %s: %w", network, address, err)
	}
	return NewClient(nc, opts...), nil
}

// NewClient makes calls over an established stream connection, which
// the Client owns from then on.
func NewClient(nc net.Conn, opts ...ClientOption) *Client {
	c := &Client{
		nc:        nc,
		maxRecord: DefaultMaxRecordSize,
		logger:    slog.Default(),
		pending:   make(map[uint32]chan []byte),
		done:      make(chan struct{}),
	}
	for _, opt := range opts {
		opt(c)
	}
	// Start xids at a random point so that a restarted client does not
	// reuse the xids of its previous life against a server's
	// duplicate request cache.
	c.nextXID.Store(rand.Uint32())
	go c.readReplies()
	return c
}

// Call calls procedure proc of version vers of program prog with args
// (nil for none) and decodes the results into reply (nil to ignore
// them). It returns when the reply has arrived, ctx is done, or the
// connection fails. A reply other than SUCCESS is returned as an error
// matching an AcceptStat, an AuthStat or a *MismatchError.
func (c *Client) Call(ctx context.Context, prog, vers, proc uint32, args io.WriterTo, reply io.ReaderFrom) error {
	xid := c.nextXID.Add(1)
	var rec bytes.Buffer
	rec.Write([]byte{0, 0, 0, 0})
	if err := encodeCall(&rec, xid, prog, vers, proc, c.cred, OpaqueAuth{Flavor: AuthNone}); err != nil {
		return fmt.Errorf("oncrpc: encode call header: %w", err)
	}
	if args != nil {
		if _, err := args.WriteTo(&rec); err != nil {
			return fmt.Errorf("oncrpc: encode arguments of program %d procedure %d: %w", prog, proc, err)
		}
	}
	b := rec.Bytes()
	if len(b)-markSize > fragmentLength {
		return fmt.Errorf("oncrpc: call of %d bytes is too large for one record", len(b)-markSize)
	}
	putMark(b, len(b)-markSize)

	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.pending[xid] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, xid)
		c.mu.Unlock()
	}()

	if err := c.writeRecord(ctx, b); err != nil {
		return err
	}
	select {
	case rep, ok := <-ch:
		if !ok {
			return c.failure()
		}
		return decodeResults(rep, reply)
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		// The reply may have arrived just before the connection failed.
		select {
		case rep, ok := <-ch:
			if ok {
				return decodeResults(rep, reply)
			}
		default:
		}
		return c.failure()
	}
}

func (c *Client) writeRecord(ctx context.Context, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	deadline, _ := ctx.Deadline()
	c.nc.SetWriteDeadline(deadline)
	if _, err := c.nc.Write(b); err != nil {
		// A partial record leaves the stream unusable for every call.
		c.fail(fmt.Errorf("oncrpc: send call to %s: %w", c.nc.RemoteAddr(), err))
		return c.failure()
	}
	return nil
}

func decodeResults(rec []byte, reply io.ReaderFrom) error {
	r := bytes.NewReader(rec)
	if _, err := decodeReply(r); err != nil {
		return err
	}
	if reply == nil {
		return nil
	}
	if _, err := reply.ReadFrom(r); err != nil {
		return fmt.Errorf("oncrpc: decode results: %w", err)
	}
	return nil
}

// readReplies delivers reply records to the calls waiting for them.
func (c *Client) readReplies() {
	for {
		rec, err := readRecord(c.nc, c.maxRecord)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("oncrpc: connection to %s closed by the server", c.nc.RemoteAddr())
			} else {
				err = fmt.Errorf("oncrpc: read reply from %s: %w", c.nc.RemoteAddr(), err)
			}
			c.fail(err)
			return
		}
		if len(rec) < 4 {
			putBuffer(rec)
			continue
		}
		xid := binary.BigEndian.Uint32(rec)
		c.mu.Lock()
		ch, ok := c.pending[xid]
		delete(c.pending, xid)
		c.mu.Unlock()
		if !ok {
			// A reply to a call that gave up waiting, or a duplicate.
			c.logger.Debug("rpc reply for no pending call dropped", "xid", xid)
			putBuffer(rec)
			continue
		}
		// The caller decodes at its own pace; the record is copied out
		// of the pool so the caller owns it.
		ch <- append([]byte(nil), rec...)
		putBuffer(rec)
	}
}

// fail marks the client unusable with err and releases every waiter.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
	c.nc.Close()
}

func (c *Client) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection; calls in flight fail with
// ErrClientClosed.
func (c *Client) Close() error {
	c.fail(ErrClientClosed)
	return nil
}
