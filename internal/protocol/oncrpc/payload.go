package oncrpc

import "io"

// PayloadWriter is implemented by the writer that a handler's results
// are encoded to when the transport can send a large byte payload (the
// data of an NFS READ) from where it lies instead of copying it into the
// reply. WritePayload appends p to the reply as Write would; release, if
// not nil, runs once the reply has been sent or dropped, after which p is
// no longer used. Results check for it with a type assertion and fall
// back to Write; a reply carries at most one such payload (later ones are
// copied).
type PayloadWriter interface {
	io.Writer
	WritePayload(p []byte, release func())
}

// payload is the part of a reply record sent from the handler's memory:
// data, then tail (bytes written after it, such as XDR padding).
type payload struct {
	data    []byte
	tail    []byte
	release func()
}

func (p *payload) len() int { return len(p.data) + len(p.tail) }

// free runs the release function, once.
func (p *payload) free() {
	if p.release != nil {
		p.release()
	}
	*p = payload{}
}

// flatten returns the reply record head followed by the payload, in one
// pooled buffer (for transports and caches that need the bytes in one
// piece), and frees the payload.
func flatten(head []byte, p *payload) []byte {
	if p.data == nil && p.tail == nil {
		return head
	}
	head = growBuffer(head, len(head)+p.len())
	n := len(head) - p.len()
	n += copy(head[n:], p.data)
	copy(head[n:], p.tail)
	p.free()
	return head
}
