package sessionkit

import (
	"encoding/base64"
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

// TestFillIDIsBase64 checks that fillID's IDs are crypto/rand's bytes in
// base64url, by decoding them with encoding/base64: every ID decodes to
// 24 bytes and encodes back to itself, and across many IDs every digit
// shows up in every position.
func TestFillIDIsBase64(t *testing.T) {
	var seen [DefaultIDLength][64]bool
	for range 5000 {
		var buf [DefaultIDLength]byte
		fillID(&buf)
		raw, err := base64.RawURLEncoding.Strict().DecodeString(string(buf[:]))
		if err != nil || len(raw) != 24 {
			t.Fatalf("%q is not 24 bytes in base64url: %v", buf, err)
		}
		if back := base64.RawURLEncoding.EncodeToString(raw); back != string(buf[:]) {
			t.Fatalf("%q encodes back as %q", buf, back)
		}
		for i, c := range buf {
			seen[i][strings.IndexByte(idAlphabet, c)] = true
		}
	}
	for i := range seen {
		for d, ok := range seen[i] {
			if !ok {
				t.Fatalf("digit %q never appeared at position %d in 5000 IDs", idAlphabet[d], i)
			}
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
		h := newStore(m, nil)
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
