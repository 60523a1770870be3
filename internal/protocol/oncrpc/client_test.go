package oncrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
)

func dialClient(t testing.TB, addr string, opts ...ClientOption) *Client {
	t.Helper()
	c, err := Dial(context.Background(), "tcp", addr, append([]ClientOption{WithClientLogger(quietLogger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientCall(t *testing.T) {
	ts := startServer(t, Config{})
	strict := startServerWithStrictAuth(t)
	anon := dialClient(t, ts.addr)
	sys := dialClient(t, strict.addr, WithCredential(sysCred(t, 1000, 100, 2, "client")))
	anonStrict := dialClient(t, strict.addr)

	tests := []struct {
		name     string
		client   *Client
		vers     uint32
		proc     uint32
		arg      uint32Value
		want     uint32Value
		wantErr  error
		wantLow  uint32
		wantHigh uint32
	}{
		{name: "results", client: anon, vers: 1, proc: procIncrement, arg: 9, want: 10},
		{name: "AUTH_SYS credential", client: sys, vers: 1, proc: procIncrement, arg: 1, want: 2},
		{name: "PROG_MISMATCH", client: anon, vers: 3, proc: procNull, wantErr: ProgMismatch, wantLow: 1, wantHigh: 5},
		{name: "PROC_UNAVAIL", client: anon, vers: 1, proc: 42, wantErr: ProcUnavail},
		{name: "SYSTEM_ERR", client: anon, vers: 1, proc: procFail, wantErr: SystemErr},
		{name: "AUTH_TOOWEAK", client: anonStrict, vers: 1, proc: procIncrement, wantErr: AuthTooWeak},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got uint32Value
			err := tt.client.Call(context.Background(), testProg, tt.vers, tt.proc, tt.arg, &got)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Call error = %v, want %v", err, tt.wantErr)
				}
				var mm *MismatchError
				if errors.As(err, &mm) && (mm.Low != tt.wantLow || mm.High != tt.wantHigh) {
					t.Fatalf("mismatch range = %d-%d, want %d-%d", mm.Low, mm.High, tt.wantLow, tt.wantHigh)
				}
				return
			}
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if got != tt.want {
				t.Fatalf("results = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestClientConcurrentCalls(t *testing.T) {
	ts := startServer(t, Config{MaxOutstanding: 8})
	c := dialClient(t, ts.addr)
	const callers, each = 32, 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				arg := uint32Value(i*1000 + j)
				var got uint32Value
				if err := c.Call(context.Background(), testProg, 1, procIncrement, arg, &got); err != nil {
					errs <- err
					return
				}
				if got != arg+1 {
					errs <- fmt.Errorf("call with %d returned %d: replies were mismatched", arg, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestClientCallCancelled(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialClient(t, ts.addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Call(ctx, testProg, 1, procBlock, nil, nil) }()
	xid := <-ts.handler.entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Call = %v, want context.Canceled", err)
	}
	// The late reply is discarded and the client keeps working.
	ts.handler.release(xid)
	if err := c.Call(context.Background(), testProg, 1, procNull, nil, nil); err != nil {
		t.Fatalf("Call after a cancelled one: %v", err)
	}
}

func TestClientFailsPendingCallsWhenConnectionDrops(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := l.Accept()
		if err == nil {
			accepted <- nc
		}
	}()
	c := dialClient(t, l.Addr().String())
	done := make(chan error, 1)
	go func() { done <- c.Call(context.Background(), testProg, 1, procNull, nil, nil) }()
	server := <-accepted
	readRecord(server, 1<<20) // the call arrives and is never answered
	server.Close()
	if err := <-done; err == nil {
		t.Fatal("Call on a dropped connection succeeded")
	}
	if err := c.Call(context.Background(), testProg, 1, procNull, nil, nil); err == nil {
		t.Fatal("Call after the connection dropped succeeded")
	}
	c.Close()
	if err := c.Call(context.Background(), testProg, 1, procNull, nil, nil); err == nil {
		t.Fatal("Call on a closed client succeeded")
	}
}

func TestClientClose(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialClient(t, ts.addr)
	c.Close()
	if err := c.Call(context.Background(), testProg, 1, procNull, nil, nil); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("Call after Close = %v, want ErrClientClosed", err)
	}
}
