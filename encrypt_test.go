package sessionkit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// testKey returns a fixed key, different for every label. Fixed keys keep
// the committed fuzz corpus valid.
func testKey(label string) []byte {
	k := sha256.Sum256([]byte("sessionkit test key " + label))
	return k[:]
}

func mustSealer(t testing.TB, keys ...[]byte) *Sealer {
	t.Helper()
	s, err := NewSealer(keys...)
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	return s
}

func mustSigner(t testing.TB, keys ...[]byte) *Signer {
	t.Helper()
	s, err := NewSigner(keys...)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

// clock is a settable time source for the now fields.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 500_000_000)} }

func mustSeal(t *testing.T, s *Sealer, name string, plaintext []byte) string {
	t.Helper()
	v, err := s.Seal(name, plaintext)
	if err != nil {
		t.Fatalf("Seal(%q, %d bytes): %v", name, len(plaintext), err)
	}
	return v
}

func isBase64URLForTest(s string) bool {
	return strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}

// maxSealable is the longest plaintext Seal accepts.
func maxSealable() int {
	return base64.RawURLEncoding.DecodedLen(MaxEncodedLength) - sealMinRaw
}

func TestSealerRoundTrip(t *testing.T) {
	s := mustSealer(t, testKey("a"))
	for _, pt := range [][]byte{
		{},
		[]byte("x"),
		[]byte("hello, session"),
		{0, 1, 2, 0xff, 0xfe, 0},
		bytes.Repeat([]byte{0xa5}, 4000),
		bytes.Repeat([]byte("z"), maxSealable()),
	} {
		v := mustSeal(t, s, "sid", pt)
		if !isBase64URLForTest(v) {
			t.Errorf("Seal output %.40q... is not unpadded base64url", v)
		}
		if len(v) > MaxEncodedLength {
			t.Errorf("Seal output is %d bytes, more than MaxEncodedLength", len(v))
		}
		got, err := s.Open("sid", v, time.Hour)
		if err != nil {
			t.Fatalf("Open(Seal(%d bytes)): %v", len(pt), err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("Open(Seal(%.20q)) = %.20q", pt, got)
		}
		if v2 := mustSeal(t, s, "sid", pt); v2 == v {
			t.Errorf("sealing %.20q twice gave the same value: nonce not random", pt)
		}
	}
}

func TestSealerFormat(t *testing.T) {
	c := newClock()
	s := mustSealer(t, testKey("a"))
	s.now = c.now
	pt := []byte("twelve bytes")
	raw, err := base64.RawURLEncoding.DecodeString(mustSeal(t, s, "sid", pt))
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + 8 + 12 + len(pt) + 16; len(raw) != want {
		t.Fatalf("sealed %d bytes into %d, want %d", len(pt), len(raw), want)
	}
	if raw[0] != 1 {
		t.Errorf("version byte = %d, want 1", raw[0])
	}
	if got := int64(beUint64(raw[1:9])); got != c.t.Unix() {
		t.Errorf("timestamp = %d, want %d", got, c.t.Unix())
	}
	if bytes.Contains(raw, pt) {
		t.Error("plaintext appears in the sealed value")
	}
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func TestSealerRotation(t *testing.T) {
	k1, k2 := testKey("k1"), testKey("k2")
	old := mustSealer(t, k1)
	rotated := mustSealer(t, k2, k1)
	onlyNew := mustSealer(t, k2)

	v1 := mustSeal(t, old, "sid", []byte("before"))
	if got, err := rotated.Open("sid", v1, 0); err != nil || string(got) != "before" {
		t.Fatalf("after rotation, a value sealed with the old key: Open = %q, %v", got, err)
	}
	v2 := mustSeal(t, rotated, "sid", []byte("after"))
	if _, err := old.Open("sid", v2, 0); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("old key opened a value sealed after rotation (err %v): the first key must seal", err)
	}
	if got, err := onlyNew.Open("sid", v2, 0); err != nil || string(got) != "after" {
		t.Fatalf("new key alone: Open = %q, %v", got, err)
	}
	if _, err := onlyNew.Open("sid", v1, 0); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("after the old key is dropped, its values must fail: err %v", err)
	}
}

func TestSealerWrongKey(t *testing.T) {
	v := mustSeal(t, mustSealer(t, testKey("a")), "sid", []byte("secret"))
	_, err := mustSealer(t, testKey("b"), testKey("c")).Open("sid", v, 0)
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("Open with the wrong keys: err %v, want ErrAuthFailed", err)
	}
}

func TestSealerNameBinding(t *testing.T) {
	s := mustSealer(t, testKey("a"))
	v := mustSeal(t, s, "a", []byte("payload"))
	for _, name := range []string{"b", "", "a ", "A", "aa"} {
		if _, err := s.Open(name, v, 0); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("value sealed for %q opened for %q: err %v, want ErrAuthFailed", "a", name, err)
		}
	}
	if _, err := s.Open("a", v, 0); err != nil {
		t.Fatalf("Open for the right name: %v", err)
	}
}

func TestSealerTamper(t *testing.T) {
	s := mustSealer(t, testKey("a"))
	v := mustSeal(t, s, "sid", []byte("do not touch"))
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		t.Fatal(err)
	}
	// Every bit of every byte: version, timestamp, nonce, ciphertext, tag.
	for i := range raw {
		for bit := range 8 {
			mod := bytes.Clone(raw)
			mod[i] ^= 1 << bit
			if got, err := s.Open("sid", base64.RawURLEncoding.EncodeToString(mod), 0); err == nil {
				t.Fatalf("flipping bit %d of byte %d: Open succeeded with %q", bit, i, got)
			}
		}
	}
	// Every character of the encoding, including the last one's unused bits.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(v) {
		for _, c := range []byte(alphabet) {
			if c == v[i] {
				continue
			}
			mod := v[:i] + string(c) + v[i+1:]
			if _, err := s.Open("sid", mod, 0); err == nil {
				t.Fatalf("changing character %d to %q: Open succeeded", i, c)
			}
		}
	}
	for n := range len(v) {
		if _, err := s.Open("sid", v[:n], 0); err == nil {
			t.Fatalf("truncated to %d of %d characters: Open succeeded", n, len(v))
		}
	}
	for _, extra := range []string{"A", "AA", "AAAA", "=", "\n", "."} {
		if _, err := s.Open("sid", v+extra, 0); err == nil {
			t.Fatalf("with %q appended: Open succeeded", extra)
		}
	}
}

func TestSealerMalformed(t *testing.T) {
	s := mustSealer(t, testKey("a"))
	v := mustSeal(t, s, "sid", []byte("x"))
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	v2 := bytes.Clone(raw)
	v2[0] = 2
	padded := base64.URLEncoding.EncodeToString(raw)
	if padded == v {
		t.Fatal("test needs a value whose length is not a multiple of 3")
	}
	for name, value := range map[string]string{
		"empty":         "",
		"short":         "AAAA",
		"too long":      strings.Repeat("A", MaxEncodedLength+1),
		"padding":       padded,
		"newline":       v[:10] + "\n" + v[10:],
		"CRLF":          v[:10] + "\r\n" + v[10:],
		"std alphabet":  strings.NewReplacer("-", "+", "_", "/").Replace(v) + "+",
		"space":         " " + v,
		"version 2":     base64.RawURLEncoding.EncodeToString(v2),
		"NUL":           v[:5] + "\x00" + v[5:],
		"non-canonical": nonCanonical(v),
	} {
		if _, err := s.Open("sid", value, 0); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s: err %v, want ErrInvalidValue", name, err)
		}
	}
}

// nonCanonical returns v with the unused low bits of its last character
// set, which a lenient decoder would accept as the same bytes.
func nonCanonical(v string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, v[len(v)-1])
	return v[:len(v)-1] + string(alphabet[last|1])
}

func TestSealerSealTooLong(t *testing.T) {
	s := mustSealer(t, testKey("a"))
	if _, err := s.Seal("sid", make([]byte, maxSealable()+1)); !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("Seal of %d bytes: err %v, want ErrInvalidValue", maxSealable()+1, err)
	}
	if _, err := s.Seal("sid", make([]byte, 10*MaxEncodedLength)); !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("Seal of a huge plaintext: err %v, want ErrInvalidValue", err)
	}
}

func TestSealerMaxAge(t *testing.T) {
	c := newClock()
	s := mustSealer(t, testKey("a"))
	s.now = c.now
	v := mustSeal(t, s, "sid", []byte("aging"))
	start := c.t

	for _, tc := range []struct {
		after  time.Duration
		maxAge time.Duration
		want   error
	}{
		{0, time.Minute, nil},
		{59 * time.Second, time.Minute, nil},
		{61 * time.Second, time.Minute, ErrExpiredValue},
		{2 * time.Second, time.Second, ErrExpiredValue},
		{24 * time.Hour, 0, nil},
		{10 * 365 * 24 * time.Hour, 0, nil},
		{10 * 365 * 24 * time.Hour, -time.Second, nil},
	} {
		c.t = start.Add(tc.after)
		_, err := s.Open("sid", v, tc.maxAge)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("opened %v after sealing with maxAge %v: err %v, want %v", tc.after, tc.maxAge, err, tc.want)
		}
	}
}

func TestSealerFuture(t *testing.T) {
	c := newClock()
	s := mustSealer(t, testKey("a"))
	s.now = c.now
	now := c.t
	c.t = now.Add(30 * time.Second)
	skewed := mustSeal(t, s, "sid", []byte("x"))
	c.t = now.Add(MaxClockSkew + 2*time.Second)
	future := mustSeal(t, s, "sid", []byte("x"))
	c.t = now

	if _, err := s.Open("sid", skewed, time.Minute); err != nil {
		t.Errorf("value 30s in the future (within skew): %v", err)
	}
	for _, maxAge := range []time.Duration{0, time.Hour} {
		if _, err := s.Open("sid", future, maxAge); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("value %v in the future, maxAge %v: err %v, want ErrInvalidValue", MaxClockSkew+2*time.Second, maxAge, err)
		}
	}
}

func TestNewSealerKeys(t *testing.T) {
	k := testKey("a")
	for name, keys := range map[string][][]byte{
		"none":       nil,
		"nil key":    {nil},
		"short":      {k[:16]},
		"31 bytes":   {k[:31]},
		"33 bytes":   {append(bytes.Clone(k), 1)},
		"all zero":   {make([]byte, 32)},
		"zero later": {k, make([]byte, 32)},
		"duplicate":  {k, testKey("b"), bytes.Clone(k)},
	} {
		if s, err := NewSealer(keys...); !errors.Is(err, ErrInvalidConfig) || s != nil {
			t.Errorf("%s: NewSealer = %v, %v; want nil, ErrInvalidConfig", name, s, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := NewSealer(k, testKey("b"), testKey("c")); err != nil {
		t.Fatalf("three valid keys: %v", err)
	}
}

func TestSealerKeyCopied(t *testing.T) {
	k := bytes.Clone(testKey("a"))
	s := mustSealer(t, k)
	clear(k)
	ref := mustSealer(t, testKey("a"))
	if _, err := s.Open("sid", mustSeal(t, ref, "sid", []byte("x")), 0); err != nil {
		t.Fatalf("after the caller wiped its key slice: %v", err)
	}
}

func TestSignerRoundTrip(t *testing.T) {
	s := mustSigner(t, testKey("a"))
	for _, value := range []string{
		"",
		"x",
		NewID(),
		"has.dots.in.it",
		"trailing.",
		"not cookie-safe; \x00 \xff",
		strings.Repeat("v", MaxEncodedLength-55),
	} {
		signed := s.Sign("sid", value)
		if !strings.HasPrefix(signed, value+".") || len(signed) != len(value)+55 {
			t.Fatalf("Sign(%.20q) = %.40q...: want value, '.', 54 characters", value, signed)
		}
		if !isBase64URLForTest(signed[len(value)+1:]) {
			t.Errorf("signature %q is not base64url", signed[len(value)+1:])
		}
		got, err := s.Verify("sid", signed, time.Hour)
		if err != nil || got != value {
			t.Fatalf("Verify(Sign(%.20q)) = %.20q, %v", value, got, err)
		}
	}
	id := NewID()
	if signed := s.Sign("sid", id); strings.Trim(signed, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
		t.Errorf("Sign of a cookie-safe ID gave %q, not cookie-safe", signed)
	}
	if _, err := s.Verify("sid", s.Sign("sid", strings.Repeat("v", MaxEncodedLength-54)), 0); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("a signed value over MaxEncodedLength: err %v, want ErrInvalidValue", err)
	}
}

func TestSignerFormat(t *testing.T) {
	c := newClock()
	s := mustSigner(t, testKey("a"))
	s.now = c.now
	signed := s.Sign("sid", "v")
	raw, err := base64.RawURLEncoding.DecodeString(signed[2:])
	if err != nil || len(raw) != 40 {
		t.Fatalf("signature decodes to %d bytes (%v), want 8+32", len(raw), err)
	}
	if got := int64(beUint64(raw[:8])); got != c.t.Unix() {
		t.Errorf("timestamp = %d, want %d", got, c.t.Unix())
	}
}

func TestSignerRotation(t *testing.T) {
	k1, k2 := testKey("k1"), testKey("k2")
	old, rotated, onlyNew := mustSigner(t, k1), mustSigner(t, k2, k1), mustSigner(t, k2)

	s1 := old.Sign("sid", "before")
	if got, err := rotated.Verify("sid", s1, 0); err != nil || got != "before" {
		t.Fatalf("after rotation, a value signed with the old key: Verify = %q, %v", got, err)
	}
	s2 := rotated.Sign("sid", "after")
	if _, err := old.Verify("sid", s2, 0); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("old key verified a value signed after rotation (err %v): the first key must sign", err)
	}
	if got, err := onlyNew.Verify("sid", s2, 0); err != nil || got != "after" {
		t.Fatalf("new key alone: Verify = %q, %v", got, err)
	}
	if _, err := onlyNew.Verify("sid", s1, 0); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("after the old key is dropped, its values must fail: err %v", err)
	}
}

func TestSignerWrongKey(t *testing.T) {
	signed := mustSigner(t, testKey("a")).Sign("sid", "v")
	if _, err := mustSigner(t, testKey("b"), testKey("c")).Verify("sid", signed, 0); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("Verify with the wrong keys: err %v, want ErrAuthFailed", err)
	}
}

func TestSignerNameBinding(t *testing.T) {
	s := mustSigner(t, testKey("a"))
	signed := s.Sign("a", "payload")
	for _, name := range []string{"b", "", "a ", "A", "aa"} {
		if _, err := s.Verify(name, signed, 0); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("value signed for %q verified for %q: err %v, want ErrAuthFailed", "a", name, err)
		}
	}
	// Moving bytes between name and value must not keep the MAC valid.
	signed = s.Sign("ab", "c")
	tag := signed[len("c"):]
	if _, err := s.Verify("a", "bc"+tag, 0); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("(\"ab\", \"c\") re-split as (\"a\", \"bc\") verified: err %v", err)
	}
}

func TestSignerTamper(t *testing.T) {
	s := mustSigner(t, testKey("a"))
	signed := s.Sign("sid", "session-id.v1")
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="
	for i := range len(signed) {
		for _, c := range []byte(alphabet) {
			if c == signed[i] {
				continue
			}
			mod := signed[:i] + string(c) + signed[i+1:]
			if got, err := s.Verify("sid", mod, 0); err == nil {
				t.Fatalf("changing character %d to %q: Verify succeeded with %q", i, c, got)
			}
		}
	}
	for n := range len(signed) {
		if _, err := s.Verify("sid", signed[:n], 0); err == nil {
			t.Fatalf("truncated to %d of %d characters: Verify succeeded", n, len(signed))
		}
	}
	for _, mod := range []string{signed + "A", "x" + signed, signed[1:], signed + "\n", signed[:20] + "\n" + signed[20:]} {
		if _, err := s.Verify("sid", mod, 0); err == nil {
			t.Fatalf("Verify(%q) succeeded", mod)
		}
	}
}

func TestSignerMalformed(t *testing.T) {
	s := mustSigner(t, testKey("a"))
	signed := s.Sign("sid", "v")
	tag := signed[2:]
	for name, value := range map[string]string{
		"empty":         "",
		"no dot":        "v" + tag,
		"tag only":      tag,
		"dot only":      ".",
		"too long":      strings.Repeat("v", MaxEncodedLength) + "." + tag,
		"padding":       "v." + tag[:53] + "=",
		"std alphabet":  "v." + tag[:53] + "+",
		"newline":       "v." + tag[:20] + "\n" + tag[21:],
		"CRLF":          "v." + tag[:20] + "\r\n" + tag[22:],
		"non-canonical": "v." + nonCanonical(tag),
	} {
		if _, err := s.Verify("sid", value, 0); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s: err %v, want ErrInvalidValue", name, err)
		}
	}
}

func TestSignerMaxAge(t *testing.T) {
	c := newClock()
	s := mustSigner(t, testKey("a"))
	s.now = c.now
	signed := s.Sign("sid", "aging")
	start := c.t
	for _, tc := range []struct {
		after  time.Duration
		maxAge time.Duration
		want   error
	}{
		{0, time.Minute, nil},
		{59 * time.Second, time.Minute, nil},
		{61 * time.Second, time.Minute, ErrExpiredValue},
		{10 * 365 * 24 * time.Hour, 0, nil},
		{10 * 365 * 24 * time.Hour, -1, nil},
	} {
		c.t = start.Add(tc.after)
		got, err := s.Verify("sid", signed, tc.maxAge)
		if tc.want == nil && (err != nil || got != "aging") || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("verified %v after signing with maxAge %v: %q, %v; want %v", tc.after, tc.maxAge, got, err, tc.want)
		}
	}
}

func TestSignerFuture(t *testing.T) {
	c := newClock()
	s := mustSigner(t, testKey("a"))
	s.now = c.now
	now := c.t
	c.t = now.Add(30 * time.Second)
	skewed := s.Sign("sid", "x")
	c.t = now.Add(MaxClockSkew + 2*time.Second)
	future := s.Sign("sid", "x")
	c.t = now
	if _, err := s.Verify("sid", skewed, time.Minute); err != nil {
		t.Errorf("value 30s in the future (within skew): %v", err)
	}
	for _, maxAge := range []time.Duration{0, time.Hour} {
		if _, err := s.Verify("sid", future, maxAge); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("value in the future, maxAge %v: err %v, want ErrInvalidValue", maxAge, err)
		}
	}
}

func TestNewSignerKeys(t *testing.T) {
	k := testKey("a")
	for name, keys := range map[string][][]byte{
		"none":       nil,
		"nil key":    {nil},
		"short":      {k[:16]},
		"31 bytes":   {k[:31]},
		"all zero":   {make([]byte, 32)},
		"long zero":  {make([]byte, 64)},
		"zero later": {k, make([]byte, 32)},
		"duplicate":  {k, testKey("b"), bytes.Clone(k)},
	} {
		if s, err := NewSigner(keys...); !errors.Is(err, ErrInvalidConfig) || s != nil {
			t.Errorf("%s: NewSigner = %v, %v; want nil, ErrInvalidConfig", name, s, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	long := append(bytes.Clone(k), testKey("b")...)
	s, err := NewSigner(long, k)
	if err != nil {
		t.Fatalf("a 64-byte and a 32-byte key: %v", err)
	}
	if _, err := s.Verify("sid", s.Sign("sid", "v"), 0); err != nil {
		t.Fatalf("64-byte key round trip: %v", err)
	}
}

func TestSignerKeyCopied(t *testing.T) {
	k := bytes.Clone(testKey("a"))
	s := mustSigner(t, k)
	clear(k)
	ref := mustSigner(t, testKey("a"))
	if _, err := s.Verify("sid", ref.Sign("sid", "v"), 0); err != nil {
		t.Fatalf("after the caller wiped its key slice: %v", err)
	}
	if _, err := ref.Verify("sid", s.Sign("sid", "v"), 0); err != nil {
		t.Fatalf("after the caller wiped its key slice, Sign used another key: %v", err)
	}
}

// TestSignerSealerConcurrent shares one Signer and one Sealer between goroutines,
// for the race detector to check the pooled state.
func TestSignerSealerConcurrent(t *testing.T) {
	signer := mustSigner(t, testKey("a"), testKey("b"))
	old := mustSigner(t, testKey("b"))
	sealer := mustSealer(t, testKey("a"), testKey("b"))
	done := make(chan error)
	for g := range 8 {
		go func() {
			for i := range 200 {
				v := strings.Repeat("x", g*i)
				got, err := signer.Verify("sid", signer.Sign("sid", v), 0)
				if err == nil && got != v {
					err = errors.New("Verify returned another value")
				}
				if err == nil {
					_, err = signer.Verify("sid", old.Sign("sid", v), 0)
				}
				if err == nil {
					var sealed string
					if sealed, err = sealer.Seal("sid", []byte(v)); err == nil {
						_, err = sealer.Open("sid", sealed, 0)
					}
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// raceEnabled reports whether the test binary was built with -race, under
// which sync.Pool drops items at random and allocation counts mean nothing.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func TestSignerVerifyAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("allocation counts are meaningless under -race")
	}
	c := newClock()
	s := mustSigner(t, testKey("new"), testKey("old"))
	s.now = c.now
	good := s.Sign("sid", NewID())
	c.t = c.t.Add(time.Hour)
	future := s.Sign("sid", NewID())
	c.t = c.t.Add(-time.Hour)
	oldKey := mustSigner(t, testKey("old")).Sign("sid", NewID())
	for _, tc := range []struct {
		name   string
		signed string
		maxAge time.Duration
	}{
		{"valid", good, time.Hour},
		{"old key", oldKey, time.Hour},
		{"forged", good[:len(good)-5] + "AAAAA", time.Hour},
		{"malformed", "garbage", time.Hour},
		{"long valid", s.Sign("sid", strings.Repeat("v", 3000)), time.Hour},
		{"bad base64", good[:len(good)-1] + "=", time.Hour},
		{"wrong name", s.Sign("other", NewID()), time.Hour},
		{"expired", good, time.Nanosecond},
		{"future", future, time.Hour},
	} {
		if n := testing.AllocsPerRun(100, func() { _, _ = s.Verify("sid", tc.signed, tc.maxAge) }); n != 0 {
			t.Errorf("Verify(%s) allocates %.1f times per call, want 0", tc.name, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = s.Sign("sid", "0123456789abcdef0123456789abcdef") }); n > 1 {
		t.Errorf("Sign allocates %.1f times per call, want 1 (the result)", n)
	}
}

func BenchmarkSignerVerify(b *testing.B) {
	s := mustSigner(b, testKey("new"), testKey("old"))
	newKey := s.Sign(DefaultCookieName, NewID())
	oldKey := mustSigner(b, testKey("old")).Sign(DefaultCookieName, NewID())
	b.Run("first-key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Verify(DefaultCookieName, newKey, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("second-key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Verify(DefaultCookieName, oldKey, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Verify(DefaultCookieName, newKey, time.Hour); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkSignerSign(b *testing.B) {
	s := mustSigner(b, testKey("new"))
	id := NewID()
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Sign(DefaultCookieName, id)
	}
}

func BenchmarkSealer(b *testing.B) {
	s := mustSealer(b, testKey("new"), testKey("old"))
	pt := bytes.Repeat([]byte("s"), 512)
	sealed, err := s.Seal(DefaultCookieName, pt)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Seal-512B", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(pt)))
		for b.Loop() {
			if _, err := s.Seal(DefaultCookieName, pt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Open-512B", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(pt)))
		for b.Loop() {
			if _, err := s.Open(DefaultCookieName, sealed, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Values made with testKey("fuzz") (the old key in the fuzz targets'
// rotation) or testKey("fuzz-new"), for fixed names and plaintexts. They
// are also in the committed corpus. A fuzz input may only open or verify
// if it is one of these, for its name.
var (
	sealerFuzzKnown = map[string]fuzzKnown{}
	signerFuzzKnown = map[string]fuzzKnown{}
)

type fuzzKnown struct{ name, plain string }

func init() {
	for _, k := range sealerFuzzSeeds {
		sealerFuzzKnown[k.value] = fuzzKnown{k.name, k.plain}
	}
	for _, k := range signerFuzzSeeds {
		signerFuzzKnown[k.value] = fuzzKnown{k.name, k.plain}
	}
}

type fuzzSeed struct{ name, plain, value string }

var sealerFuzzSeeds = []fuzzSeed{
	{"sid", "hello", "AQAAAABrAoZxpQJO7wVyEkdXAat4T-VN7Bs6b0D4sQOWmjUmG5uteyxW"},
	{"sid", "", "AQAAAABrAoZxoinP1N-pXN6MwdNf_AEiVZodiiNMTjiHvCkWCw"},
	{"session", "{\"user\":42}", "AQAAAABrAoZxTvnt9dfgJzgZxv5OqYlA2xAR5qeZ4_qvdKoTPOK27Grdbo0mZ5jl"},
	{"a", "\x00\xff binary", "AQAAAABrAoZxErI9bJTIzAdTcTQt-SOCMPWmuMAOqMRldg9uurWLj2SXL0xXkg"},
}

var signerFuzzSeeds = []fuzzSeed{
	{"sid", "Xy3kPq9ZrT2mWv8bNc4dLf6hJs1aQe5u", "Xy3kPq9ZrT2mWv8bNc4dLf6hJs1aQe5u.AAAAAGsChnHFj0Rpp58rJZ-AkCRTGRETIHp9KDtREhkfifAZIg6wQg"},
	{"sid", "", ".AAAAAGsChnEsA-vOIp2VcDNRLsLAuMNFWJNGqbBz78mFjW238sTKGg"},
	{"session", "a.b.c", "a.b.c.AAAAAGsChnFSyRpmt-G8muJH1GtrzpzSp85nsqJq-TpMjxOh_4gibw"},
	{"a", "value", "value.AAAAAGsChnHpLg-qC-SjJx86txcKOlf1eq0Jt01ikeL8KXGfkgOGJw"},
}

// fuzzNow is a fixed time after the seeds were made, so they never look
// like they come from the future.
func fuzzNow() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }

func fuzzSentinel(err error) bool {
	return errors.Is(err, ErrInvalidValue) || errors.Is(err, ErrAuthFailed) || errors.Is(err, ErrExpiredValue)
}

func FuzzSealerOpen(f *testing.F) {
	s := mustSealer(f, testKey("fuzz-new"), testKey("fuzz"))
	s.now = fuzzNow
	for _, k := range sealerFuzzSeeds {
		f.Add(k.name, k.value)
		f.Add(k.name, k.value[:len(k.value)/2])
	}
	f.Add("sid", "")
	f.Fuzz(func(t *testing.T, name, value string) {
		got, err := s.Open(name, value, 0)
		known, isKnown := sealerFuzzKnown[value]
		switch {
		case err == nil && (!isKnown || known.name != name || string(got) != known.plain):
			t.Fatalf("Open(%q, %q) = %q: a value Seal never made for that name authenticated", name, value, got)
		case err == nil:
		case isKnown && known.name == name:
			t.Fatalf("Open(%q, %q) of a known good value: %v", name, value, err)
		case !fuzzSentinel(err):
			t.Fatalf("Open(%q, %q): error %v wraps none of the sentinels", name, value, err)
		}
		// The same input as a plaintext must round trip.
		if len(value) > maxSealable() {
			return
		}
		sealed, err := s.Seal(name, []byte(value))
		if err != nil {
			t.Fatalf("Seal(%q, %q): %v", name, value, err)
		}
		if got, err := s.Open(name, sealed, time.Minute); err != nil || string(got) != value {
			t.Fatalf("Open(Seal(%q, %q)) = %q, %v", name, value, got, err)
		}
	})
}

func FuzzSignerVerify(f *testing.F) {
	s := mustSigner(f, testKey("fuzz-new"), testKey("fuzz"))
	s.now = fuzzNow
	for _, k := range signerFuzzSeeds {
		f.Add(k.name, k.value)
		f.Add(k.name, k.value[:len(k.value)-1])
	}
	f.Add("sid", "")
	f.Fuzz(func(t *testing.T, name, signed string) {
		got, err := s.Verify(name, signed, 0)
		known, isKnown := signerFuzzKnown[signed]
		switch {
		case err == nil && (!isKnown || known.name != name || got != known.plain):
			t.Fatalf("Verify(%q, %q) = %q: a value Sign never made for that name verified", name, signed, got)
		case err == nil:
		case isKnown && known.name == name:
			t.Fatalf("Verify(%q, %q) of a known good value: %v", name, signed, err)
		case !fuzzSentinel(err):
			t.Fatalf("Verify(%q, %q): error %v wraps none of the sentinels", name, signed, err)
		}
		if len(signed) > MaxEncodedLength-55 {
			return
		}
		if got, err := s.Verify(name, s.Sign(name, signed), time.Minute); err != nil || got != signed {
			t.Fatalf("Verify(Sign(%q, %q)) = %q, %v", name, signed, got, err)
		}
	})
}
