package sessionkit

import "strings"

// Flashes are values meant to be read once, typically a message set before
// a redirect and shown on the next page. They are stored with the session
// like any value (so they survive across requests and servers), kept apart
// from the keys that Keys, GetAll and VisitAll list, and removed by the
// read that returns them.

// SetFlash stores a flash value under key, replacing any earlier one.
func (h *Store) SetFlash(key string, v any) {
	s, ok := h.lock()
	if !ok {
		return
	}
	defer s.mu.Unlock()
	s.setLocked(flashPrefix+key, entry{v: v})
}

// GetFlash returns the flash value under key and removes it, so that the
// requests that follow do not see it again; nil if there is none. Like
// any value, it is read from the session as the request loaded it: two
// requests of one session that loaded it before either saved may both
// see it.
func (h *Store) GetFlash(key string) any {
	s, ok := h.lock()
	if !ok {
		return nil
	}
	defer s.mu.Unlock()
	k := flashPrefix + key
	v, err := s.getLocked(k)
	if err != nil {
		return nil
	}
	s.deleteLocked(k)
	return v
}

// HasFlash reports whether a flash value is stored under key, without
// removing it.
func (h *Store) HasFlash(key string) bool {
	s, ok := h.read()
	if !ok {
		return false
	}
	defer s.mu.Unlock()
	return s.hasLocked(flashPrefix + key)
}

// GetFlashes returns every flash value by key and removes them all.
func (h *Store) GetFlashes() map[string]any {
	s, ok := h.lock()
	if !ok {
		return map[string]any{}
	}
	defer s.mu.Unlock()
	out := make(map[string]any)
	for _, k := range s.flashKeysLocked() {
		if v, err := s.getLocked(k); err == nil {
			out[strings.TrimPrefix(k, flashPrefix)] = v
		}
		s.deleteLocked(k)
	}
	return out
}

// ClearFlashes removes every flash value without reading it.
func (h *Store) ClearFlashes() {
	s, ok := h.lock()
	if !ok {
		return
	}
	defer s.mu.Unlock()
	for _, k := range s.flashKeysLocked() {
		s.deleteLocked(k)
	}
}

func (s *storeState) flashKeysLocked() []string {
	var keys []string
	s.eachKeyLocked(func(k string) {
		if strings.HasPrefix(k, flashPrefix) {
			keys = append(keys, k)
		}
	})
	return keys
}
