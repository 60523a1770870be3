package oncrpc

import (
	"net"
	"time"
)

// ConnObserver is told about every stream connection the server
// accepts and closes, for a gauge of active connections.
// ConnClosed gets the reason the connection ended, nil for an orderly
// close by the client or the server. Both are called from the
// connection's goroutine and must not block.
type ConnObserver interface {
	ConnOpened(network string, local, remote net.Addr)
	ConnClosed(network string, local, remote net.Addr, err error)
}

// CallObserver is told about every call once it is finished, for
// latency and outcome metrics. CallDone must not block: it runs on the
// call's goroutine after the reply has been queued.
type CallObserver interface {
	CallDone(info CallInfo)
}

// Outcome says what became of a call.
type Outcome uint8

const (
	// Replied: an accepted reply was sent; CallInfo.Stat has its status.
	Replied Outcome = iota
	// Denied: a rejected reply was sent. CallInfo.Auth has the reason,
	// AuthOK meaning an RPC version mismatch.
	Denied
	// Dropped: no reply was sent, because the handler asked so or the
	// call is a retransmission of one still in progress.
	Dropped
	// Replayed: a retransmission answered from the duplicate request
	// cache without running the call again.
	Replayed
)

func (o Outcome) String() string {
	switch o {
	case Replied:
		return "replied"
	case Denied:
		return "denied"
	case Dropped:
		return "dropped"
	case Replayed:
		return "replayed"
	}
	return "unknown"
}

// CallInfo describes one finished call. Prog, Vers and Proc are zero
// when the header could not be decoded.
type CallInfo struct {
	Prog, Vers, Proc uint32
	Network          string
	RemoteAddr       net.Addr
	Start            time.Time
	Duration         time.Duration
	// ArgBytes counts the encoded arguments, ReplyBytes the whole reply
	// record without its record mark.
	ArgBytes   int
	ReplyBytes int
	Outcome    Outcome
	Stat       AcceptStat
	Auth       AuthStat
	// Err is the error the handler returned, if any.
	Err error
}
