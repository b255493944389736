package sessionkit

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrInvalidID is wrapped by a provider's error for a malformed session ID
// (see ValidID). The manager never passes one; providers check anyway,
// since an ID is also a key, a file name or part of a query. The manager
// wraps it too, in the error of a save or Regenerate whose new ID, made by
// a custom Config.IDGenerator, is malformed.
var ErrInvalidID = errors.New("sessionkit: invalid session ID")

// Limits on the length of a session ID. The default generator makes IDs of
// exactly DefaultIDLength characters.
const (
	MinIDLength     = 16
	MaxIDLength     = 256
	DefaultIDLength = 32
)

// NewID returns a new session ID: 24 bytes (192 bits) from crypto/rand,
// base64url-encoded without padding to 32 characters.
func NewID() string {
	var buf [DefaultIDLength]byte
	fillID(&buf)
	return string(buf[:])
}

// fillID writes a new ID, as NewID returns, into buf.
func fillID(buf *[DefaultIDLength]byte) {
	// 24 random bytes, and 2 more so that the last six can be read as
	// one 8-byte word like the others.
	var b [26]byte
	// crypto/rand.Read never fails since Go 1.24: it crashes the program
	// instead of returning predictable bytes.
	_, _ = rand.Read(b[:24])
	encodeID(buf, &b)
}

// encodeID writes the first 24 bytes of b in base64url into buf; the last
// two are read (each step reads a word) but never used. It is written out
// by hand, six bytes (eight digits) a step, with nothing left to check
// since the sizes are fixed: half the instructions of
// base64.RawURLEncoding.Encode, on every new session (TestEncodeID
// compares the two).
func encodeID(buf *[DefaultIDLength]byte, b *[26]byte) {
	src, dst := b[:], buf[:]
	for len(src) >= 8 && len(dst) >= 8 {
		v := binary.BigEndian.Uint64(src)
		dst[0] = idAlphabet[v>>58&0x3f]
		dst[1] = idAlphabet[v>>52&0x3f]
		dst[2] = idAlphabet[v>>46&0x3f]
		dst[3] = idAlphabet[v>>40&0x3f]
		dst[4] = idAlphabet[v>>34&0x3f]
		dst[5] = idAlphabet[v>>28&0x3f]
		dst[6] = idAlphabet[v>>22&0x3f]
		dst[7] = idAlphabet[v>>16&0x3f]
		src, dst = src[6:], dst[8:]
	}
}

// idAlphabet is base64url's: the digits of an ID.
const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// ValidID reports whether id is well-formed: MinIDLength to MaxIDLength
// characters of [A-Za-z0-9_-]. Only well-formed IDs ever reach a provider;
// anything else a client sends starts a fresh session.
func ValidID(id string) bool { return validID(id) }

// validID checks a string or a request's raw bytes, so an ID can be
// refused before any copy is made of it.
func validID[T string | []byte](id T) bool {
	if len(id) < MinIDLength || len(id) > MaxIDLength {
		return false
	}
	// Every request's ID is checked, so the check is branch-free: it
	// ORs together what the table says of each byte, eight bytes a step,
	// and looks at the result once. Stopping at the first bad byte would
	// save nothing on the IDs that matter (the good ones) and costs a
	// branch per byte.
	var bad byte
	for len(id) >= 8 {
		bad |= idBad[id[0]] | idBad[id[1]] | idBad[id[2]] | idBad[id[3]] |
			idBad[id[4]] | idBad[id[5]] | idBad[id[6]] | idBad[id[7]]
		id = id[8:]
	}
	for i := 0; i < len(id); i++ {
		bad |= idBad[id[i]]
	}
	return bad == 0
}

// idBad is 1 for the bytes not allowed in an ID, which allows
// [A-Za-z0-9_-], and 0 for the others.
var idBad = func() (t [256]byte) {
	for c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			t[c] = 1
		}
	}
	return t
}()

// checkGenerated returns an error wrapping ErrInvalidID if id, made by a
// custom Config.IDGenerator, breaks the rules for IDs, so that nothing is
// stored or sent under it: New checked one of the generator's IDs, and a
// generator may go wrong later (one ID cut short, say), where the next
// request would refuse the cookie and the session be lost unseen. NewID's
// IDs are never checked.
func (m *Session) checkGenerated(id string) error {
	if m.defaultIDs || ValidID(id) {
		return nil
	}
	return fmt.Errorf("%w: IDGenerator returned %q: IDs must be 16 to 256 characters of [A-Za-z0-9_-]", ErrInvalidID, id)
}
