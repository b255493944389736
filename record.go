package sessionkit

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"time"
)

// UnixNano converts a deadline to Unix nanoseconds for storage, clamping
// times outside int64's range (before 1678 or after 2262) instead of
// wrapping; the zero time is 0, a deadline long past.
func UnixNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Unix() >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	case t.Unix() <= math.MinInt64/int64(time.Second):
		return math.MinInt64
	}
	return t.UnixNano()
}

// recordVersion is the first byte of EncodeValues' output, so the format
// can change without misreading old rows.
const recordVersion byte = 1

// EncodeValues packs a session's values into one byte slice, for providers
// that store a session as a single blob (SQL rows, files, memcached items).
// The format is a version byte, then the number of entries, then each key
// and value with its length (unsigned varints). DecodeValues reverses it.
func EncodeValues(values map[string][]byte) []byte {
	n := 1 + binary.MaxVarintLen64
	for k, v := range values {
		n += len(k) + len(v) + 2*binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(len(values)))
	for k, v := range values {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

// DecodeValues unpacks bytes made by EncodeValues. Malformed input gives an
// error wrapping ErrCorruptValue, never a panic. The returned values do not
// alias b.
func DecodeValues(b []byte) (map[string][]byte, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, fmt.Errorf("%w: unknown record format", ErrCorruptValue)
	}
	p := b[1:]
	count, k := binary.Uvarint(p)
	// Each entry takes at least two bytes, which bounds count before any
	// allocation is sized from it.
	if k <= 0 || count > uint64(len(p))/2 {
		return nil, fmt.Errorf("%w: bad record header", ErrCorruptValue)
	}
	p = p[k:]
	values := make(map[string][]byte, count)
	next := func() ([]byte, bool) {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return nil, false
		}
		field := p[k : k+int(n)]
		p = p[k+int(n):]
		return field, true
	}
	for i := uint64(0); i < count; i++ {
		key, ok1 := next()
		val, ok2 := next()
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: truncated record", ErrCorruptValue)
		}
		values[string(key)] = append([]byte{}, val...)
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes in record", ErrCorruptValue)
	}
	return values, nil
}

// Apply returns the values that result from applying u to values, without
// modifying values. Providers that keep whole records (rather than a field
// per key) call it inside their lock or transaction to merge an Update.
func (u Update) Apply(values map[string][]byte) map[string][]byte {
	var out map[string][]byte
	if u.Clear {
		out = make(map[string][]byte, len(u.Set))
	} else {
		out = maps.Clone(values)
		if out == nil {
			out = make(map[string][]byte, len(u.Set))
		}
		for _, k := range u.Delete {
			delete(out, k)
		}
	}
	maps.Copy(out, u.Set)
	return out
}
