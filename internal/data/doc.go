// Package data owns how file content is laid out in immutable blocks:
// a file is a sequence of chunks, a chunk is a list of slices, and a slice
// is stored as checksummed blocks in a blob.Store.
//
// It knows nothing of inodes, the metadata store or protocols. The
// filesystem core keeps each chunk's list of slices (its chunk map) in its
// metadata, encoded with AppendSlices, and calls this package to write,
// read, verify and delete the blocks those maps reference. This package
// must not import the core, a KV engine or a protocol, and must not decide
// when data becomes visible: a slice is visible only once the core commits
// a chunk map that references it, after WriteSlice has returned.
//
// # Chunks and slices
//
// A file is divided into chunks of ChunkSize (64 MiB) bytes. Each write of
// contiguous bytes within one chunk becomes a slice: a new, never reused
// slice ID whose data (at most ChunkSize bytes) is stored once and never
// modified. A chunk map is a list of Slice references, oldest first. Each
// reference places Len bytes of a slice's data, starting at Off within the
// slice, at Pos within the chunk. Later references in the list hide earlier
// ones where they overlap (Resolve); bytes no reference covers read as
// zeros. A reference with ID 0 is an explicit hole: it reads as zeros and
// hides what is under it.
//
// Invariants of a valid chunk map, which DecodeSlices enforces:
//   - Pos+Len <= ChunkSize for every reference;
//   - for a slice reference, Size <= ChunkSize and Off+Len <= Size;
//   - for a hole, Size and Off are zero (AppendSlices stores them as zero).
//
// Overwrites only append references, so a chunk map grows with every
// write. NeedsCompaction says when a map is fragmented enough that the core
// should read the chunk back (ReadChunk), write it as one new slice, and
// swap the map; the old slices are then released by reference counting
// (SliceIDs lists what a map references).
//
// # Blocks
//
// A slice of Size bytes is stored as ceil(Size/BlockSize) blocks; block i
// holds the slice's bytes [i*BlockSize, min((i+1)*BlockSize, Size)). Block i
// of slice id with n data bytes is stored under the key BlockKey(id, i, n):
//
//	chunks/<id/1000000>/<id/1000>/<id>_<i>_<n>
//
// The two directory levels keep any one directory of a local engine small
// and spread object-store keys. Since n is in the key, a reader knows every
// block's exact layout from the chunk map alone, and a garbage collector
// listing the store knows every block's size without reading it.
//
// # Block format (version 3)
//
// The data of a block is divided into segments of SegmentSize (4 KiB); the
// last segment may be shorter. For n data bytes there are
// s = ceil(n/SegmentSize) segments, and the stored object is the data
// followed by its header:
//
//	offset 0        the n data bytes
//	offset n        magic "CFSB" (4 bytes)
//	offset n+4      format version, 3 (1 byte)
//	offset n+5      reserved, zero (3 bytes)
//	offset n+8      s segment checksums, 4 bytes each, little-endian
//	offset n+8+4s   header checksum, 4 bytes, little-endian
//
// The data comes first so that it starts on a page boundary of the object:
// a local engine can then write it straight from the writer's buffer with
// direct I/O, without copying it. Version 2 is the same layout with
// 64 KiB segments; it is still read (a reader that has not seen a block's
// header assumes version 3, and reads the data again when the header says
// 2), never written. Segments became 4 KiB because a read fetches and
// verifies whole segments: a 4 KiB read of version 2 cost a 64 KiB read
// and checksum. The header of a full block grew from 268 bytes to 4 KiB,
// a tenth of a percent. (Version 1, never released, had the header first.)
//
// All checksums are CRC32C (Castagnoli), computed over the block's identity
// followed by the covered bytes. The identity is the 16 bytes
// le64(slice id) le32(block index) le32(n); a segment's checksum covers the
// identity, le32(segment number), then the segment's data; the header
// checksum covers the identity, then the header's first 8+4s bytes. Binding the
// identity into every checksum means a block returned under the wrong key,
// or a segment moved within a block, fails verification like a flipped bit.
//
// Because n is known from the key, the header's place and length 12+4s (at
// most 268 bytes for a 4 MiB block) and the position of every segment are
// computed without reading anything first. A read of bytes [off, off+len) of a block
// therefore needs at most two GetRange calls, issued concurrently: one for
// the header, one for the data of the whole segments that cover the range,
// read straight into the caller's buffer when the range is segment-aligned.
// Verified headers are cached (they are immutable and tiny), so sequential
// reads through a block cost one GetRange each after the first. Only the
// segments a read covers are verified.
//
// What a reader guarantees: a read returns the bytes WriteSlice stored or
// an error; never other bytes, not even in the caller's buffer on error.
// A changed byte in the header (magic, version, reserved bytes, segment
// checksums, header checksum) fails every read of the block; a changed
// data byte fails every read that covers its segment; a truncated object,
// or an object stored under another block's key, fails too. Each of these
// is an error wrapping ErrChecksum; VerifySlice, which reads whole blocks,
// finds all of them. A block missing from the store gives an error
// wrapping ErrMissingBlock. Both carry the block key.
//
// The magic and version stay at offsets n and n+4 in every future format. A
// later version may change everything else; a reader that finds a version
// it does not know reports ErrChecksum for that block rather than guessing,
// so an older release never returns bytes it cannot verify.
//
// # Writing
//
// WriteSlice checksums each block's data where it lies and, on an engine
// that takes an object in parts (blob.PartsPutter), puts the data and the
// header without copying them; otherwise it copies both into a pooled
// buffer. It puts the blocks of a slice concurrently. It
// returns nil only when every block is durable, which the core relies on:
// blocks reach stable storage before the metadata that references them.
// A pooled buffer is reused only after its Put succeeded, so an engine that
// still holds a failed request's body never sees it change.
//
// # Write-back buffering
//
// FileBuffer holds one file's written but unflushed bytes as sorted,
// non-overlapping extents that never cross a chunk boundary, so that Take
// can hand out each chunk's data without copying. It does no I/O and is not
// safe for concurrent use: the core serialises access per file.
package data
