package sessionkit

import (
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
