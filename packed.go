package sessionkit

import (
	"encoding/binary"
	"fmt"
	"iter"
	"math/bits"
	"slices"
	"unsafe"
)

// Packed is a session's values packed into one immutable string, in the
// format EncodeValues writes: a version byte, the number of entries, then
// each key and value preceded by its length (unsigned varints).
//
// A provider that keeps sessions in its own memory, or reads a session
// back as one blob, may return a Record with Packed set instead of a
// Values map. One allocation then holds the whole session, a read
// allocates nothing, and a lookup scans a few bytes that lie together in
// memory rather than probing a map whose keys lie elsewhere. Sessions hold
// few keys, so the scan is the faster of the two; a map pays off only for
// sessions of hundreds of keys.
//
// The zero Packed holds no values. A Packed built by Pack, ParsePacked or
// Update.AppendPacked is well formed; one converted from arbitrary bytes
// reads as holding the entries before the first malformed one, and never
// makes a method panic. Pack and AppendPacked never write a key twice;
// bytes from elsewhere (or a PackedBuilder given a key twice) may, and
// ParsePacked does not look: Lookup, and so the manager, then reads the
// first of them and Map the last.
type Packed string

// Pack packs values.
func Pack(values map[string][]byte) Packed {
	return ownPacked(EncodeValues(values))
}

// ownPacked turns b into a Packed without a copy; b must never be written
// again.
func ownPacked(b []byte) Packed {
	return Packed(unsafe.String(unsafe.SliceData(b), len(b)))
}

// ParsePacked checks that b holds values packed by EncodeValues (or
// Pack) and returns a copy of them as a Packed. Malformed input gives an
// error wrapping ErrCorruptValue, never a panic. Providers that store
// blobs use it instead of DecodeValues: it allocates once, for the copy,
// where DecodeValues allocates a map and every value.
func ParsePacked(b []byte) (Packed, error) {
	if err := checkPacked(unsafe.String(unsafe.SliceData(b), len(b))); err != nil {
		return "", err
	}
	return Packed(string(b)), nil
}

// ParsePackedString is ParsePacked for values already held in a string,
// which it returns as they are, without a copy: for a provider that
// decodes into a buffer of its own and never writes it again (turned into
// a string with unsafe.String), reading costs no second allocation.
func ParsePackedString(s string) (Packed, error) {
	if err := checkPacked(s); err != nil {
		return "", err
	}
	return Packed(s), nil
}

// checkPacked reports whether p is well formed.
func checkPacked(p string) error {
	if len(p) == 0 || p[0] != recordVersion {
		return fmt.Errorf("%w: unknown record format", ErrCorruptValue)
	}
	sc := scanPacked(p)
	// Each entry takes at least two bytes, which bounds the count before
	// anything is sized from it.
	if sc.bad || sc.left > uint64(len(p)-sc.i)/2 {
		return fmt.Errorf("%w: bad record header", ErrCorruptValue)
	}
	for {
		if _, _, ok := sc.next(); !ok {
			break
		}
	}
	switch {
	case sc.bad:
		return fmt.Errorf("%w: truncated record", ErrCorruptValue)
	case sc.i != len(p):
		return fmt.Errorf("%w: trailing bytes in record", ErrCorruptValue)
	}
	return nil
}

// packedScan walks the entries of a Packed.
type packedScan struct {
	p    string
	i    int    // offset of the next entry
	left uint64 // entries not read yet
	bad  bool   // p is malformed after the entries read so far
}

func scanPacked(p string) packedScan {
	if len(p) == 0 {
		return packedScan{}
	}
	if p[0] != recordVersion {
		return packedScan{bad: true}
	}
	count, i := uvarintAt(p, 1)
	if i < 0 {
		return packedScan{bad: true}
	}
	return packedScan{p: p, i: i, left: count}
}

// next returns the next entry, or ok false at the end or at the first
// malformed byte (then bad is set).
func (s *packedScan) next() (key, val string, ok bool) {
	if s.left == 0 {
		return "", "", false
	}
	s.left--
	// Written out, one-byte lengths inline, as in Packed.Lookup: merging
	// an update scans every entry of the session.
	p, i := s.p, s.i
	var n uint64
	if uint(i) < uint(len(p)) && p[i] < 0x80 {
		n, i = uint64(p[i]), i+1
	} else {
		n, i = uvarintSlow(p, i)
	}
	if i >= 0 && n <= uint64(len(p)-i) {
		key, i = p[i:i+int(n)], i+int(n)
		if uint(i) < uint(len(p)) && p[i] < 0x80 {
			n, i = uint64(p[i]), i+1
		} else {
			n, i = uvarintSlow(p, i)
		}
		if i >= 0 && n <= uint64(len(p)-i) {
			s.i = i + int(n)
			return key, p[i : i+int(n)], true
		}
	}
	s.left, s.bad = 0, true
	return "", "", false
}

// uvarintAt reads the unsigned varint at p[i:] and returns it with the
// offset after it, or -1 if it is malformed. Lengths below 128, the usual
// case, take one byte and the first branch. It is too large for the
// compiler to inline, so the scans that run on every request
// (Packed.Lookup, packedScan.next) write that branch out themselves.
func uvarintAt(p string, i int) (uint64, int) {
	if uint(i) < uint(len(p)) && p[i] < 0x80 {
		return uint64(p[i]), i + 1
	}
	return uvarintSlow(p, i)
}

func uvarintSlow(p string, i int) (uint64, int) {
	if i < 0 || i >= len(p) {
		return 0, -1
	}
	x, k := binary.Uvarint(bytesOf(p[i:]))
	if k <= 0 {
		return 0, -1
	}
	return x, i + k
}

// bytesOf views s as bytes without copying. The result must never be
// written to: it shares s's memory.
func bytesOf(s string) []byte {
	if len(s) == 0 {
		return []byte{}
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// Lookup returns the value stored under key. The slice shares p's memory
// and must not be modified.
func (p Packed) Lookup(key string) ([]byte, bool) {
	s := string(p)
	if len(s) < 2 || s[0] != recordVersion {
		return nil, false
	}
	// The scan is written out, one-byte lengths inline, rather than going
	// through packedScan: this is the lookup every request makes. It
	// moves an index through s rather than slicing it, which spares the
	// slices' bounds checks and length updates, and compares a key only
	// when its length matches.
	left, i := uint64(s[1]), 2
	if left >= 0x80 {
		if left, i = uvarintSlow(s, 1); i < 0 {
			return nil, false
		}
	}
	for ; left > 0 && i < len(s); left-- {
		n := uint64(s[i])
		i++
		if n >= 0x80 {
			if n, i = uvarintSlow(s, i-1); i < 0 {
				break
			}
		}
		// The key, and at least the value's length after it.
		if n >= uint64(len(s)-i) {
			break
		}
		k, ke := i, i+int(n)
		i = ke
		m := uint64(s[i])
		i++
		if m >= 0x80 {
			if m, i = uvarintSlow(s, i-1); i < 0 {
				break
			}
		}
		if m > uint64(len(s)-i) {
			break
		}
		if int(n) == len(key) && s[k:ke] == key {
			return bytesOf(s[i : i+int(m)]), true
		}
		i += int(m)
	}
	return nil, false
}

// Len returns the number of values.
func (p Packed) Len() int {
	n := 0
	for range p.All() {
		n++
	}
	return n
}

// All yields every key and value. The values share p's memory and must
// not be modified.
func (p Packed) All() iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		sc := scanPacked(string(p))
		for {
			k, v, ok := sc.next()
			if !ok || !yield(k, bytesOf(v)) {
				return
			}
		}
	}
}

// Map returns the values as a new map. The values share p's memory and
// must not be modified.
func (p Packed) Map() map[string][]byte {
	m := make(map[string][]byte)
	for k, v := range p.All() {
		m[k] = v
	}
	return m
}

// PackedBuilder packs values one by one, for providers whose storage
// hands them back as separate fields (a Redis hash, say): one allocation
// holds the result, with no map on the way.
type PackedBuilder struct {
	b    []byte
	left int // entries announced but not added yet
}

// NewPackedBuilder starts a Packed of count entries whose keys and values
// take about size bytes in all.
func NewPackedBuilder(count, size int) PackedBuilder {
	// One length byte each for a key and a value is the usual case;
	// longer lengths grow the buffer.
	b := make([]byte, 0, 1+uvarintLen(uint64(count))+size+2*count)
	b = append(b, recordVersion)
	return PackedBuilder{b: binary.AppendUvarint(b, uint64(count)), left: count}
}

// Add appends one entry. Entries beyond the count given to
// NewPackedBuilder are ignored. Keys must be distinct (see Packed).
func (pb *PackedBuilder) Add(key, value string) {
	if pb.left <= 0 {
		return
	}
	pb.left--
	pb.b = appendEntry(pb.b, key, value)
}

// Packed returns what was added. If fewer entries were added than
// announced, the header is corrected (which costs a copy), so the result
// is always well formed.
func (pb *PackedBuilder) Packed() Packed {
	b := pb.b
	if len(b) == 0 {
		return ""
	}
	if pb.left > 0 {
		sc := scanPacked(unsafe.String(&b[0], len(b)))
		n := sc.left - uint64(pb.left)
		fixed := append([]byte{recordVersion}, binary.AppendUvarint(nil, n)...)
		b = append(fixed, b[sc.i:]...)
	}
	pb.b, pb.left = nil, 0
	return Packed(unsafe.String(&b[0], len(b)))
}

// AppendPacked appends to dst the packed values that result from applying
// u to p, the Packed counterpart of Apply. When u only sets keys, giving
// those p holds new values of the same lengths (a counter's increment, a
// flag's flip), p's entries keep their place with those values
// overwritten, and keys p lacks follow; otherwise the entries of p that u
// neither deletes nor sets keep their place, then u's Set entries follow.
// It grows dst at most once; PackedSize tells by how much, for a caller
// that wants the result to share one allocation with something else (the
// memory provider puts the session's deadline in front of it).
func (u Update) AppendPacked(dst []byte, p Packed) []byte {
	if len(u.Set) == 0 {
		// The manager's own list, or nothing set: no 384-byte buffer
		// to clear for listing a map's entries (about a quarter of a
		// patched merge's own instructions).
		return u.appendPacked(dst, p, u.set)
	}
	var buf [8]setEntry
	return u.appendPacked(dst, p, u.setEntries(buf[:0]))
}

// appendPacked is AppendPacked with Set's entries listed.
func (u *Update) appendPacked(dst []byte, p Packed, set []setEntry) []byte {
	if out, ok := u.appendPatched(dst, p, set); ok {
		return out
	}
	if out, ok := u.appendInPlace(dst, p, set); ok {
		return out
	}
	var runs [8]span
	count, size, kept := u.packedLayout(p, set, runs[:0])
	dst = slices.Grow(dst, size)
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, uint64(count))
	if kept != nil {
		// Kept entries are copied as they are stored, run by run.
		for _, r := range kept {
			dst = append(dst, p[r.start:r.end]...)
		}
	} else {
		// More runs than the stack holds: scan again.
		sc := scanPacked(string(p))
		for {
			at := sc.i
			k, _, ok := sc.next()
			if !ok {
				break
			}
			if u.keeps(k, set) {
				dst = append(dst, p[at:sc.i]...)
			}
		}
	}
	for _, e := range set {
		dst = appendEntry(dst, e.k, e.v)
	}
	return dst
}

// appendPatched is AppendPacked's no-scan path, for the commonest write of
// all (a value written back changed: a counter, a flag, a time): p is the
// very Packed the request read, u.Base.Packed, and each value u sets
// replaces one of p's, at the same length, whose place the manager found
// (setEntry.at). Then the result is p copied, those bytes overwritten,
// with no entry parsed. It reports false, having appended nothing, for
// any other u or p (see patches).
func (u *Update) appendPatched(dst []byte, p Packed, set []setEntry) ([]byte, bool) {
	if !u.patches(p, set) {
		return dst, false
	}
	start := len(dst)
	dst = append(dst, p...)
	for i := range set {
		copy(dst[start+set[i].at-1:], set[i].v)
	}
	return dst, true
}

// patches reports whether appendPatched takes u with Set's entries listed
// in set: the result is then p, patched, and as long as p, which
// PackedSize must tell even of a p whose bytes are malformed (only a
// provider that hands out unchecked bytes gives one; the patch copies
// them as they are, and they read the same). Comparing the strings'
// memory rather than their bytes is enough: p is immutable, so a string
// of the same address and length holds the same bytes.
func (u *Update) patches(p Packed, set []setEntry) bool {
	if len(set) == 0 || u.Clear || len(u.Delete) > 0 || len(p) != len(u.Base.Packed) ||
		unsafe.StringData(string(p)) != unsafe.StringData(string(u.Base.Packed)) {
		return false
	}
	for i := range set {
		if at := set[i].at - 1; at < 0 || at > len(p)-len(set[i].v) {
			return false
		}
	}
	return true
}

// appendInPlace is AppendPacked's one-scan path, for the commonest
// writes: u neither clears nor deletes, and every key it sets that p holds
// is there once, with a value of the length u gives it. Then p's entries
// are copied as they are, one copy, those values overwritten where they
// lie, and the keys p lacks appended. It reports false, having appended
// nothing, for any other u, and for a p that is malformed or has bytes
// after its entries, which the general path drops.
func (u *Update) appendInPlace(dst []byte, p Packed, set []setEntry) ([]byte, bool) {
	if u.Clear || len(u.Delete) > 0 || len(set) > 8 {
		return dst, false
	}
	sc := scanPacked(string(p))
	body, count := sc.i, sc.left
	var at [8]int // where each set entry's value lies in p, if it is there
	var seen uint
	for {
		k, v, ok := sc.next()
		if !ok {
			break
		}
		for j := range set {
			if len(set[j].k) != len(k) || set[j].k != k {
				continue
			}
			if len(set[j].v) != len(v) || seen&(1<<j) != 0 {
				return dst, false
			}
			seen |= 1 << j
			at[j] = sc.i - len(v) - body
			break
		}
	}
	if sc.bad || sc.i != len(p) {
		return dst, false
	}
	count += uint64(len(set) - bits.OnesCount(seen))
	size := 1 + uvarintLen(count) + len(p) - body
	for j := range set {
		if seen&(1<<j) == 0 {
			size += entrySize(set[j].k, set[j].v)
		}
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, count)
	start := len(dst)
	dst = append(dst, p[body:]...)
	for j := range set {
		if seen&(1<<j) != 0 {
			copy(dst[start+at[j]:], set[j].v)
		}
	}
	for j := range set {
		if seen&(1<<j) == 0 {
			dst = appendEntry(dst, set[j].k, set[j].v)
		}
	}
	return dst, true
}

// PackedSize returns the number of bytes AppendPacked(dst, p) appends.
func (u Update) PackedSize(p Packed) int {
	var buf [8]setEntry
	set := u.setEntries(buf[:0])
	if u.patches(p, set) {
		return len(p)
	}
	_, size, _ := u.packedLayout(p, set, nil)
	return size
}

// span is a byte range of a Packed: consecutive entries that an update
// keeps.
type span struct{ start, end int }

// setEntry is one of the values an Update sets. Requests set few keys: a
// slice of them, searched in order, costs less than probing a map.
type setEntry struct {
	k string
	v []byte
	// at is 1 + the offset in Update.Base.Packed of the value v replaces,
	// when the manager found it there (a getter noted it, or the save
	// looked it up) and v is exactly as long; 0 otherwise. See
	// appendPatched and storeState.placeOf.
	at int
}

// setEntries lists the values u sets (see SetEntries), in buf unless
// they are all in u.set.
func (u *Update) setEntries(buf []setEntry) []setEntry {
	if len(u.Set) == 0 {
		return u.set
	}
	// Set's entries have no place in Base, so no listed value needs its
	// own: appendPatched refuses the lot either way.
	for k, v := range u.SetEntries() {
		buf = append(buf, setEntry{k: k, v: v})
	}
	return buf
}

// packedLayout returns the entry count and byte size of u applied to p,
// and, while they fit in runs' capacity, the byte ranges of p that it
// keeps (nil otherwise).
func (u *Update) packedLayout(p Packed, set []setEntry, runs []span) (count, size int, kept []span) {
	sc := scanPacked(string(p))
	fits := cap(runs) > 0
	for {
		at := sc.i
		k, _, ok := sc.next()
		if !ok {
			break
		}
		if !u.keeps(k, set) {
			continue
		}
		count++
		size += sc.i - at
		switch {
		case !fits:
		case len(runs) > 0 && runs[len(runs)-1].end == at:
			runs[len(runs)-1].end = sc.i
		case len(runs) < cap(runs):
			runs = append(runs, span{at, sc.i})
		default:
			fits = false
		}
	}
	for _, e := range set {
		count++
		size += entrySize(e.k, e.v)
	}
	if fits {
		kept = runs
		if kept == nil {
			kept = runs[:0]
		}
	}
	return count, size + 1 + uvarintLen(uint64(count)), kept
}

// keeps reports whether a stored key survives u unchanged.
func (u *Update) keeps(k string, set []setEntry) bool {
	if u.Clear {
		return false
	}
	for i := range set {
		if len(set[i].k) == len(k) && set[i].k == k {
			return false
		}
	}
	return !slices.Contains(u.Delete, k)
}

func appendEntry[V string | []byte](dst []byte, k string, v V) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(k)))
	dst = append(dst, k...)
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

func entrySize(k string, v []byte) int {
	return uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(len(v))) + len(v)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
