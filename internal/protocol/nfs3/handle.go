package nfs3

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/claudefs/cfs-gateway/internal/core"
)

// A file handle is HandleSize bytes:
//
//	[0]      version (handleVersion)
//	[1:4]    zero, reserved for later versions
//	[4:8]    export id: CRC-32 of the export's name
//	[8:16]   fsid of the filesystem (core.FS.FSID)
//	[16:24]  inode number
//	[24:32]  inode generation
//
// Nothing in it depends on the gateway process or the order of the exports in
// the configuration, so a handle stays valid across restarts and on every
// gateway that exports the same name. Integers are big-endian.
const (
	HandleSize    = 32
	handleVersion = 1
)

// errBadHandle is a handle that this server cannot have issued: wrong size,
// version or reserved bytes (NFS3ERR_BADHANDLE).
var errBadHandle = errors.New("nfs3: malformed file handle")

// fileHandle is a decoded file handle.
type fileHandle struct {
	export uint32
	fsid   uint64
	ino    core.Ino
	gen    uint64
}

// exportID is the stable identifier of an export in file handles.
func exportID(name string) uint32 { return crc32.ChecksumIEEE([]byte(name)) }

func (h fileHandle) encode() []byte {
	b := make([]byte, HandleSize)
	b[0] = handleVersion
	binary.BigEndian.PutUint32(b[4:8], h.export)
	binary.BigEndian.PutUint64(b[8:16], h.fsid)
	binary.BigEndian.PutUint64(b[16:24], uint64(h.ino))
	binary.BigEndian.PutUint64(b[24:32], h.gen)
	return b
}

// decodeHandle parses a handle; anything but a well-formed current-version
// handle is errBadHandle.
func decodeHandle(b []byte) (fileHandle, error) {
	if len(b) != HandleSize || b[0] != handleVersion || b[1]|b[2]|b[3] != 0 {
		return fileHandle{}, errBadHandle
	}
	h := fileHandle{
		export: binary.BigEndian.Uint32(b[4:8]),
		fsid:   binary.BigEndian.Uint64(b[8:16]),
		ino:    core.Ino(binary.BigEndian.Uint64(b[16:24])),
		gen:    binary.BigEndian.Uint64(b[24:32]),
	}
	if h.ino == 0 {
		return fileHandle{}, errBadHandle
	}
	return h, nil
}
