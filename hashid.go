package sessionkit

import (
	"crypto/sha256"
	"encoding/base64"
	"unsafe"
)

// storageKey is the key a session is stored under. With Config.HashIDs it
// is the SHA-256 of the ID, so a copy of the storage (a database dump, a
// Redis snapshot) holds nothing a client could present as a session ID;
// otherwise it is the ID itself.
func (m *Session) storageKey(id string) string {
	if !m.cfg.HashIDs {
		return id
	}
	return HashID(id)
}

// HashID returns the storage key of id when Config.HashIDs is set:
// SHA-256, base64url-encoded without padding (43 characters, a valid ID
// itself). Use it to find a session in the storage by its ID, for example
// in a provider's Range.
func HashID(id string) string {
	var b [hashIDLen]byte
	return string(appendHashID(b[:0], id))
}

// hashIDLen is the length of a storage key made by HashID.
const hashIDLen = 43

// appendHashID appends HashID(id) to dst, so that a caller with a buffer
// of its own gets the key without an allocation.
func appendHashID(dst []byte, id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.AppendEncode(dst, sum[:])
}

// hashedKey returns the storage key of s.id under HashIDs, worked out
// once per ID and request rather than at every provider call: a
// read-only request calls the provider once, a write twice. For a Copier,
// which keeps nothing it is handed, the key lies in the state's keyArr;
// a provider that may keep it gets a string of its own.
func (s *storeState) hashedKey(copies bool) string {
	inArr := s.key != "" && unsafe.StringData(s.key) == &s.keyArr[0]
	if s.key != "" && s.keyOf == s.id && (copies || !inArr) {
		return s.key
	}
	if copies {
		b := appendHashID(s.keyArr[:0], s.id)
		s.key = unsafe.String(&b[0], len(b))
	} else {
		s.key = HashID(s.id)
	}
	s.keyOf = s.id
	return s.key
}
