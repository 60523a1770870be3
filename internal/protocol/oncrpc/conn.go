package oncrpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// readBufferSize is the size of the buffered reader a connection
// borrows while records are arriving back to back. It lets one read
// system call pick up several pipelined calls; the reader goes back to
// the pool as soon as it holds no unread bytes.
const readBufferSize = 16 << 10

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// conn is one stream connection: a reader goroutine that frames records
// and one goroutine per call in flight. Call goroutines wait a while for
// the next call when they finish (see worker), so that a busy connection
// reuses them and their grown stacks instead of starting a goroutine, and
// growing its stack again, for every call. Whichever call goroutine
// finishes while no write is under way becomes the writer and sends
// every reply queued meanwhile in one batch, so replies leave in the
// order they complete without a goroutine dedicated to writing.
type conn struct {
	srv *Server
	nc  net.Conn
	ep  endpoint

	// slots holds one token per call read but not yet answered (or
	// dropped); the reader blocks on it at MaxOutstanding.
	slots    chan struct{}
	stop     atomic.Bool
	inflight sync.WaitGroup
	// work hands a record to an idle call goroutine; closed when the
	// reader ends.
	work chan []byte

	wmu     sync.Mutex
	queue   []outRecord // replies waiting for the writer
	spare   []outRecord // the writer's previous batch, reused as the next queue
	writing bool        // a goroutine is writing; others only enqueue
	werr    error       // the first write failure; later replies are discarded
	iov     net.Buffers
}

// outRecord is a reply record waiting to be sent: head (which starts with
// its record mark) and the payload that follows it.
type outRecord struct {
	head []byte
	pl   payload
}

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{
		srv:   s,
		nc:    nc,
		ep:    endpoint{network: "tcp", local: nc.LocalAddr(), remote: nc.RemoteAddr()},
		slots: make(chan struct{}, s.cfg.MaxOutstanding),
		work:  make(chan []byte),
	}
}

// stopReading makes the reader stop at the next record boundary, for a
// graceful shutdown. The order matters: the reader checks stop after
// each deadline it sets, so either it sees the flag or this deadline
// interrupts its read.
func (c *conn) stopReading() {
	c.stop.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) serve() {
	s := c.srv
	if obs := s.cfg.ConnObserver; obs != nil {
		obs.ConnOpened(c.ep.network, c.ep.local, c.ep.remote)
	}
	err := c.readLoop()
	close(c.work) // idle call goroutines end
	if err != nil {
		// Unsent replies of a broken stream are worthless: close now so
		// that calls still running fail their writes at once.
		c.nc.Close()
		c.logReadError(err)
	}
	c.inflight.Wait()
	c.nc.Close()
	if obs := s.cfg.ConnObserver; obs != nil {
		obs.ConnClosed(c.ep.network, c.ep.local, c.ep.remote, err)
	}
	s.untrack(func() { delete(s.conns, c) })
}

func (c *conn) logReadError(err error) {
	s := c.srv
	remote := addrString(c.ep.remote)
	var ne net.Error
	switch {
	case s.closing.Load():
	case errors.Is(err, ErrRecordTooLarge):
		s.logger.Warn("rpc connection closed: record over the size limit; raise the record size limit if the client is legitimate",
			"remote", remote, "max_record_size", s.cfg.MaxRecordSize, "err", err)
	case errors.As(err, &ne) && ne.Timeout():
		s.logger.Info("rpc connection closed: timed out", "remote", remote, "err", err)
	default:
		s.logger.Debug("rpc connection closed", "remote", remote, "err", err)
	}
}

// readLoop reads call records until the connection ends. It returns nil
// when the client closed the connection between records, when the
// server is shutting down, or when the connection was idle for the
// configured time.
func (c *conn) readLoop() error {
	s := c.srv
	var br *bufio.Reader
	defer func() {
		if br != nil {
			br.Reset(nil)
			readerPool.Put(br)
		}
	}()
	var mark [markSize]byte
	for {
		if br != nil && br.Buffered() == 0 {
			br.Reset(nil)
			readerPool.Put(br)
			br = nil
		}
		var n int
		var err error
		c.setReadDeadline(s.cfg.IdleTimeout)
		if c.stop.Load() {
			return nil
		}
		if br == nil {
			// Idle: wait for the next record holding no buffer at all.
			n, err = io.ReadFull(c.nc, mark[:])
			if err == nil {
				br = readerPool.Get().(*bufio.Reader)
				br.Reset(c.nc)
			}
		} else {
			n, err = io.ReadFull(br, mark[:])
		}
		if err != nil {
			switch {
			case err == io.EOF || c.stop.Load():
				return nil
			case s.cfg.IdleTimeout > 0 && n == 0 && isTimeout(err):
				if len(c.slots) > 0 {
					continue // not idle: calls are still being served
				}
				return nil
			}
			return unexpectedEOF(err)
		}

		c.setReadDeadline(s.cfg.ReadTimeout)
		rec, err := readRecordAfterMark(br, binary.BigEndian.Uint32(mark[:]), s.cfg.MaxRecordSize)
		if err != nil {
			if c.stop.Load() {
				return nil
			}
			return err
		}
		select {
		case c.slots <- struct{}{}:
		case <-s.forced:
			putBuffer(rec)
			return nil
		}
		c.inflight.Add(1)
		// Alone on the connection (no other call running, none read
		// ahead): a quick call is served here.
		if len(c.slots) == 1 && br.Buffered() == 0 && s.quick(rec) {
			c.handle(rec)
			continue
		}
		select {
		case c.work <- rec:
		default:
			go c.worker(rec)
		}
	}
}

// workerIdle is how long a call goroutine waits for the next call before it
// ends. Long enough to span the gaps of a busy client; an idle connection
// keeps none.
const workerIdle = 2 * time.Second

// worker serves rec, then the records handed to it while it waits idle.
func (c *conn) worker(rec []byte) {
	var idle *time.Timer
	for {
		c.handle(rec)
		if idle == nil {
			idle = time.NewTimer(workerIdle)
		} else {
			idle.Reset(workerIdle)
		}
		var ok bool
		select {
		case rec, ok = <-c.work:
			if !ok {
				idle.Stop()
				return
			}
		case <-idle.C:
			return
		}
	}
}

func (c *conn) setReadDeadline(d time.Duration) {
	var t time.Time
	if d > 0 {
		t = time.Now().Add(d)
	}
	c.nc.SetReadDeadline(t)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) handle(rec []byte) {
	defer c.inflight.Done()
	var out outRecord
	out.head = c.srv.serveRecord(&c.ep, rec, &out.pl)
	putBuffer(rec)
	if out.head == nil {
		<-c.slots
		return
	}
	putMark(out.head, len(out.head)-markSize+out.pl.len())
	c.send(out)
}

// send queues a reply record and, unless another goroutine is already
// writing, writes the queue until it is empty. A call's slot is freed
// only once its reply has been written, so a client that stops reading
// replies stops being read as well.
func (c *conn) send(reply outRecord) {
	c.wmu.Lock()
	c.queue = append(c.queue, reply)
	if c.writing {
		c.wmu.Unlock()
		return
	}
	c.writing = true
	for len(c.queue) > 0 {
		batch := c.queue
		c.queue, c.spare = c.spare, nil
		werr := c.werr
		c.wmu.Unlock()

		if werr == nil {
			werr = c.write(batch)
		}
		for i := range batch {
			putBuffer(batch[i].head)
			batch[i].pl.free()
			batch[i] = outRecord{}
			<-c.slots
		}

		c.wmu.Lock()
		if werr != nil && c.werr == nil {
			c.werr = werr
			c.nc.Close()
			if !c.srv.closing.Load() {
				c.srv.logger.Info("rpc connection closed: writing replies failed",
					"remote", addrString(c.ep.remote), "err", werr)
			}
		}
		c.spare = batch[:0]
	}
	c.writing = false
	// A burst can leave long queues behind; an idle connection should
	// not keep them.
	if cap(c.spare) > 16 {
		c.spare = nil
	}
	if cap(c.queue) > 16 {
		c.queue = nil
	}
	c.wmu.Unlock()
}

// write sends a batch of reply records; only the writer calls it.
func (c *conn) write(batch []outRecord) error {
	if d := c.srv.cfg.WriteTimeout; d > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(d))
	}
	if len(batch) == 1 && batch[0].pl.data == nil {
		_, err := c.nc.Write(batch[0].head)
		return err
	}
	// net.Buffers consumes the slice it writes, so it gets a copy.
	c.iov = c.iov[:0]
	for _, r := range batch {
		c.iov = append(c.iov, r.head)
		if r.pl.data != nil {
			c.iov = append(c.iov, r.pl.data)
		}
		if len(r.pl.tail) > 0 {
			c.iov = append(c.iov, r.pl.tail)
		}
	}
	iov := c.iov
	_, err := iov.WriteTo(c.nc)
	clear(c.iov)
	if cap(c.iov) > 16 {
		c.iov = nil
	}
	return err
}
