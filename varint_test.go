package sessionkit

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// TestReadVarintMatchesBinary checks readVarint against binary.Varint on
// every length of varint, with and without bytes after it, truncated,
// overlong and not minimally encoded.
func TestReadVarintMatchesBinary(t *testing.T) {
	check := func(b []byte) {
		t.Helper()
		v, n := readVarint(b)
		wv, wn := binary.Varint(b)
		if v != wv || n != wn {
			t.Fatalf("readVarint(% x) = %d, %d; binary.Varint says %d, %d", b, v, n, wv, wn)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	values := []int64{0, 1, -1, 63, -64, 64, math.MaxInt64, math.MinInt64, 1764662400000000000, -1764662400000000000}
	for shift := 0; shift < 64; shift++ {
		values = append(values, 1<<shift, -(1 << shift), 1<<shift-1, int64(r.Uint64()>>shift))
	}
	for _, v := range values {
		enc := binary.AppendVarint(nil, v)
		for extra := 0; extra <= 10; extra++ {
			b := append([]byte{}, enc...)
			for range extra {
				b = append(b, byte(r.Uint32()))
			}
			check(b)
			check(b[:len(enc)-1]) // truncated
		}
	}
	for range 200000 {
		b := make([]byte, r.IntN(14))
		for i := range b {
			b[i] = byte(r.Uint32())
			if r.IntN(4) > 0 {
				b[i] |= 0x80 // long runs of continuation bits
			}
		}
		check(b)
	}
	// Not minimally encoded, and longer than any varint.
	check([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00})
	check([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	check([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})
	check([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
}

func FuzzReadVarint(f *testing.F) {
	f.Add(binary.AppendVarint(nil, 1764662400000000000))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n := readVarint(b)
		wv, wn := binary.Varint(b)
		if v != wv || n != wn {
			t.Fatalf("readVarint(% x) = %d, %d; binary.Varint says %d, %d", b, v, n, wv, wn)
		}
	})
}

var varintSink int64

// BenchmarkReadVarint decodes a creation time as every load does, against
// binary.Varint in the same run.
func BenchmarkReadVarint(b *testing.B) {
	enc := binary.AppendVarint(nil, 1764662400000000000)
	b.Run("readVarint", func(b *testing.B) {
		for b.Loop() {
			v, _ := readVarint(enc)
			varintSink += v
		}
	})
	b.Run("binary.Varint", func(b *testing.B) {
		for b.Loop() {
			v, _ := binary.Varint(enc)
			varintSink += v
		}
	})
}
