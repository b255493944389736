package sessionkit

import (
	"maps"
	"math"
	"time"
)

// UnixNano converts a deadline to Unix nanoseconds for storage, clamping
// times outside int64's range (before 1678 or after 2262) instead of
// wrapping; the zero time is 0, a deadline long past.
func UnixNano(t time.Time) int64 {
	const maxSec, minSec = math.MaxInt64 / int64(time.Second), math.MinInt64 / int64(time.Second)
	// One reading of the seconds decides the common case: every write
	// converts a deadline or two. The zero time lies before minSec.
	sec := t.Unix()
	switch {
	case sec > minSec && sec < maxSec:
		return sec*int64(time.Second) + int64(t.Nanosecond())
	case t.IsZero():
		return 0
	case sec >= maxSec:
		return math.MaxInt64
	}
	return math.MinInt64
}

// until returns t-now, clamped to Duration's range like time.Time.Sub,
// at a fifth of Sub's cost: it runs on every load (see Session.adopt). t
// and now are compared by their wall clocks.
func until(t, now time.Time) time.Duration {
	const limit = uint64(math.MaxInt64/time.Second) - 1
	ts, ns := t.Unix(), now.Unix()
	// The difference of two int64s always fits in a uint64.
	switch {
	case ts >= ns && uint64(ts)-uint64(ns) > limit:
		return math.MaxInt64
	case ts < ns && uint64(ns)-uint64(ts) > limit:
		return math.MinInt64
	}
	return time.Duration(ts-ns)*time.Second + time.Duration(t.Nanosecond()-now.Nanosecond())
}

// addNanos returns t+d in unix nanoseconds, clamped to int64's range
// instead of wrapping, as UnixNano clamps.
func addNanos(t int64, d time.Duration) int64 {
	switch {
	case d > 0 && t > math.MaxInt64-int64(d):
		return math.MaxInt64
	case d < 0 && t < math.MinInt64-int64(d):
		return math.MinInt64
	}
	return t + int64(d)
}

// recordVersion is the first byte of EncodeValues' output, so the format
// can change without misreading old rows.
const recordVersion byte = 1

// EncodeValues packs a session's values into one byte slice, for providers
// that store a session as a single blob (SQL rows, files, memcached items).
// The format is a version byte, then the number of entries, then each key
// and value with its length (unsigned varints). DecodeValues and
// ParsePacked read it back; Packed is the same bytes as a string.
func EncodeValues(values map[string][]byte) []byte {
	return Update{Set: values}.AppendPacked(nil, "")
}

// DecodeValues unpacks bytes made by EncodeValues. Malformed input gives an
// error wrapping ErrCorruptValue, never a panic. The returned values do not
// alias b.
func DecodeValues(b []byte) (map[string][]byte, error) {
	p, err := ParsePacked(b)
	if err != nil {
		return nil, err
	}
	return p.Map(), nil
}

// Apply returns the values that result from applying u to values, without
// modifying values. Providers that keep whole records (rather than a field
// per key) call it inside their lock or transaction to merge an Update.
func (u Update) Apply(values map[string][]byte) map[string][]byte {
	var out map[string][]byte
	if u.Clear {
		out = make(map[string][]byte, u.SetLen())
	} else {
		out = maps.Clone(values)
		if out == nil {
			out = make(map[string][]byte, u.SetLen())
		}
		for _, k := range u.Delete {
			delete(out, k)
		}
	}
	for k, v := range u.SetEntries() {
		out[k] = v
	}
	return out
}
