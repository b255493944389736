package sessionkit

import (
	"crypto/sha256"
	"encoding/base64"
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
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
