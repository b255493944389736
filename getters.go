package sessionkit

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// The typed getters return the value under key converted to their type.
// Numbers convert between kinds when no information is lost (an int64 of 3
// reads as an int, a float64 of 3.0 as an int; 3.5 does not), so a number
// reads back whichever codec stored it. A value Set in this request reads
// as the requests that follow will read it once the codec has stored it,
// so that every request gets the same answer: a named type (type Role
// string, time.Duration) as its underlying kind, a type that marshals
// itself to text (slog.Level) as that text. A missing key gives an error
// wrapping ErrKeyNotFound, a value of another type one wrapping
// ErrWrongType; neither panics.

// GetString returns the string under key; a []byte converts.
func (h *Store) GetString(key string) (string, error) {
	v, raw, c, err := h.lookupScalar(key)
	if err != nil {
		return "", err
	}
	if raw != nil {
		if raw[0] == tagString {
			return unsafe.String(unsafe.SliceData(raw[1:]), len(raw)-1), nil
		}
		if v, err = decodeStored(c, key, raw); err != nil {
			return "", err
		}
	}
	if x, ok := asString(v); ok {
		return x, nil
	}
	return "", wrongType(key, v, "string")
}

// GetInt returns the integer under key as an int.
func (h *Store) GetInt(key string) (int, error) {
	n, err := h.GetInt64(key)
	if err != nil {
		return 0, err
	}
	if n < math.MinInt || n > math.MaxInt {
		return 0, fmt.Errorf("%w: %q holds %d, which overflows int", ErrWrongType, key, n)
	}
	return int(n), nil
}

// GetInt64 returns the integer under key as an int64.
func (h *Store) GetInt64(key string) (int64, error) {
	v, raw, c, err := h.lookupScalar(key)
	if err != nil {
		return 0, err
	}
	if raw != nil {
		if raw[0] >= tagInt && raw[0] <= tagInt64 {
			if n, k := binary.Varint(raw[1:]); k > 0 && k == len(raw)-1 {
				return n, nil
			}
		}
		if v, err = decodeStored(c, key, raw); err != nil {
			return 0, err
		}
	}
	n, ok := asInt64(v)
	if !ok {
		return 0, wrongType(key, v, "int64")
	}
	return n, nil
}

// GetFloat64 returns the number under key as a float64. An integer beyond
// 2^53 converts only if float64 holds it exactly: 2^53+1 does not.
func (h *Store) GetFloat64(key string) (float64, error) {
	v, err := h.scalar(key)
	if err != nil {
		return 0, err
	}
	f, ok := asFloat64(v)
	if !ok {
		return 0, wrongType(key, v, "float64")
	}
	return f, nil
}

// GetFloat32 returns the number under key as a float32. A float64 is
// rounded to the nearest float32, as a conversion from float64 does (0.1
// reads as float32(0.1)), unless it is beyond float32's range or would
// round to zero; an integer converts only if float32 holds it exactly
// (2^24+1 does not), as the other getters convert integers.
func (h *Store) GetFloat32(key string) (float32, error) {
	v, err := h.scalar(key)
	if err != nil {
		return 0, err
	}
	f, ok := asFloat64(v)
	if !ok {
		return 0, wrongType(key, v, "float32")
	}
	g := float32(f)
	switch {
	case float64(g) == f || math.IsNaN(f):
		return g, nil
	case math.IsInf(float64(g), 0):
		return 0, fmt.Errorf("%w: %q holds %g, which overflows float32", ErrWrongType, key, f)
	case g == 0:
		return 0, fmt.Errorf("%w: %q holds %g, which float32 rounds to zero", ErrWrongType, key, f)
	case !isFloat(v):
		return 0, fmt.Errorf("%w: %q holds %v, which float32 cannot hold exactly", ErrWrongType, key, v)
	}
	return g, nil
}

// scalar returns the value under key as the getters read it (see
// lookupScalar), decoded.
func (h *Store) scalar(key string) (any, error) {
	v, raw, c, err := h.lookupScalar(key)
	if err != nil || raw == nil {
		return v, err
	}
	return decodeStored(c, key, raw)
}

// GetBool returns the bool under key.
func (h *Store) GetBool(key string) (bool, error) {
	v, err := h.scalar(key)
	if err != nil {
		return false, err
	}
	b, ok := asBool(v)
	if !ok {
		return false, wrongType(key, v, "bool")
	}
	return b, nil
}

func wrongType(key string, v any, want string) error {
	return fmt.Errorf("%w: %q holds %T, not %s", ErrWrongType, key, v, want)
}

// lookupScalar returns key's value like lookup, except that a stored value
// not decoded yet comes back as its bytes (raw non-nil, never modified),
// with the codec to decode it, so the getters can read common scalars
// without boxing them in an any.
//
// A value Set in this request that the manager does not encode itself
// comes back encoded too, because later requests read it through the
// codec, which may give back another type: the underlying kind of a named
// type, a pointer's element, the text of a type that marshals itself to
// text (slog.Level). A getter reading it as it was Set would answer
// otherwise in this request than in the next. A value the codec cannot
// encode comes back as it is (Save will fail).
func (h *Store) lookupScalar(key string) (v any, raw []byte, c Codec, err error) {
	s, ok := h.read()
	if !ok {
		return nil, nil, nil, ErrStoreReleased
	}
	defer s.mu.Unlock()
	if _, pending := s.pending.get(key); !pending && !s.cleared {
		if r, ok := s.base.lookup(key); ok && len(r) > 0 && r[0] != tagCodec {
			s.hintKey, s.hintOld = key, r
			return nil, r, s.m.cfg.Codec, nil
		}
	} else if r := s.encodePendingLocked(key); r != nil {
		return nil, r, s.m.cfg.Codec, nil
	}
	v, err = s.getLocked(key)
	return v, nil, nil, err
}

// encodePendingLocked returns the encoding of key's value if it was Set in
// this request and the manager does not encode it itself, else nil. It
// is a function of its own because, written into lookupScalar, it cost a
// read of a stored value about 30 instructions (W1, scripts/icount.sh).
func (s *storeState) encodePendingLocked(key string) []byte {
	e, ok := s.pending.get(key)
	if !ok || e.del || e.raw != nil || ownEncoding(e.v) {
		return nil
	}
	r, err := encodeValue(s.m.cfg.Codec, e.v)
	if err != nil {
		return nil
	}
	return r
}

// decodeStored decodes a stored scalar the fast paths did not handle.
func decodeStored(c Codec, key string, raw []byte) (any, error) {
	v, err := decodeShared(c, raw)
	if err != nil {
		return nil, fmt.Errorf("sessionkit: key %q: %w", key, err)
	}
	return v, nil
}
