package sessionkit

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestAppendPackedPatched checks the no-scan path: taken only when p is
// Base's own memory and every entry says where its value goes, giving
// what the one-scan path gives; for anything else the other paths run.
func TestAppendPackedPatched(t *testing.T) {
	base := Pack(map[string][]byte{keyMeta: {1, 2, 3}, "name": []byte("sessionkit"), "n": {7}})
	nAt := strings.Index(string(base), "\x01n\x01") + 3 + 1
	nameAt := strings.Index(string(base), "sessionkit") + 1
	build := func(b Packed, entries ...setEntry) Update {
		var buf [4]setEntry
		u := Update{set: buf[:0], Base: Record{Packed: b}}
		for _, e := range entries {
			u.putAt(e.k, e.v, e.at)
		}
		return u
	}
	both := []setEntry{{k: "n", v: []byte{8}, at: nAt}, {k: "name", v: []byte("SESSIONKIT"), at: nameAt}}
	copied := Packed(strings.Clone(string(base)))
	for _, c := range []struct {
		name    string
		u       Update
		p       Packed
		patched bool
	}{
		{"two values", build(base, both...), base, true},
		{"one value", build(base, setEntry{k: "n", v: []byte{9}, at: nAt}), base, true},
		{"same bytes elsewhere", build(base, both...), copied, false},
		{"stored session changed", build(base, both...), Pack(map[string][]byte{"name": []byte("sessionkit!"), "n": {7}}), false},
		{"no Base", build("", setEntry{k: "n", v: []byte{8}, at: nAt}), base, false},
		{"a value without a place", build(base, setEntry{k: "n", v: []byte{8}, at: nAt}, setEntry{k: "x", v: []byte{1}}), base, false},
		{"place past the end", build(base, setEntry{k: "n", v: []byte{8, 9}, at: len(base)}), base, false},
		{"with a delete", func() Update { u := build(base, both...); u.Delete = []string{"x"}; return u }(), base, false},
		{"with clear", func() Update { u := build(base, both...); u.Clear = true; return u }(), base, false},
		{"a value added to Set", func() Update {
			u := build(base, both...)
			u.Set = map[string][]byte{"x": {1}}
			return u
		}(), base, false},
		{"a listed value replaced in Set", func() Update {
			u := build(base, both...)
			u.Set = map[string][]byte{"n": {5}}
			return u
		}(), base, false},
	} {
		_, ok := c.u.appendPatched(nil, c.p, c.u.setEntries(nil))
		if ok != c.patched {
			t.Errorf("%s: no-scan path taken %v, want %v", c.name, ok, c.patched)
		}
		got := c.u.AppendPacked([]byte("hdr"), c.p)
		if !strings.HasPrefix(string(got), "hdr") {
			t.Fatalf("%s: dst's bytes lost: %q", c.name, got)
		}
		p, err := ParsePacked(got[3:])
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := c.u.Apply(c.p.Map())
		if p.Len() != len(want) {
			t.Errorf("%s: %d values, want %d", c.name, p.Len(), len(want))
		}
		for k, v := range want {
			if got, _ := p.Lookup(k); string(got) != string(v) {
				t.Errorf("%s: %q = %q, want %q", c.name, k, got, v)
			}
		}
		if len(got)-3 != c.u.PackedSize(c.p) {
			t.Errorf("%s: PackedSize = %d, wrote %d", c.name, c.u.PackedSize(c.p), len(got)-3)
		}
		if c.patched {
			// Byte for byte what the one-scan path writes.
			c.u.Base = Record{}
			if in, _ := c.u.appendInPlace(nil, c.p, c.u.setEntries(nil)); string(in) != string(got[3:]) {
				t.Errorf("%s: patched %q, one-scan path %q", c.name, got[3:], in)
			}
		}
	}
}

// packedProvider keeps each session packed and hands back the very
// Packed it holds, as the memory provider does, and counts the writes
// whose merge took the no-scan path. Its other methods are
// releaseProvider's.
type packedProvider struct {
	releaseProvider
	patched int
}

// ReadsUpdatesByMethod: the manager then lists the values, with their
// places, which is what a patch needs.
func (*packedProvider) ReadsUpdatesByMethod() {}

func (p *packedProvider) Update(_ context.Context, id string, u Update) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.recs[id]
	if _, ok := u.appendPatched(nil, r.Packed, u.setEntries(nil)); ok {
		p.patched++
	}
	r.Packed = ownPacked(u.AppendPacked(nil, r.Packed))
	if !u.Expires.IsZero() {
		r.Expires = u.Expires
	}
	p.recs[id] = r
	return nil
}

// A request that writes values back at their length, read or not, has its
// save patched into a copy of what it read; any other write, or one that
// meets a session another request changed since, is merged, and no write
// is lost.
func TestReadModifyWriteIsPatched(t *testing.T) {
	p := &packedProvider{releaseProvider: releaseProvider{recs: map[string]Record{}}}
	m := New(Config{IdleTimeout: time.Hour})
	if err := m.UseProvider(p); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := NewID()
	enc := func(v any) []byte {
		b, err := encodeValue(m.cfg.Codec, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p.recs[id] = Record{Packed: Pack(map[string][]byte{
		keyMeta: encodeMeta(time.Now(), 0),
		"name":  enc("sessionkit"),
		"n":     enc(7),
	}), Expires: time.Now().Add(time.Hour)}
	open := func() *Store {
		t.Helper()
		s := newStore(m, nil, false)
		s.s.id = id
		rec, err := p.Get(ctx, id)
		if err != nil || !m.adopt(s.s, rec, time.Now()) {
			t.Fatalf("load: %v", err)
		}
		return s
	}
	increment := func(s *Store) {
		t.Helper()
		n, err := s.GetInt("n")
		if err != nil {
			t.Fatal(err)
		}
		s.Set("n", n+1)
	}

	s := open()
	increment(s)
	if err := s.Save(ctx); err != nil || p.patched != 1 {
		t.Fatalf("read-modify-write: err %v, patched %d times, want 1", err, p.patched)
	}
	// A key the request did not read, overwritten at its length: patched
	// too, its place looked up. A value of another length, or a key the
	// session lacks: merged.
	s = open()
	_, _ = s.GetInt("n")
	s.Set("name", "SESSIONKIT")
	s2 := open()
	s2.Set("n", 1000)
	_, _ = s2.GetInt("n")
	for _, h := range []*Store{s, s2} {
		if err := h.Save(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if p.patched != 2 {
		t.Fatalf("patched %d times, want 2", p.patched)
	}
	s = open()
	s.Set("fresh", 1)
	if err := s.Save(ctx); err != nil || p.patched != 2 {
		t.Fatalf("new key: err %v, patched %d times, want 2", err, p.patched)
	}
	// A request that read n while another lengthened the value before it
	// (moving n): the stored session is not the one it read, so its save
	// is merged, and keeps the other's change.
	s = open()
	increment(s)
	other := open()
	other.Set("name", "a much longer name than before")
	if err := other.Save(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx); err != nil {
		t.Fatal(err)
	}
	if p.patched != 2 {
		t.Fatalf("patched %d times, want 2", p.patched)
	}
	check := open()
	if n, err := check.GetInt("n"); err != nil || n != 1001 {
		t.Fatalf("n = %d, %v; want 1001", n, err)
	}
	if v, err := check.GetString("name"); err != nil || v != "a much longer name than before" {
		t.Fatalf("name = %q, %v", v, err)
	}
	if v, err := check.GetInt("fresh"); err != nil || v != 1 {
		t.Fatalf("fresh = %d, %v", v, err)
	}
}
