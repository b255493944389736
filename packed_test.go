package sessionkit

import (
	"bytes"
	"errors"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestPackedRoundTrip(t *testing.T) {
	long := strings.Repeat("k", 300) // lengths of two varint bytes
	in := map[string][]byte{"a": []byte("1"), "\x00m": {0, 255}, "": {}, long: bytes.Repeat([]byte("v"), 70000)}
	p := Pack(in)
	q, err := ParsePacked([]byte(p))
	if err != nil || q != p {
		t.Fatalf("ParsePacked(Pack(v)) = %v", err)
	}
	// ParsePackedString hands back the very string it was given.
	str := string(p)
	if q, err := ParsePackedString(str); err != nil || q != p {
		t.Fatalf("ParsePackedString(Pack(v)) = %v", err)
	} else if unsafe.StringData(string(q)) != unsafe.StringData(str) {
		t.Fatal("ParsePackedString copied its input")
	}
	if p.Len() != len(in) {
		t.Fatalf("Len = %d, want %d", p.Len(), len(in))
	}
	for k, v := range in {
		got, ok := p.Lookup(k)
		if !ok || !bytes.Equal(got, v) {
			t.Fatalf("Lookup(%.10q) = %.10q, %v", k, got, ok)
		}
	}
	if _, ok := p.Lookup("missing"); ok {
		t.Fatal("Lookup of a missing key found it")
	}
	if !maps.EqualFunc(p.Map(), in, bytes.Equal) {
		t.Fatal("Map differs from what was packed")
	}
	var zero Packed
	if zero.Len() != 0 || len(zero.Map()) != 0 {
		t.Fatal("the zero Packed is not empty")
	}
	if _, ok := zero.Lookup(""); ok {
		t.Fatal("the zero Packed has a value")
	}
}

func TestParsePackedJunk(t *testing.T) {
	good := []byte(Pack(map[string][]byte{"a": []byte("1")}))
	for _, b := range [][]byte{nil, {}, {2}, {1}, {1, 0xff}, good[:len(good)-1], append(good, 0),
		{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, {1, 100, 1, 'a'}, {1, 2, 1, 'a', 1, 'b'}} {
		if _, err := ParsePacked(b); !errors.Is(err, ErrCorruptValue) {
			t.Errorf("ParsePacked(%x) = %v, want ErrCorruptValue", b, err)
		}
		if _, err := ParsePackedString(string(b)); !errors.Is(err, ErrCorruptValue) {
			t.Errorf("ParsePackedString(%x) = %v, want ErrCorruptValue", b, err)
		}
		// Malformed bytes converted directly must read safely too.
		p := Packed(b)
		p.Lookup("a")
		p.Len()
		p.Map()
	}
}

// AppendPacked must give exactly what Apply gives on a map, for any mix of
// Clear, Delete and Set, and PackedSize must predict its length.
func TestAppendPackedMatchesApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"a", "b", "c", "\x00m", strings.Repeat("x", 200), ""}
	randValues := func() map[string][]byte {
		m := map[string][]byte{}
		for _, k := range keys {
			if rng.IntN(2) == 0 {
				m[k] = bytes.Repeat([]byte{byte(rng.IntN(256))}, rng.IntN(300))
			}
		}
		return m
	}
	patched := 0 // cases whose placed form takes the no-scan path
	for i := 0; i < 2000; i++ {
		old := randValues()
		u := Update{Clear: rng.IntN(5) == 0, Set: randValues()}
		for _, k := range keys {
			if rng.IntN(3) == 0 {
				u.Delete = append(u.Delete, k)
			}
		}
		if i%3 == 0 {
			// New values of the same lengths for keys old holds: the
			// in-place path, unless a key of Set is missing from old.
			u = Update{Set: map[string][]byte{}}
			for k, v := range old {
				if rng.IntN(2) == 0 {
					u.Set[k] = bytes.Repeat([]byte{byte(rng.IntN(256))}, len(v))
				}
			}
			if rng.IntN(4) == 0 {
				u.Set["b"] = []byte("x")
			}
		}
		want := u.Apply(old)
		packed := Pack(old)
		forms := updateForms(rng, u)
		placed := placedForm(u, packed)
		if _, ok := placed.appendPatched(nil, packed, placed.set); ok {
			patched++
		}
		forms["placed"] = placed
		for form, u := range forms {
			if got := u.Apply(old); !maps.EqualFunc(got, want, bytes.Equal) {
				t.Fatalf("case %d, %s: Apply gave %q, want %q", i, form, got, want)
			}
			prefix := []byte("id:")
			b := u.AppendPacked(prefix, packed)
			if len(b)-len(prefix) != u.PackedSize(packed) {
				t.Fatalf("case %d, %s: PackedSize = %d, AppendPacked wrote %d", i, form, u.PackedSize(packed), len(b)-len(prefix))
			}
			if string(b[:len(prefix)]) != "id:" {
				t.Fatal("AppendPacked overwrote dst")
			}
			got, err := ParsePacked(b[len(prefix):])
			if err != nil {
				t.Fatal(err)
			}
			if !maps.EqualFunc(got.Map(), want, bytes.Equal) || got.Len() != len(want) {
				t.Fatalf("case %d, %s: AppendPacked gave %q, Apply %q", i, form, got.Map(), want)
			}
		}
	}
	if patched < 100 {
		t.Fatalf("the no-scan path ran in %d cases of 2000, want at least 100", patched)
	}
}

// updateForms returns u, whose values are all in Set, in the forms the
// manager and wrappers give it: the values listed (the manager's Update
// for a MethodReader), and some listed and some in Set, with stale listed
// values of keys Set holds too (a wrapper that added to or replaced the
// values of the manager's Update). Every form sets the same values.
func updateForms(rng *rand.Rand, u Update) map[string]Update {
	listed, mixed := u, u
	listed.Set, mixed.Set = nil, map[string][]byte{}
	for k, v := range u.Set {
		listed.put(k, v)
		switch rng.IntN(3) {
		case 0:
			mixed.Set[k] = v
		case 1:
			mixed.set = append(mixed.set, setEntry{k: k, v: []byte("stale")})
			mixed.Set[k] = v
		default:
			mixed.put(k, v)
		}
	}
	if len(mixed.Set) == 0 {
		mixed.Set = nil
	}
	return map[string]Update{"map": u, "listed": listed, "mixed": mixed}
}

// FuzzAppendPacked: for any stored bytes, even malformed, and any
// update, AppendPacked never panics, writes what PackedSize says, and
// what it writes reads as Apply says; a well-formed result unless the
// no-scan path copied malformed bytes as they were, which still read the
// same (the entries before the first malformed one, updated).
func FuzzAppendPacked(f *testing.F) {
	f.Add([]byte(Pack(map[string][]byte{"a": []byte("1"), "bb": {0}})), "a", []byte("x"), "bb", false, false)
	f.Add([]byte(Pack(map[string][]byte{"a": []byte("1"), "bb": {0}})), "bb", []byte{1}, "a", true, false)
	f.Add([]byte("\x01\x30\x01k\x01v"), "k", []byte("w"), "", false, true)
	f.Fuzz(func(t *testing.T, b []byte, key string, value []byte, del string, withDelete, withClear bool) {
		p := Packed(b)
		entries := 0
		for range p.All() {
			entries++
		}
		if entries != len(p.Map()) {
			return // a key held twice: Lookup reads the first, Map the last
		}
		u := Update{Clear: withClear, Set: map[string][]byte{key: value}}
		if withDelete {
			u.Delete = []string{del}
		}
		want := u.Apply(p.Map())
		for form, u := range map[string]Update{"map": u, "placed": placedForm(u, p)} {
			out := u.AppendPacked(nil, p)
			if len(out) != u.PackedSize(p) {
				t.Fatalf("%s: PackedSize = %d, AppendPacked wrote %d", form, u.PackedSize(p), len(out))
			}
			if got := Packed(out).Map(); !maps.EqualFunc(got, want, bytes.Equal) {
				t.Fatalf("%s: AppendPacked gave %q, Apply %q", form, got, want)
			}
			if _, err := ParsePacked(out); err != nil && (form == "map" || checkPacked(string(p)) == nil) {
				t.Fatalf("%s: AppendPacked wrote what ParsePacked refuses: %v", form, err)
			}
		}
	})
}

// placedForm returns u, made against p, as the manager makes it when the
// request read p: Base is p, and each value is listed with the place of
// the value it replaces in p when that is as long (setEntry.at), which
// sends the merge down the no-scan path when every value has one.
func placedForm(u Update, p Packed) Update {
	placed := u
	placed.Set, placed.set, placed.Base = nil, nil, Record{Packed: p}
	for k, v := range u.Set {
		at := 0
		if old, ok := p.Lookup(k); ok && len(old) == len(v) && len(v) > 0 {
			at = int(uintptr(unsafe.Pointer(unsafe.SliceData(old)))-uintptr(unsafe.Pointer(unsafe.StringData(string(p))))) + 1
		}
		placed.putAt(k, v, at)
	}
	return placed
}

// The methods that read the values an Update sets see the same values in
// every form, each key once.
func TestUpdateSetMethods(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 500; i++ {
		ref := Update{Set: map[string][]byte{}}
		for j := rng.IntN(6); j > 0; j-- {
			ref.Set[string(rune('a'+rng.IntN(8)))] = []byte{byte(rng.IntN(256))}
		}
		for form, u := range updateForms(rng, ref) {
			if u.SetLen() != len(ref.Set) {
				t.Fatalf("case %d, %s: SetLen = %d, want %d", i, form, u.SetLen(), len(ref.Set))
			}
			seen := map[string][]byte{}
			for k, v := range u.SetEntries() {
				if _, ok := seen[k]; ok {
					t.Fatalf("case %d, %s: SetEntries gave %q twice", i, form, k)
				}
				seen[k] = v
			}
			if !maps.EqualFunc(seen, ref.Set, bytes.Equal) {
				t.Fatalf("case %d, %s: SetEntries gave %q, want %q", i, form, seen, ref.Set)
			}
			for k, v := range ref.Set {
				if got := u.lookupSet(k); !bytes.Equal(got, v) {
					t.Fatalf("case %d, %s: lookupSet(%q) = %q, want %q", i, form, k, got, v)
				}
			}
			if got := u.lookupSet("z"); got != nil {
				t.Fatalf("case %d, %s: lookupSet of a key not set = %q", i, form, got)
			}
			n := 0
			for range u.SetEntries() {
				n++
				break
			}
			if want := min(1, len(ref.Set)); n != want {
				t.Fatalf("case %d, %s: a loop that breaks saw %d values, want %d", i, form, n, want)
			}
		}
	}
}

// TestAppendPackedOverwrites checks the one-scan path: taken when an
// update only sets keys, those the session holds to values of the same
// lengths, leaving every stored entry where it was (new keys follow), and
// not taken for anything else, whose result the general path normalizes.
func TestAppendPackedOverwrites(t *testing.T) {
	old := Pack(map[string][]byte{keyMeta: {1, 2, 3}, "name": []byte("sessionkit"), "n": {7}})
	u := Update{Set: map[string][]byte{"n": {8}, "name": []byte("SESSIONKIT")}}
	got := u.AppendPacked([]byte("hdr"), old)
	want := strings.NewReplacer("\x01n\x01\x07", "\x01n\x01\x08", "sessionkit", "SESSIONKIT").Replace(string(old))
	if string(got) != "hdr"+want {
		t.Fatalf("in place: got %q, want %q", got, "hdr"+want)
	}
	if len(got)-3 != u.PackedSize(old) {
		t.Fatalf("PackedSize = %d, wrote %d", u.PackedSize(old), len(got)-3)
	}
	// A new key: the stored entries as they were, the count one more,
	// the new entry after them.
	u = Update{Set: map[string][]byte{"n": {8}, "x": {1}}}
	got = u.AppendPacked(nil, old)
	want = "\x01\x04" + strings.Replace(string(old[2:]), "\x01n\x01\x07", "\x01n\x01\x08", 1) + "\x01x\x01\x01"
	if string(old[:2]) != "\x01\x03" || string(got) != want {
		t.Fatalf("new key: got %q, want %q", got, want)
	}
	// Whichever path each of these takes, the result must read as Apply
	// says and PackedSize must tell its size.
	dup := Packed(string(Pack(map[string][]byte{"n": {1}}))[:1] + "\x02\x01n\x01\x01\x01n\x01\x02")
	nonMinimal := Packed("\x01\x81\x00\x01n\x01\x07")
	trailing := old + "\x00"
	for _, c := range []struct {
		name    string
		p       Packed
		u       Update
		inPlace bool
	}{
		{"new key", old, Update{Set: map[string][]byte{"n": {8}, "x": {1}}}, true},
		{"into nothing", "", Update{Set: map[string][]byte{"x": {1}}}, true},
		{"non-minimal count", nonMinimal, Update{Set: map[string][]byte{"n": {8}}}, true},
		{"longer value", old, Update{Set: map[string][]byte{"n": {8, 9}}}, false},
		{"with a delete", old, Update{Set: map[string][]byte{"n": {8}}, Delete: []string{"name"}}, false},
		{"with clear", old, Update{Set: map[string][]byte{"n": {8}}, Clear: true}, false},
		{"duplicate key", dup, Update{Set: map[string][]byte{"n": {9}}}, false},
		{"trailing bytes", trailing, Update{Set: map[string][]byte{"n": {8}}}, false},
	} {
		b := c.u.AppendPacked(nil, c.p)
		if _, ok := c.u.appendInPlace(nil, c.p, c.u.setEntries(nil)); ok != c.inPlace {
			t.Errorf("%s: one-scan path taken %v, want %v", c.name, ok, c.inPlace)
		}
		p, err := ParsePacked(b)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if want := c.u.Apply(c.p.Map()); !maps.EqualFunc(p.Map(), want, bytes.Equal) {
			t.Errorf("%s: got %q, want %q", c.name, p.Map(), want)
		}
		if len(b) != c.u.PackedSize(c.p) {
			t.Errorf("%s: PackedSize = %d, wrote %d", c.name, c.u.PackedSize(c.p), len(b))
		}
	}
}

// Many kept runs (every other key deleted) take the path that does not
// fit the stack.
func TestAppendPackedManyRuns(t *testing.T) {
	old := map[string][]byte{}
	u := Update{Set: map[string][]byte{"new": []byte("v")}}
	for i := 0; i < 40; i++ {
		k := strings.Repeat("k", i+1)
		old[k] = []byte(k)
		if i%2 == 0 {
			u.Delete = append(u.Delete, k)
		}
	}
	p := Pack(old)
	b := u.AppendPacked(nil, p)
	if len(b) != u.PackedSize(p) {
		t.Fatalf("PackedSize = %d, wrote %d", u.PackedSize(p), len(b))
	}
	got, err := ParsePacked(b)
	if err != nil || !maps.EqualFunc(got.Map(), u.Apply(old), bytes.Equal) {
		t.Fatalf("got %q, %v", got.Map(), err)
	}
}

// One allocation for the result, none for the work.
func TestAppendPackedAllocs(t *testing.T) {
	old := Pack(map[string][]byte{"\x00m": {1, 2}, "name": []byte("x"), "n": {1}})
	u := Update{Set: map[string][]byte{"n": {2}}, Delete: []string{"name"}}
	if n := testing.AllocsPerRun(100, func() { u.AppendPacked(nil, old) }); n != 1 {
		t.Fatalf("AppendPacked allocates %v times, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { old.Lookup("n") }); n != 0 {
		t.Fatalf("Lookup allocates %v times, want 0", n)
	}
}

// FuzzParsePacked: no input panics; what ParsePacked accepts reads back the
// same through Lookup, All and DecodeValues.
func FuzzParsePacked(f *testing.F) {
	f.Add([]byte(Pack(map[string][]byte{"a": []byte("1"), "bb": {0}})), "a")
	f.Add([]byte{1, 1, 0x80, 0x01}, "")
	f.Fuzz(func(t *testing.T, b []byte, key string) {
		raw := Packed(b)
		found, ok := raw.Lookup(key)
		raw.Len()
		// Nor does Lookup find a key, or a value, that All does not
		// yield first.
		if ok {
			for k, v := range raw.All() {
				if k == key {
					if !bytes.Equal(found, v) {
						t.Fatalf("Lookup(%q) = %q, All's first is %q", key, found, v)
					}
					ok = false
					break
				}
			}
			if ok {
				t.Fatalf("Lookup(%q) found %q, which All never yields", key, found)
			}
		}
		// Lookup and the scan behind All are written separately; even on
		// malformed input they must agree on the entries before the first
		// malformed byte (the first of a repeated key is the one found).
		seen := map[string]bool{}
		for k, v := range raw.All() {
			if seen[k] {
				continue
			}
			seen[k] = true
			if got, ok := raw.Lookup(k); !ok || !bytes.Equal(got, v) {
				t.Fatalf("All yields %q=%q, Lookup gives %q, %v", k, v, got, ok)
			}
		}
		p, err := ParsePacked(b)
		if err != nil {
			return
		}
		m, err := DecodeValues(b)
		if err != nil {
			t.Fatalf("ParsePacked accepts what DecodeValues refuses: %v", err)
		}
		if p.Len() != len(m) {
			return // duplicate keys: Lookup gives the first, the map the last
		}
		for k, v := range p.All() {
			if got, ok := p.Lookup(k); !ok || !bytes.Equal(got, v) || !bytes.Equal(m[k], v) {
				t.Fatalf("key %q reads differently", k)
			}
		}
	})
}

func TestPackedBuilder(t *testing.T) {
	long := strings.Repeat("v", 300)
	pb := NewPackedBuilder(3, 3+len(long))
	pb.Add("a", "1")
	pb.Add("b", long)
	pb.Add("c", "3")
	pb.Add("ignored", "beyond the count")
	p := pb.Packed()
	want := map[string][]byte{"a": []byte("1"), "b": []byte(long), "c": []byte("3")}
	if _, err := ParsePacked([]byte(p)); err != nil || !maps.EqualFunc(p.Map(), want, bytes.Equal) {
		t.Fatalf("built %q, %v", p.Map(), err)
	}
	// Fewer entries than announced still give a well-formed Packed.
	short := NewPackedBuilder(5, 10)
	short.Add("x", "1")
	q := short.Packed()
	if _, err := ParsePacked([]byte(q)); err != nil || q.Len() != 1 {
		t.Fatalf("short build: %q, %v", q.Map(), err)
	}
	if n := testing.AllocsPerRun(100, func() {
		b := NewPackedBuilder(2, 4)
		b.Add("a", "1")
		b.Add("b", "2")
		b.Packed()
	}); n != 1 {
		t.Fatalf("building allocates %v times, want 1", n)
	}
}

// A list holds each key once: a new session's bookkeeping is the save's
// own, even should an older one be pending, and Set is left nil.
func TestListedUpdateHoldsEachKeyOnce(t *testing.T) {
	m := New(Config{})
	h := newStore(m, nil, false)
	defer h.Close()
	s := h.s
	old := encodeMeta(time.Unix(1, 0), time.Minute)
	s.pending.put(keyMeta, entry{raw: old})
	s.pending.put("a", entry{raw: []byte("1")})
	var u Update
	now := time.Now()
	if err := s.pendingUpdate(&u, now, false, true); err != nil {
		t.Fatal(err)
	}
	if u.Set != nil {
		t.Fatalf("Set = %q, want nil", u.Set)
	}
	n := 0
	for _, e := range u.set {
		if e.k == keyMeta {
			n++
		}
	}
	if n != 1 || u.SetLen() != 2 {
		t.Fatalf("list %+v: bookkeeping %d times, %d values; want once, 2", u.set, n, u.SetLen())
	}
	created, _, err := readMeta(&Record{Values: map[string][]byte{keyMeta: u.lookupSet(keyMeta)}})
	if err != nil || created != now.UnixNano() {
		t.Fatalf("bookkeeping created %d (%v), want the save's %d", created, err, now.UnixNano())
	}
}

// BenchmarkAppendPacked merges a one-key update into a small session, as
// the memory provider does on every write.
func BenchmarkAppendPacked(b *testing.B) {
	old := Pack(map[string][]byte{keyMeta: encodeMeta(time.Now(), 0), "name": []byte("\xaasessionkit"), "n": {7}})
	u := Update{Set: map[string][]byte{"n": {8}}}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = u.AppendPacked(buf[:0], old)
	}
}

// BenchmarkAppendPackedNewKey adds a key to a small session: the one-scan
// path, which appends keys the session lacks after its entries.
func BenchmarkAppendPackedNewKey(b *testing.B) {
	old := Pack(map[string][]byte{keyMeta: encodeMeta(time.Now(), 0), "name": []byte("\xaasessionkit"), "n": {7}})
	u := Update{Set: map[string][]byte{"user": []byte("\xa5alice")}}
	buf := make([]byte, 0, 96)
	b.ReportAllocs()
	for b.Loop() {
		buf = u.AppendPacked(buf[:0], old)
	}
}
