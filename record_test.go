package sessionkit

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"
	"unsafe"
)

func TestValuesRoundTrip(t *testing.T) {
	for _, in := range []map[string][]byte{
		nil,
		{},
		{"": {}},
		{"a": []byte("1"), "\x00c": {0, 255}, "long": bytes.Repeat([]byte("x"), 70000)},
	} {
		out, err := DecodeValues(EncodeValues(in))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(in) {
			t.Fatalf("%d entries came back as %d", len(in), len(out))
		}
		for k, v := range in {
			if !bytes.Equal(out[k], v) {
				t.Fatalf("key %q: %q != %q", k, out[k], v)
			}
		}
	}
}

func TestDecodeValuesJunk(t *testing.T) {
	good := EncodeValues(map[string][]byte{"a": []byte("1")})
	for _, b := range [][]byte{nil, {}, {2}, {1}, {1, 0xff}, good[:len(good)-1], append(good, 0),
		{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, {1, 100, 1, 'a'}} {
		if _, err := DecodeValues(b); !errors.Is(err, ErrCorruptValue) {
			t.Errorf("DecodeValues(%x) = %v, want ErrCorruptValue", b, err)
		}
	}
}

func TestUpdateApply(t *testing.T) {
	base := map[string][]byte{"a": []byte("1"), "b": []byte("2")}
	got := Update{Delete: []string{"a"}, Set: map[string][]byte{"c": []byte("3")}}.Apply(base)
	if len(got) != 2 || string(got["b"]) != "2" || string(got["c"]) != "3" {
		t.Fatalf("Apply = %q", got)
	}
	if len(base) != 2 || string(base["a"]) != "1" {
		t.Fatal("Apply modified its input")
	}
	got = Update{Clear: true, Set: map[string][]byte{"z": {}}}.Apply(base)
	if len(got) != 1 {
		t.Fatalf("Apply with Clear = %q", got)
	}
}

func FuzzDecodeValues(f *testing.F) {
	f.Add(EncodeValues(map[string][]byte{"a": []byte("1"), "bb": {}}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeValues(b)
		if err != nil {
			return
		}
		// What decodes must re-encode to an equivalent record.
		again, err := DecodeValues(EncodeValues(v))
		if err != nil || len(again) != len(v) {
			t.Fatalf("re-encode of %q: %v", v, err)
		}
	})
}

func TestUnixNano(t *testing.T) {
	if got := UnixNano(time.Time{}); got != 0 {
		t.Errorf("zero time = %d, want 0", got)
	}
	if got := UnixNano(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); got != math.MaxInt64 {
		t.Errorf("year 3000 = %d, want MaxInt64", got)
	}
	if got := UnixNano(time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)); got != math.MinInt64 {
		t.Errorf("year 1000 = %d, want MinInt64", got)
	}
	const maxSec, minSec = math.MaxInt64 / int64(time.Second), math.MinInt64 / int64(time.Second)
	for _, ts := range []time.Time{
		time.Unix(1700000000, 123),
		time.Unix(-1, 5),                // before 1970, nanoseconds after
		time.Unix(maxSec-1, 999999999),  // the last second in range
		time.Unix(minSec+1, 0),          // the first one
		time.Unix(0, math.MaxInt64),     // the very ends of int64
		time.Unix(0, math.MinInt64+2e9), // (time.Unix normalizes)
		time.Now(),                      // with a monotonic reading
		time.Now().In(time.FixedZone("x", 3600)),
	} {
		if got := UnixNano(ts); got != ts.UnixNano() {
			t.Errorf("%v = %d, want %d", ts, got, ts.UnixNano())
		}
	}
	for _, c := range []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(maxSec, 0), math.MaxInt64},
		{time.Unix(minSec, 0), math.MinInt64},
	} {
		if got := UnixNano(c.t); got != c.want {
			t.Errorf("%v = %d, want %d", c.t, got, c.want)
		}
	}
}

// Record.Pack gives the same values whichever form the Record holds them
// in, and hands a Packed record's string back as it is.
func TestRecordPack(t *testing.T) {
	vals := map[string][]byte{"a": []byte("1"), "b": {}}
	fromMap := Record{Values: vals}.Pack()
	if got := fromMap.Map(); len(got) != 2 || string(got["a"]) != "1" || got["b"] == nil {
		t.Fatalf("Record{Values}.Pack() reads back %q", got)
	}
	p := Pack(vals)
	if q := (Record{Packed: p}).Pack(); q != p || unsafe.StringData(string(q)) != unsafe.StringData(string(p)) {
		t.Fatal("Record{Packed}.Pack() is not the record's own string")
	}
	if q := (Record{}).Pack(); q != "" {
		t.Fatalf("the zero Record packs to %q", q)
	}
}

func TestAddNanosClamps(t *testing.T) {
	for _, c := range []struct {
		t    int64
		d    time.Duration
		want int64
	}{
		{100, 5, 105},
		{100, -5, 95},
		{math.MaxInt64 - 1, 2, math.MaxInt64},
		{math.MaxInt64, time.Hour, math.MaxInt64},
		{math.MinInt64 + 1, -2, math.MinInt64},
		{math.MinInt64, time.Hour, math.MinInt64 + int64(time.Hour)},
	} {
		if got := addNanos(c.t, c.d); got != c.want {
			t.Errorf("addNanos(%d, %v) = %d, want %d", c.t, c.d, got, c.want)
		}
	}
}

// until agrees with time.Time.Sub on wall-clock times, from the zero time
// to the far ends of time.Time's range, and saturates the same way.
func TestUntilMatchesSub(t *testing.T) {
	now := time.Unix(1_800_000_000, 123_456_789)
	times := []time.Time{
		{}, now, now.Add(1), now.Add(-1), now.Add(time.Hour), now.Add(-time.Hour),
		time.Unix(0, 0), time.Unix(0, math.MaxInt64), time.Unix(0, math.MinInt64),
		time.Unix(math.MaxInt64/int64(time.Second)+now.Unix()-2, 999_999_999),
		time.Unix(-math.MaxInt64/int64(time.Second)+now.Unix()+2, 0),
		// time.Time holds seconds since year 1 in an int64, so Unix
		// seconds near int64's limits wrap; 2^62 is about as far as
		// it goes either way.
		time.Unix(1<<62, 0), time.Unix(-1<<62, 999_999_999),
	}
	rnd := uint64(1)
	for range 2000 {
		rnd = rnd*6364136223846793005 + 1442695040888963407
		sec := int64(rnd>>2) >> (rnd % 62)
		if rnd&(1<<40) != 0 {
			sec = -sec
		}
		times = append(times, time.Unix(sec, int64(rnd%1e9)))
	}
	const margin = int64(time.Second)
	for _, at := range times {
		for _, n := range []time.Time{now, {}, at} {
			got, want := until(at, n), at.Sub(n)
			switch {
			case got == want:
			case int64(want) > math.MaxInt64-2*margin && int64(got) > math.MaxInt64-2*margin,
				int64(want) < math.MinInt64+2*margin && int64(got) < math.MinInt64+2*margin:
				// Within a second of saturation either way.
			default:
				t.Fatalf("until(%v, %v) = %v, Sub gives %v", at, n, got, want)
			}
		}
	}
}
