package localblob

import (
	"errors"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Large objects are written with O_DIRECT. A block store's objects are
// written once, synced at once and mostly read later, so routing them
// through the page cache only costs: the kernel copies every byte, then
// writes it back under memory pressure, and on a two-core machine that
// copying alone held sequential writes well under the disk's bandwidth.
// Direct I/O needs the memory, the file offset and the length aligned.
// When the object's first part starts on an aligned address (a block's
// data, which comes first in its object, straight from a write-back
// buffer), its aligned prefix is written from where it lies and the rest
// through the page cache; otherwise the object is gathered into an aligned
// buffer first. fdatasync then covers both. A filesystem that refuses
// O_DIRECT (tmpfs, some FUSE mounts) is written through the page cache.
const (
	// directAlign satisfies the alignment of every common logical block
	// size (512 and 4096 bytes).
	directAlign = 4096
	// directMin is the smallest object written directly; smaller ones are
	// cheaper through the page cache, and often read back soon.
	directMin = 256 << 10
	// directPooled is the largest object whose buffer is pooled: a 4 MiB
	// block with its header.
	directPooled = 4<<20 + directAlign
)

var directBuffers = sync.Pool{New: func() any {
	b := alignedBuffer(directPooled)
	return &b
}}

// alignedBuffer returns n bytes starting at a directAlign boundary.
func alignedBuffer(n int) []byte {
	raw := make([]byte, n+directAlign)
	skip := (directAlign - int(uintptr(unsafe.Pointer(unsafe.SliceData(raw)))%directAlign)) % directAlign
	return raw[skip : skip+n : skip+n]
}

// errNoDirect reports that the file's filesystem does not take O_DIRECT.
var errNoDirect = errors.New("O_DIRECT not supported")

// writeDirect writes the concatenation of parts (total bytes) to the empty
// file f, an aligned prefix with O_DIRECT and the rest through the page
// cache. It returns errNoDirect, having written nothing, when the
// filesystem refuses direct I/O.
func writeDirect(f *os.File, parts [][]byte, total int) error {
	first := parts[0]
	inPlace := len(first) >= directAlign &&
		uintptr(unsafe.Pointer(unsafe.SliceData(first)))%directAlign == 0
	if !inPlace {
		// Gather the object into an aligned buffer, zero-padded to a whole
		// number of pages: one device write, and the file cut back after.
		padded := (total + directAlign - 1) &^ (directAlign - 1)
		var buf []byte
		if padded <= directPooled {
			p := directBuffers.Get().(*[]byte)
			defer directBuffers.Put(p)
			buf = *p
		} else {
			buf = alignedBuffer(padded)
		}
		n := 0
		for _, p := range parts {
			n += copy(buf[n:], p)
		}
		clear(buf[total:padded])
		first, parts = buf[:padded], nil
	} else {
		parts = append([][]byte{first[len(first)&^(directAlign-1):]}, parts[1:]...)
		first = first[:len(first)&^(directAlign-1)]
	}
	fd := int(f.Fd())
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return &os.PathError{Op: "fcntl", Path: f.Name(), Err: err}
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags|unix.O_DIRECT); err != nil {
		return errNoDirect
	}
	done := 0
	for done < len(first) {
		n, err := unix.Write(fd, first[done:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EINVAL && done == 0 {
			// Accepted the flag but not this alignment.
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags)
			return errNoDirect
		}
		if err != nil {
			return &os.PathError{Op: "write", Path: f.Name(), Err: err}
		}
		done += n
		if done%directAlign != 0 {
			break // a short write: finish through the page cache
		}
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags); err != nil {
		return &os.PathError{Op: "fcntl", Path: f.Name(), Err: err}
	}
	if parts == nil {
		// The gathered buffer: finish a short write, then cut the padding.
		if done < total {
			if _, err := f.Write(first[done:total]); err != nil {
				return err
			}
		}
		if done > total {
			return f.Truncate(int64(total))
		}
		return nil
	}
	if done < len(first) {
		if _, err := f.Write(first[done:]); err != nil {
			return err
		}
	}
	for _, p := range parts {
		if _, err := f.Write(p); err != nil {
			return err
		}
	}
	return nil
}
