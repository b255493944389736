package sessionkit

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := NewID()
		if len(id) != DefaultIDLength || !ValidID(id) {
			t.Fatalf("bad ID %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate ID %q", id)
		}
		seen[id] = true
	}
}

func TestParseID(t *testing.T) {
	m := New(Config{})
	good := NewID()
	if got := m.parseID([]byte(good)); got != good {
		t.Fatalf("parseID(%q) = %q", good, got)
	}
	for _, bad := range []string{"", "x", "../../../../etc/passwd", strings.Repeat("a", 257), good + "=", good[:15]} {
		if got := m.parseID([]byte(bad)); got != "" {
			t.Fatalf("parseID(%q) = %q, want refusal", bad, got)
		}
	}
}

// TestEncodeID checks encodeID against encoding/base64 on bytes that
// put every digit in every position, and fillID's IDs for well-formed
// base64url of 24 bytes.
func TestEncodeID(t *testing.T) {
	inputs := [][24]byte{{}, [24]byte(bytes.Repeat([]byte{0xff}, 24))}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var b [24]byte
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		inputs = append(inputs, b)
	}
	var seen [DefaultIDLength][64]bool
	for _, in := range inputs {
		var b [26]byte
		copy(b[:], in[:])
		b[24], b[25] = 0xff, 0xa5 // read, never used
		var buf [DefaultIDLength]byte
		encodeID(&buf, &b)
		if want := base64.RawURLEncoding.EncodeToString(in[:]); string(buf[:]) != want {
			t.Fatalf("encodeID(%x) = %q, want %q", in, buf, want)
		}
		for i, c := range buf {
			seen[i][strings.IndexByte(idAlphabet, c)] = true
		}
	}
	for i := range seen {
		for d, ok := range seen[i] {
			if !ok {
				t.Fatalf("the inputs never put digit %q at position %d", idAlphabet[d], i)
			}
		}
	}
	for range 1000 {
		var buf [DefaultIDLength]byte
		fillID(&buf)
		raw, err := base64.RawURLEncoding.Strict().DecodeString(string(buf[:]))
		if err != nil || len(raw) != 24 {
			t.Fatalf("%q is not 24 bytes in base64url: %v", buf, err)
		}
	}
}

// TestValidIDEveryByte puts every byte value at every position of IDs
// whose lengths leave every remainder after the eight-byte steps of
// validID, and checks
// the answer against the alphabet spelled out.
func TestValidIDEveryByte(t *testing.T) {
	allowed := func(c byte) bool {
		return strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", c) >= 0
	}
	for _, n := range []int{16, 17, 18, 19, 20, 21, 22, 23, DefaultIDLength, MaxIDLength} {
		id := []byte(strings.Repeat("a", n))
		for pos := range n {
			for c := range 256 {
				id[pos] = byte(c)
				if got, want := validID(id), allowed(byte(c)); got != want {
					t.Fatalf("length %d, byte %#x at %d: validID = %v, want %v", n, c, pos, got, want)
				}
				if got := ValidID(string(id)); got != allowed(byte(c)) {
					t.Fatalf("ValidID disagrees with validID on %q", id)
				}
			}
			id[pos] = 'a'
		}
	}
	for _, n := range []int{0, 1, MinIDLength - 1, MaxIDLength + 1} {
		if ValidID(strings.Repeat("a", n)) {
			t.Fatalf("an ID of %d bytes was accepted", n)
		}
	}
}

// FuzzParseID: nothing a client sends panics, and whatever is accepted is
// a well-formed ID; once a Store holds it, it no longer aliases the
// request's bytes.
func FuzzParseID(f *testing.F) {
	f.Add([]byte(NewID()))
	f.Add([]byte("../../x"))
	f.Add([]byte("a"))
	f.Add([]byte(strings.Repeat("A", 300)))
	m := New(Config{})
	signed := New(Config{SignKeys: [][]byte{[]byte("fuzz-signing-key-0123456789abcdef")}})
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Nothing the fuzzer makes up carries a valid signature.
		if id := signed.parseID(raw); id != "" {
			t.Fatalf("unsigned input %q verified as ID %q", raw, id)
		}
		id := m.parseID(raw)
		if id == "" {
			return
		}
		if !ValidID(id) {
			t.Fatalf("accepted malformed ID %q", id)
		}
		// What a Store keeps must not alias the request buffer.
		h := newStore(m, nil, true)
		s := h.s
		s.setID(id)
		for i := range raw {
			raw[i] = '!'
		}
		if !ValidID(s.id) {
			t.Fatal("the Store's ID aliases the request buffer")
		}
		_ = h.Close()
	})
}

// sinkBool keeps the benchmarks' results alive.
var sinkBool bool

func BenchmarkValidID(b *testing.B) {
	ids := make([][]byte, 1024)
	for i := range ids {
		ids[i] = []byte(NewID())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sinkBool = validID(ids[i%len(ids)])
	}
}

func BenchmarkEncodeID(b *testing.B) {
	var src [26]byte
	var buf [DefaultIDLength]byte
	for i := 0; i < b.N; i++ {
		src[i%24]++
		encodeID(&buf, &src)
	}
	sinkBool = buf[0] == 0
}
