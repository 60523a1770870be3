package quota

import (
	"encoding/binary"
	"fmt"
)

// Encodings are a version byte followed by varints: a usage record is
// written on every change of its owner's files, so it stays a few bytes. A
// later version may append fields; decoders of this version reject what they
// do not know rather than guess.
const (
	usageVersion  = 1
	limitsVersion = 1
)

// AppendUsage appends the encoding of u to dst.
func AppendUsage(dst []byte, u Usage) []byte {
	dst = append(dst, usageVersion)
	dst = binary.AppendVarint(dst, u.Bytes)
	dst = binary.AppendVarint(dst, u.Inodes)
	dst = binary.AppendVarint(dst, u.BytesSoftSince)
	return binary.AppendVarint(dst, u.InodesSoftSince)
}

// DecodeUsage decodes what AppendUsage wrote; b must hold exactly one record.
func DecodeUsage(b []byte) (Usage, error) {
	if len(b) == 0 || b[0] != usageVersion {
		return Usage{}, corrupt("usage", b, hintUsage, "unknown version")
	}
	var u Usage
	rest := b[1:]
	for _, f := range []*int64{&u.Bytes, &u.Inodes, &u.BytesSoftSince, &u.InodesSoftSince} {
		v, n := binary.Varint(rest)
		if n <= 0 {
			return Usage{}, corrupt("usage", b, hintUsage, "truncated or overlong field")
		}
		*f, rest = v, rest[n:]
	}
	if len(rest) != 0 {
		return Usage{}, corrupt("usage", b, hintUsage, "trailing bytes")
	}
	return u, nil
}

// AppendLimits appends the encoding of l to dst.
func AppendLimits(dst []byte, l Limits) []byte {
	dst = append(dst, limitsVersion)
	dst = binary.AppendUvarint(dst, l.BytesSoft)
	dst = binary.AppendUvarint(dst, l.BytesHard)
	dst = binary.AppendUvarint(dst, l.InodesSoft)
	return binary.AppendUvarint(dst, l.InodesHard)
}

// DecodeLimits decodes what AppendLimits wrote; b must hold exactly one
// record.
func DecodeLimits(b []byte) (Limits, error) {
	if len(b) == 0 || b[0] != limitsVersion {
		return Limits{}, corrupt("limits", b, hintLimits, "unknown version")
	}
	var l Limits
	rest := b[1:]
	for _, f := range []*uint64{&l.BytesSoft, &l.BytesHard, &l.InodesSoft, &l.InodesHard} {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return Limits{}, corrupt("limits", b, hintLimits, "truncated or overlong field")
		}
		*f, rest = v, rest[n:]
	}
	if len(rest) != 0 {
		return Limits{}, corrupt("limits", b, hintLimits, "trailing bytes")
	}
	return l, nil
}

const (
	hintUsage  = "recompute this id's usage from its files"
	hintLimits = "set this id's limits again"
)

func corrupt(what string, b []byte, hint, why string) error {
	const show = 32
	head := b
	if len(head) > show {
		head = head[:show]
	}
	return fmt.Errorf("quota: corrupt %s record (%s, %d bytes, starting %x): %s",
		what, why, len(b), head, hint)
}
