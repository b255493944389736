package redis

import (
	"encoding/binary"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/sessionkit/sessionkit"
)

// The Go side of the storage layout described in scripts.go.
const (
	layoutByte  = 'S'
	deadlineLen = 15 // decimal digits of the deadline in Unix ms
	tokenLen    = 16 // hex digits of the write token
	headerLen   = 1 + deadlineLen + tokenLen
	// maxDeadline is the latest deadline the header holds (the year
	// 33658); later ones are stored as it.
	maxDeadline = 999_999_999_999_999
)

// deadline is a deadline as the layout stores it: Unix milliseconds, at
// least 1 (so that a deadline in the distant past is not read as 0,
// "keep") and at most maxDeadline.
func deadline(t time.Time) int64 { return min(max(t.UnixMilli(), 1), maxDeadline) }

// expireAt is the PXAT time of a session key whose deadline is d. A
// session is over once now >= d, but Redis drops a key only when its clock
// is past the PXAT time: a key set to d would still be read, and could be
// touched back to life, during millisecond d. PXAT refuses 0, hence the
// floor of 1. The store function of the scripts does the same.
func expireAt(d int64) int64 { return max(d-1, 1) }

// appendDeadline appends d as deadlineLen zero-padded digits.
func appendDeadline(dst []byte, d int64) []byte {
	var buf [deadlineLen]byte
	for i := deadlineLen - 1; i >= 0; i-- {
		buf[i] = byte('0' + d%10)
		d /= 10
	}
	return append(dst, buf[:]...)
}

// appendToken appends tok as tokenLen hex digits.
func appendToken(dst []byte, tok uint64) []byte {
	const hex = "0123456789abcdef"
	var buf [tokenLen]byte
	for i := tokenLen - 1; i >= 0; i-- {
		buf[i] = hex[tok&0xf]
		tok >>= 4
	}
	return append(dst, buf[:]...)
}

// appendHeader appends a session's header.
func appendHeader(dst []byte, d int64, tok uint64) []byte {
	dst = append(dst, layoutByte)
	return appendToken(appendDeadline(dst, d), tok)
}

// deadlineArg and tokenArg are a deadline and a token as script
// arguments, in the form the header holds them.
func deadlineArg(d int64) string {
	var buf [deadlineLen]byte
	return string(appendDeadline(buf[:0], d))
}

func tokenArg(tok uint64) string {
	var buf [tokenLen]byte
	return string(appendToken(buf[:0], tok))
}

// parseValue reads a session stored in the string layout; its token is
// the Record's Rev. The values are checked and used in place: the
// Record's Packed shares v's memory.
func parseValue(v string) (sessionkit.Record, error) {
	if len(v) < headerLen || v[0] != layoutByte {
		return sessionkit.Record{}, fmt.Errorf("redis: get: %w: the key holds a value this provider did not write", sessionkit.ErrCorruptValue)
	}
	ms, err := parseDeadline(v[1 : 1+deadlineLen])
	if err != nil {
		return sessionkit.Record{}, err
	}
	packed, err := sessionkit.ParsePackedString(v[headerLen:])
	if err != nil {
		return sessionkit.Record{}, fmt.Errorf("redis: get: %w", err)
	}
	return sessionkit.Record{Packed: packed, Expires: time.UnixMilli(ms), Rev: tokenRev(v[1+deadlineLen : headerLen])}, nil
}

// tokenRev is a token as the Record's Rev: the number its hex digits
// spell, or 0 (no revision) if they do not. tokenArg turns it back into
// the token, which is how Rename and Create compare what they read with
// what the scripts see; a legacy marker that is not hex (never written by
// this provider) then just never matches, which costs a retry, not
// correctness.
func tokenRev(tok string) uint64 {
	var n uint64
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0
		}
		n = n<<4 | uint64(c)
	}
	if len(tok) != tokenLen {
		return 0
	}
	return n
}

// parseDeadline reads a deadline of deadlineLen digits, as the header and
// the scripts' replies hold it.
func parseDeadline(s string) (int64, error) {
	var ms int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			ms = 0
			break
		}
		ms = ms*10 + int64(c-'0')
	}
	if len(s) != deadlineLen || ms <= 0 {
		return 0, fmt.Errorf("redis: get: %w: bad deadline %q", sessionkit.ErrCorruptValue, s)
	}
	return ms, nil
}

// updateHeadLen is the length of the update script's head (see
// updateSrc): clear, deadline, token, base token, entry count.
const updateHeadLen = 1 + deadlineLen + tokenLen + tokenLen + countLen

// countLen is the digits of the head's entry count.
const countLen = 10

// noToken is the head's base token when the update has no Base: not hex,
// so no stored token equals it.
const noToken = deletedToken

// updateArg returns the update script's first argument (see updateSrc):
// the head for an update with the given deadline (0 keeps the stored
// one), token and base token (0 for none), then u's Set entries encoded
// as in packed values, without the version byte and count that start
// them there. It is one allocation, of the exact size.
func updateArg(u *sessionkit.Update, dl int64, tok, base uint64) []byte {
	b := make([]byte, updateHeadLen, updateHeadLen+u.PackedSize(""))
	b = u.AppendPacked(b, "")
	// The script counts the entries from the head: drop the version
	// byte and count that AppendPacked put before them.
	n, k := binary.Uvarint(b[updateHeadLen+1:])
	b = b[:updateHeadLen+copy(b[updateHeadLen:], b[updateHeadLen+1+k:])]
	h := append(b[:0], '0')
	if u.Clear {
		h[0] = '1'
	}
	h = appendToken(appendDeadline(h, dl), tok) // a deadline of 0 is all zeros: keep
	if base != 0 {
		h = appendToken(h, base)
	} else {
		h = append(h, noToken...)
	}
	// A session holds far fewer than 10^10 entries (Redis strings stop
	// at 512 MB).
	for i := updateHeadLen - 1; i >= len(h); i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return b
}

// Sessions in the hash layout of earlier versions (see scripts.go).
const (
	legacyDeadlineField = "e"
)

// legacyToken is a hash's marker as the token the scripts compare it
// with (load in scripts.go): zero-padded or cut to its last tokenLen
// characters.
func legacyToken(marker string) string {
	if len(marker) >= tokenLen {
		return marker[len(marker)-tokenLen:]
	}
	return strings.Repeat("0", tokenLen-len(marker)) + marker
}

// legacyHash is a session hash as read.
type legacyHash struct {
	rec         sessionkit.Record // Expires set only if hasDeadline; Rev from the marker
	hasDeadline bool              // the hash holds the deadline field
}

// decodeLegacy builds a session from its hash's fields, which fields
// yields twice: once to check and size them, once to copy the values.
func decodeLegacy(fields iter.Seq2[string, string]) (legacyHash, error) {
	// The values are packed into one string (sessionkit.Packed): one
	// allocation instead of a map and a copy of every value. The first
	// pass checks the fields and sizes the buffer.
	var h legacyHash
	marked, marker, size, values := false, "", 0, 0
	for f, v := range fields {
		switch {
		case f == "":
			marker, marked = v, true
		case f[0] == '.':
			size += len(f) - 1 + len(v)
			values++
		case f == legacyDeadlineField:
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms <= 0 {
				return legacyHash{}, fmt.Errorf("redis: get: %w: bad deadline field %q", sessionkit.ErrCorruptValue, v)
			}
			h.rec.Expires, h.hasDeadline = time.UnixMilli(ms), true
		default:
			return legacyHash{}, fmt.Errorf("redis: get: %w: field %q was not written by this provider", sessionkit.ErrCorruptValue, f)
		}
	}
	if !marked {
		return legacyHash{}, fmt.Errorf("redis: get: %w: the hash has no marker field, so this provider did not write it", sessionkit.ErrCorruptValue)
	}
	pb := sessionkit.NewPackedBuilder(values, size)
	for f, v := range fields {
		if f != "" && f[0] == '.' {
			pb.Add(f[1:], v)
		}
	}
	h.rec.Packed = pb.Packed()
	h.rec.Rev = tokenRev(legacyToken(marker))
	return h, nil
}
