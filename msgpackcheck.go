package sessionkit

import (
	"encoding/binary"
	"errors"
)

// errMsgpackShape is returned for MessagePack data whose structure cannot
// be right: truncated, a reserved byte, more elements declared than bytes
// left, or nested too deep.
var errMsgpackShape = errors.New("malformed msgpack data")

// maxMsgpackDepth bounds nesting, so hostile data cannot drive the decoder
// into very deep recursion.
const maxMsgpackDepth = 512

// checkMsgpack walks data's structure without decoding it. The msgpack
// decoder trusts declared lengths: a corrupt map header claiming billions
// of entries keeps it busy for minutes. Every element takes at least one
// byte, so a declared count larger than the bytes left is refused here,
// in time linear in len(data).
func checkMsgpack(data []byte) error {
	// stack holds, per open container, how many elements are still due.
	stack := make([]uint64, 1, 16)
	stack[0] = 1
	p := data
	for len(stack) > 0 {
		if stack[len(stack)-1] == 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		stack[len(stack)-1]--
		if len(p) == 0 {
			return errMsgpackShape
		}
		b := p[0]
		var skip, n uint64 // payload bytes to skip; elements the value contains
		hdr := uint64(1)
		switch {
		case b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3:
		case b >= 0x80 && b <= 0x8f:
			n = 2 * uint64(b&0x0f)
		case b >= 0x90 && b <= 0x9f:
			n = uint64(b & 0x0f)
		case b >= 0xa0 && b <= 0xbf:
			skip = uint64(b & 0x1f)
		default:
			var ok bool
			if hdr, skip, n, ok = msgpackHeader(p); !ok {
				return errMsgpackShape
			}
		}
		if hdr+skip > uint64(len(p)) {
			return errMsgpackShape
		}
		p = p[hdr+skip:]
		if n > 0 {
			if n > uint64(len(p)) || len(stack) >= maxMsgpackDepth {
				return errMsgpackShape
			}
			stack = append(stack, n)
		}
	}
	return nil
}

// msgpackFixed gives the payload size of the fixed-size formats.
var msgpackFixed = [256]uint8{
	0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8,
	0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8,
	0xd4: 2, 0xd5: 3, 0xd6: 5, 0xd7: 9, 0xd8: 17, // fixext: type byte + data
}

// msgpackHeader decodes the header of the multi-byte formats: its length,
// the payload bytes after it, and the elements it contains.
func msgpackHeader(p []byte) (hdr, skip, n uint64, ok bool) {
	size := func(width int) (uint64, bool) {
		if len(p) < 1+width {
			return 0, false
		}
		switch width {
		case 1:
			return uint64(p[1]), true
		case 2:
			return uint64(binary.BigEndian.Uint16(p[1:])), true
		default:
			return uint64(binary.BigEndian.Uint32(p[1:])), true
		}
	}
	b := p[0]
	if f := msgpackFixed[b]; f > 0 {
		return 1, uint64(f), 0, true
	}
	var width int
	switch b {
	case 0xc4, 0xc7, 0xd9:
		width = 1
	case 0xc5, 0xc8, 0xda, 0xdc, 0xde:
		width = 2
	case 0xc6, 0xc9, 0xdb, 0xdd, 0xdf:
		width = 4
	default: // 0xc1 is never used
		return 0, 0, 0, false
	}
	l, ok := size(width)
	if !ok {
		return 0, 0, 0, false
	}
	hdr = 1 + uint64(width)
	switch b {
	case 0xc7, 0xc8, 0xc9: // ext: a type byte, then l bytes
		return hdr, 1 + l, 0, true
	case 0xdc, 0xdd:
		return hdr, 0, l, true
	case 0xde, 0xdf:
		return hdr, 0, 2 * l, true
	}
	return hdr, l, 0, true
}
