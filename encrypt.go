package sessionkit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"
)

// Errors returned by Sealer.Open and Signer.Verify. They are wrapped with
// context; test with errors.Is. A caller reading a cookie usually treats
// all of them alike (ignore the value, start afresh) and only tells them
// apart for logging: ErrAuthFailed in volume points at forgery attempts or
// a key dropped from rotation too early, ErrExpiredValue at ordinary
// old cookies.
var (
	// ErrInvalidValue means the value is not something Seal or Sign could
	// have produced: too long, truncated, not canonical base64url, an
	// unknown format version, or an authentic value whose creation time is
	// too far in the future.
	ErrInvalidValue = errors.New("sessionkit: invalid sealed or signed value")
	// ErrAuthFailed means the value is well-formed but no key authenticates
	// it: it was tampered with, made for another name, or made with a key
	// that is no longer in the list.
	ErrAuthFailed = errors.New("sessionkit: value failed authentication")
	// ErrExpiredValue means the value is authentic but older than the
	// maxAge the caller allowed.
	ErrExpiredValue = errors.New("sessionkit: value expired")
)

const (
	// MaxClockSkew is how far in the future a creation time may lie before
	// Open and Verify refuse the value. Servers sharing keys never have
	// perfectly synchronised clocks, and a minute absorbs ordinary NTP
	// drift. A value stamped further ahead, by a server whose clock ran
	// fast, is refused rather than trusted, because it would otherwise
	// stay valid for longer than maxAge.
	MaxClockSkew = time.Minute

	// MaxEncodedLength bounds what Open and Verify accept, in bytes of
	// input. It is checked before any decoding or cryptography, so an
	// oversized cookie or header costs one comparison. Seal refuses to
	// produce a longer value. It is
	// far above what browsers keep in a cookie (about 4 KiB) so that
	// values carried in headers also fit.
	MaxEncodedLength = 64 << 10
)

// Layout of a sealed value, before base64url: version (1 byte), creation
// time in Unix seconds (8 bytes, big-endian), nonce (12 bytes), then the
// GCM ciphertext with its 16-byte tag.
const (
	sealVersion   = 1
	sealHeaderLen = 1 + 8
	sealNonceLen  = 12
	sealTagLen    = 16
	sealMinRaw    = sealHeaderLen + sealNonceLen + sealTagLen
)

// Layout of a signature: creation time in Unix seconds (8 bytes,
// big-endian) and the HMAC-SHA256, base64url-encoded after a '.'.
const (
	signRawLen    = 8 + sha256.Size
	signTagEncLen = (signRawLen*8 + 5) / 6 // 54 characters, no padding
	// signBufRetain caps the scratch buffer a pooled signState keeps, so
	// one long value does not pin a large buffer in the pool forever.
	signBufRetain = 4 << 10
)

// b64 is strict so that every byte string has exactly one accepted
// encoding: a value that opens can then only be the one Seal or Sign
// wrote, not a variant with different trailing bits.
var b64 = base64.RawURLEncoding.Strict()

// Sealer encrypts and authenticates small values, typically a whole
// session carried in a cookie, with AES-256-GCM.
//
// The first key seals; every key opens. To rotate, put a new key first
// and keep the old ones after it for as long as values sealed with them
// may still be presented (the longest maxAge in use), then drop them:
// nobody is logged out by the rotation.
//
// Each Seal draws a random 96-bit nonce, which is safe for about 2^32
// values per key; rotate keys long before that.
//
// A Sealer is safe for concurrent use.
type Sealer struct {
	aeads []cipher.AEAD
	// now is replaced in tests to check age limits without sleeping.
	now func() time.Time
}

// NewSealer returns a Sealer for keys, the first of which seals. Each key
// must be exactly 32 random bytes (AES-256; generate them with crypto/rand
// and keep them secret), none all zero bytes (a sign of an unset key) and
// none repeated (a sign of a rotation mistake). Errors wrap
// ErrInvalidConfig.
func NewSealer(keys ...[]byte) (*Sealer, error) {
	if err := checkKeys("NewSealer", keys, func(n int) error {
		if n != 32 {
			return fmt.Errorf("is %d bytes; AES-256 needs exactly 32", n)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	s := &Sealer{aeads: make([]cipher.AEAD, len(keys)), now: time.Now}
	for i, k := range keys {
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("%w: NewSealer: key %d: %v", ErrInvalidConfig, i, err)
		}
		// The standard library's GCM holds only the expanded key and
		// keeps no per-call state, so one instance serves all goroutines.
		if s.aeads[i], err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("%w: NewSealer: key %d: %v", ErrInvalidConfig, i, err)
		}
	}
	return s, nil
}

// Seal encrypts plaintext with the first key and returns it as unpadded
// base64url, safe in a cookie, header or URL without further escaping.
//
// name is authenticated along with the value but not stored in it: pass
// the cookie (or header) name, so that a value an attacker copies from one
// cookie into another, for example from a low-privilege "prefs" cookie
// into the session cookie, fails to open. The creation time and format
// version are authenticated too, so the age Open checks cannot be
// altered.
//
// The result is about 4/3 × (37 + len(plaintext)) bytes; Seal fails with
// ErrInvalidValue rather than produce a value longer than
// MaxEncodedLength, which Open would refuse. Keep cookies under about
// 4 KiB, the most browsers store.
func (s *Sealer) Seal(name string, plaintext []byte) (string, error) {
	rawLen := sealMinRaw + len(plaintext)
	if len(plaintext) > MaxEncodedLength || b64.EncodedLen(rawLen) > MaxEncodedLength {
		return "", fmt.Errorf("%w: %d-byte plaintext would seal to more than %d bytes", ErrInvalidValue, len(plaintext), MaxEncodedLength)
	}
	// One buffer for the sealed bytes and, after them, the additional data.
	buf := make([]byte, sealHeaderLen+sealNonceLen, rawLen+sealHeaderLen+len(name))
	buf[0] = sealVersion
	binary.BigEndian.PutUint64(buf[1:sealHeaderLen], uint64(s.now().Unix()))
	nonce := buf[sealHeaderLen : sealHeaderLen+sealNonceLen]
	// crypto/rand.Read never fails since Go 1.24: it crashes the program
	// instead of returning predictable bytes.
	_, _ = rand.Read(nonce)
	aad := buf[rawLen:rawLen:cap(buf)]
	aad = append(aad, buf[:sealHeaderLen]...)
	aad = append(aad, name...)
	// dst is capped at rawLen so its spare capacity cannot reach the
	// additional data after it.
	sealed := s.aeads[0].Seal(buf[:sealHeaderLen+sealNonceLen:rawLen], nonce, plaintext, aad)
	return b64.EncodeToString(sealed), nil
}

// Open authenticates and decrypts value, which Seal produced for the same
// name with any of the Sealer's keys, and returns the plaintext, in a new
// slice that the Sealer does not keep.
//
// maxAge > 0 refuses values sealed longer ago than that, with
// ErrExpiredValue; maxAge <= 0 sets no limit. Creation times are stored in
// whole seconds, so ages are accurate to a second. Values stamped more
// than MaxClockSkew in the future are refused with ErrInvalidValue
// whatever maxAge is. Malformed values fail with ErrInvalidValue before
// any key is tried; values no key authenticates fail with ErrAuthFailed.
// Age is checked only after authentication, so ErrExpiredValue always
// means a genuine value.
//
// Open never panics, whatever value holds: it is meant for untrusted
// input.
func (s *Sealer) Open(name, value string, maxAge time.Duration) ([]byte, error) {
	if len(value) > MaxEncodedLength {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrInvalidValue, len(value), MaxEncodedLength)
	}
	if len(value) < b64.EncodedLen(sealMinRaw) {
		return nil, fmt.Errorf("%w: %d bytes, too short to be sealed", ErrInvalidValue, len(value))
	}
	// The decoder skips CR and LF; refusing every character outside the
	// alphabet first keeps one accepted spelling per value.
	if !isBase64URL(value) {
		return nil, fmt.Errorf("%w: not base64url", ErrInvalidValue)
	}
	// One buffer: a copy of value for the decoder, the decoded bytes, and
	// the additional data.
	decMax := b64.DecodedLen(len(value))
	work := make([]byte, len(value)+decMax, len(value)+decMax+sealHeaderLen+len(name))
	src := work[:len(value)]
	copy(src, value)
	n, err := b64.Decode(work[len(value):], src)
	if err != nil {
		return nil, fmt.Errorf("%w: not canonical base64url", ErrInvalidValue)
	}
	raw := work[len(value) : len(value)+n]
	if len(raw) < sealMinRaw {
		return nil, fmt.Errorf("%w: %d bytes decoded, too short to be sealed", ErrInvalidValue, len(raw))
	}
	if raw[0] != sealVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrInvalidValue, raw[0])
	}
	aad := work[len(work):len(work):cap(work)]
	aad = append(aad, raw[:sealHeaderLen]...)
	aad = append(aad, name...)
	nonce := raw[sealHeaderLen : sealHeaderLen+sealNonceLen]
	ciphertext := raw[sealHeaderLen+sealNonceLen:]
	// A separate output buffer, reused across keys: a failed Open may
	// scribble over its destination, which must not be the ciphertext the
	// next key needs.
	out := make([]byte, 0, len(ciphertext)-sealTagLen)
	for _, a := range s.aeads {
		plaintext, err := a.Open(out, nonce, ciphertext, aad)
		if err != nil {
			continue
		}
		created := int64(binary.BigEndian.Uint64(raw[1:sealHeaderLen]))
		if err := checkAge(created, s.now(), maxAge); err != nil {
			return nil, err
		}
		return plaintext, nil
	}
	return nil, fmt.Errorf("%w: no key opens the value", ErrAuthFailed)
}

// Signer authenticates values that need not be secret, typically a
// session ID in a cookie, with HMAC-SHA256. Signing a random session ID
// lets a server refuse forged or guessed IDs without a storage lookup.
//
// Key rotation works as for Sealer: the first key signs, every key
// verifies.
//
// Verify runs on every request, so it does not allocate: each call borrows
// pooled HMAC state, one per key, and returns it before it ends.
//
// A Signer is safe for concurrent use.
type Signer struct {
	keys [][]byte
	pool sync.Pool // of *signState
	// now is replaced in tests to check age limits without sleeping.
	now func() time.Time
}

// signState is one goroutine's scratch space for a Signer call.
type signState struct {
	macs []hash.Hash // one per key, built lazily
	buf  []byte
	sum  [sha256.Size]byte
	tag  [signRawLen]byte
}

// Prebuilt so that refusing a value, which an attacker can make happen on
// every request, allocates nothing either.
var (
	errSignedTooLong = fmt.Errorf("%w: more than %d bytes", ErrInvalidValue, MaxEncodedLength)
	errSignedFormat  = fmt.Errorf("%w: not a signed value", ErrInvalidValue)
	errSignedAuth    = fmt.Errorf("%w: no key verifies the signature", ErrAuthFailed)
	errFuture        = fmt.Errorf("%w: created more than %v in the future", ErrInvalidValue, MaxClockSkew)
	errExpired       = fmt.Errorf("%w: older than the allowed age", ErrExpiredValue)
)

// NewSigner returns a Signer for keys, the first of which signs. Each key
// must be at least 32 random bytes (HMAC-SHA256 is no stronger than its
// key; generate keys with crypto/rand and keep them secret), none all zero
// bytes and none repeated. Errors wrap ErrInvalidConfig.
//
// Use different keys for a Signer and a Sealer: keys should serve one
// purpose each.
func NewSigner(keys ...[]byte) (*Signer, error) {
	if err := checkKeys("NewSigner", keys, func(n int) error {
		if n < 32 {
			return fmt.Errorf("is %d bytes; HMAC-SHA256 needs at least 32", n)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	s := &Signer{keys: make([][]byte, len(keys)), now: time.Now}
	for i, k := range keys {
		// A copy, so a caller who reuses or wipes its slice does not
		// change the key under a running server.
		s.keys[i] = append([]byte(nil), k...)
	}
	s.pool.New = func() any { return &signState{macs: make([]hash.Hash, len(s.keys))} }
	return s, nil
}

// Sign returns value, a '.', and 54 characters of base64url holding the
// creation time and an HMAC over name, creation time and value. The
// result uses only [A-Za-z0-9_.-] besides value's own characters, so it is
// cookie-safe whenever value is. value may itself contain '.'.
//
// name is authenticated but not stored: pass the cookie (or header) name,
// so a value signed for one cookie is refused in another.
//
// Verify refuses input longer than MaxEncodedLength, so only values of at
// most MaxEncodedLength-55 bytes can be verified.
func (s *Signer) Sign(name, value string) string {
	st := s.pool.Get().(*signState)
	created := s.now().Unix()
	binary.BigEndian.PutUint64(st.tag[:8], uint64(created))
	copy(st.tag[8:], st.mac(s.keys, 0, st.tag[:8], name, value))
	var b strings.Builder
	b.Grow(len(value) + 1 + signTagEncLen)
	b.WriteString(value)
	b.WriteByte('.')
	st.buf = b64.AppendEncode(st.buf[:0], st.tag[:])
	b.Write(st.buf)
	s.put(st)
	return b.String()
}

// Verify checks signed, made by Sign for the same name with any of the
// Signer's keys, and returns the original value, a substring of signed.
//
// Errors and maxAge work as for Sealer.Open: ErrInvalidValue for anything
// malformed (checked before any key is tried) or stamped more than
// MaxClockSkew in the future, ErrAuthFailed when no key verifies it,
// ErrExpiredValue when it is genuine but older than maxAge > 0. MACs are
// compared in constant time for every key tried, so response timing tells
// an attacker nothing about how close a forgery came.
//
// Verify never panics and does not allocate, whatever signed holds.
func (s *Signer) Verify(name, signed string, maxAge time.Duration) (string, error) {
	if len(signed) > MaxEncodedLength {
		return "", errSignedTooLong
	}
	sep := len(signed) - signTagEncLen - 1
	if sep < 0 || signed[sep] != '.' {
		return "", errSignedFormat
	}
	value, tag := signed[:sep], signed[sep+1:]
	st := s.pool.Get().(*signState)
	// Decode from the pooled buffer: converting tag to []byte would
	// allocate. The decoder refuses every character outside the alphabet
	// except CR and LF, which it skips; a tag holding any of those decodes
	// to fewer than signRawLen bytes, so requiring exactly signRawLen
	// keeps one accepted spelling per signature without a separate scan.
	st.buf = append(st.buf[:0], tag...)
	if n, err := b64.Decode(st.tag[:], st.buf); err != nil || n != signRawLen {
		s.put(st)
		return "", errSignedFormat
	}
	ok := false
	for i := range s.keys {
		if hmac.Equal(st.mac(s.keys, i, st.tag[:8], name, value), st.tag[8:]) {
			ok = true
			break
		}
	}
	created := int64(binary.BigEndian.Uint64(st.tag[:8]))
	s.put(st)
	if !ok {
		return "", errSignedAuth
	}
	if err := checkAge(created, s.now(), maxAge); err != nil {
		return "", err
	}
	return value, nil
}

// mac returns the HMAC with keys[i] over the creation time, name and
// value. The name's length comes first, so no name and value pair can be
// re-split into another: ("ab", "c") and ("a", "bc") give different MACs.
// The result aliases st.sum.
func (st *signState) mac(keys [][]byte, i int, created []byte, name, value string) []byte {
	h := st.macs[i]
	if h == nil {
		h = hmac.New(sha256.New, keys[i])
		st.macs[i] = h
	} else {
		h.Reset()
	}
	b := append(st.buf[:0], created...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(name)))
	b = append(b, name...)
	b = append(b, value...)
	st.buf = b
	h.Write(b)
	return h.Sum(st.sum[:0])
}

func (s *Signer) put(st *signState) {
	if cap(st.buf) > signBufRetain {
		st.buf = nil
	}
	s.pool.Put(st)
}

// checkAge applies the rules shared by Open and Verify to an authentic
// value's creation time.
func checkAge(created int64, now time.Time, maxAge time.Duration) error {
	t := time.Unix(created, 0)
	if t.After(now.Add(MaxClockSkew)) {
		return errFuture
	}
	if maxAge > 0 && now.Sub(t) > maxAge {
		return errExpired
	}
	return nil
}

// checkKeys applies the checks NewSealer and NewSigner share; size judges
// one key's length.
func checkKeys(fn string, keys [][]byte, size func(n int) error) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: %s: no key given; pass at least one", ErrInvalidConfig, fn)
	}
	for i, k := range keys {
		if err := size(len(k)); err != nil {
			return fmt.Errorf("%w: %s: key %d %v", ErrInvalidConfig, fn, i, err)
		}
		var or byte
		for _, c := range k {
			or |= c
		}
		if or == 0 {
			return fmt.Errorf("%w: %s: key %d is all zero bytes: it was never filled in; use random bytes", ErrInvalidConfig, fn, i)
		}
		for j := range i {
			if subtle.ConstantTimeCompare(keys[j], k) == 1 {
				return fmt.Errorf("%w: %s: key %d repeats key %d; each key must appear once", ErrInvalidConfig, fn, i, j)
			}
		}
	}
	return nil
}

// isBase64URL reports whether s uses only the unpadded base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		if !base64URLChar[s[i]] {
			return false
		}
	}
	return true
}

// base64URLChar is a table: a lookup beats five range comparisons per byte.
var base64URLChar = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()
