package sessionkit

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
)

// ErrInvalidID is wrapped by a provider's error for a malformed session ID
// (see ValidID). The manager never passes one; providers check anyway,
// since an ID is also a key, a file name or part of a query.
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
	var b [24]byte
	// crypto/rand.Read never fails since Go 1.24: it crashes the program
	// instead of returning predictable bytes.
	_, _ = rand.Read(b[:])
	base64.RawURLEncoding.Encode(buf[:], b[:])
}

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
	for i := 0; i < len(id); i++ {
		if !idChar[id[i]] {
			return false
		}
	}
	return true
}

// idChar marks the bytes allowed in an ID: [A-Za-z0-9_-].
var idChar = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	return t
}()
