package memcache

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/sessionkit/sessionkit"
)

func TestExpiration(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC).UnixNano()
	whole := now - 600
	sec := int64(time.Second)
	cases := []struct {
		name     string
		deadline int64
		want     int32
	}{
		{"past", now - sec, 1},
		{"now", now, 1},
		// now is 600ns past a whole second S; S+1 is the first whole
		// second after a deadline 1ns away, and one more covers
		// memcached's lagging clock.
		{"1ns", now + 1, 2},
		{"exactly 2s", now + 2*sec, 4},
		{"2.1s", now + 2*sec + sec/10, 4},
		{"29 days", now + 29*24*3600*sec, 29*24*3600 + 2},
		{"30 days - 2s", now + (thirtyDays-2)*sec, thirtyDays},
		// Longer: an absolute Unix time, also rounded up.
		{"30 days - 1s", now + (thirtyDays-1)*sec, int32(now/sec + thirtyDays + 1)},
		{"1 year", now + 365*24*3600*sec, int32(now/sec + 365*24*3600 + 2)},
		{"after 2038", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), math.MaxInt32},
		{"max", math.MaxInt64, math.MaxInt32},
	}
	if got := expiration(whole+2*sec, whole); got != 3 {
		t.Errorf("exactly 2s from a whole second: expiration = %d, want 3", got)
	}
	for _, c := range cases {
		if got := expiration(c.deadline, now); got != c.want {
			t.Errorf("%s: expiration = %d, want %d", c.name, got, c.want)
		}
	}
}

// TestExpirationOutlivesDeadline checks the property the provider relies
// on: memcached never drops an item before its session's deadline.
func TestExpirationOutlivesDeadline(t *testing.T) {
	for _, frac := range []int64{0, 1, int64(time.Second) / 2, int64(time.Second) - 1} {
		testOutlives(t, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()+frac)
	}
	testOutlives(t, time.Now().UnixNano())
}

func testOutlives(t *testing.T, now int64) {
	t.Helper()
	for _, d := range []time.Duration{time.Nanosecond, time.Second - 1, time.Second, 1500 * time.Millisecond,
		time.Hour, 30*24*time.Hour - time.Second, 30 * 24 * time.Hour, 90 * 24 * time.Hour} {
		deadline := now + int64(d)
		e := int64(expiration(deadline, now))
		var expiresAt int64 // Unix seconds at which memcached drops the item
		if e <= thirtyDays {
			// Memcached's clock may lag up to a second behind.
			expiresAt = now/int64(time.Second) - 1 + e
		} else {
			expiresAt = e
		}
		if expiresAt*int64(time.Second) < deadline {
			t.Errorf("deadline in %v: memcached expiry %d drops the item at %d s, before %d ns", d, e, expiresAt, deadline)
		}
		// With a clock that does not lag, the item goes at most 3
		// seconds after the deadline: late, but not much.
		if late := (expiresAt+1)*int64(time.Second) - deadline; late > 3*int64(time.Second) {
			t.Errorf("deadline in %v: memcached keeps the item %v too long", d, time.Duration(late))
		}
	}
}

func TestKey(t *testing.T) {
	p, err := New(Config{Prefix: strings.Repeat("p", MaxPrefixLength)})
	if err != nil {
		t.Fatal(err)
	}
	for n := sessionkit.MinIDLength; n <= sessionkit.MaxIDLength; n++ {
		id := strings.Repeat("a", n)
		k, err := p.key(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(k) > maxKeyLength {
			t.Fatalf("key of a %d-byte ID is %d bytes", n, len(k))
		}
	}
	short, _ := New(Config{})
	id := strings.Repeat("Z", 40)
	if k, _ := short.key(id); k != DefaultPrefix+id {
		t.Errorf("key = %q, want the prefix and the ID", k)
	}
}

func TestEncodeDecode(t *testing.T) {
	v := map[string][]byte{"a": []byte("1"), "\x00c": {0, 1}}
	d, p, err := decode(&memcache.Item{Key: "k", Value: encode(12345, "", sessionkit.Update{Set: v}), Flags: itemFlags})
	got := p.Map()
	if err != nil || d != 12345 || len(got) != 2 || string(got["a"]) != "1" || string(got["\x00c"]) != "\x00\x01" {
		t.Fatalf("decode = %d, %q, %v", d, got, err)
	}
}
