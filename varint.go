package sessionkit

import (
	"encoding/binary"
	"math/bits"
)

// readVarint is binary.Varint for the varints a load decodes on every
// request, a session's creation time above all: unix nanoseconds take 9
// bytes, which binary.Varint reads one at a time through a chain of
// dependent shifts (about 190 instructions). Here the first 8 bytes are
// read as one word and their 7-bit groups gathered by three
// shift-and-mask steps, with no loop. Anything it does not take on (a
// buffer under 8 bytes, a varint over 9) goes to binary.Varint, so the
// two agree on every input (TestReadVarintMatchesBinary).
func readVarint(b []byte) (int64, int) {
	if len(b) < 8 {
		return binary.Varint(b)
	}
	x := binary.LittleEndian.Uint64(b)
	var ux uint64
	var n int
	if ends := ^x & 0x8080808080808080; ends != 0 {
		// The lowest byte without its continuation bit ends the varint;
		// the bytes after it are not part of it.
		n = bits.TrailingZeros64(ends)/8 + 1
		ux = gather7(x & (^uint64(0) >> (64 - 8*n)))
	} else if len(b) >= 9 && b[8] < 0x80 {
		n = 9
		ux = gather7(x) | uint64(b[8])<<56
	} else {
		return binary.Varint(b)
	}
	v := int64(ux >> 1)
	if ux&1 != 0 {
		v = ^v
	}
	return v, n
}

// gather7 packs the low 7 bits of each byte of x, least significant
// byte first, into the low 56 bits of the result.
func gather7(x uint64) uint64 {
	x &= 0x7f7f7f7f7f7f7f7f
	x = x&0x007f007f007f007f | x&0x7f007f007f007f00>>1
	x = x&0x00003fff00003fff | x&0x3fff00003fff0000>>2
	return x&0x000000000fffffff | x&0x0fffffff00000000>>4
}
