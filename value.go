package sessionkit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
	"unsafe"
)

// Errors returned by the Store's getters.
var (
	// ErrKeyNotFound means the session holds no value under that key.
	ErrKeyNotFound = errors.New("sessionkit: key not found")
	// ErrWrongType means the stored value cannot be converted to the
	// requested type without loss.
	ErrWrongType = errors.New("sessionkit: value has the wrong type")
	// ErrCorruptValue means stored bytes could not be decoded.
	ErrCorruptValue = errors.New("sessionkit: corrupt stored value")
)

// keyNotFound is the error of a lookup of a key the session lacks. A
// missing key is an everyday answer (a counter's first request), so the
// error costs one small allocation, the key's string header, and builds
// its message only when asked; fmt.Errorf cost three allocations and
// 280 ns, two thirds of a whole read-only request.
type keyNotFound string

func (k keyNotFound) Error() string { return ErrKeyNotFound.Error() + ": " + strconv.Quote(string(k)) }

// Unwrap makes the error match ErrKeyNotFound with errors.Is.
func (keyNotFound) Unwrap() error { return ErrKeyNotFound }

// Tags of the value encoding: one byte, then the payload. Scalars are
// encoded here so they keep their exact Go type through any Codec, and
// because it is several times faster than any general codec.
const (
	tagNil byte = iota
	tagString
	tagBytes
	tagBool
	tagInt
	tagInt8
	tagInt16
	tagInt32
	tagInt64
	tagUint
	tagUint8
	tagUint16
	tagUint32
	tagUint64
	tagFloat32
	tagFloat64
	tagTime
	tagCodec
)

// encodeValue encodes v, using c for anything that is not a scalar.
func encodeValue(c Codec, v any) ([]byte, error) {
	return appendValue(nil, c, v)
}

// appendValue appends the encoding of v to dst. Save encodes all of a
// request's changes into one buffer this way, so writing several values
// costs one allocation rather than one each.
func appendValue(dst []byte, c Codec, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, tagNil), nil
	case string:
		return append(append(dst, tagString), x...), nil
	case []byte:
		return append(append(dst, tagBytes), x...), nil
	case bool:
		if x {
			return append(dst, tagBool, 1), nil
		}
		return append(dst, tagBool, 0), nil
	case int:
		return binary.AppendVarint(append(dst, tagInt), int64(x)), nil
	case int8:
		return binary.AppendVarint(append(dst, tagInt8), int64(x)), nil
	case int16:
		return binary.AppendVarint(append(dst, tagInt16), int64(x)), nil
	case int32:
		return binary.AppendVarint(append(dst, tagInt32), int64(x)), nil
	case int64:
		return binary.AppendVarint(append(dst, tagInt64), x), nil
	case uint:
		return binary.AppendUvarint(append(dst, tagUint), uint64(x)), nil
	case uint8:
		return binary.AppendUvarint(append(dst, tagUint8), uint64(x)), nil
	case uint16:
		return binary.AppendUvarint(append(dst, tagUint16), uint64(x)), nil
	case uint32:
		return binary.AppendUvarint(append(dst, tagUint32), uint64(x)), nil
	case uint64:
		return binary.AppendUvarint(append(dst, tagUint64), x), nil
	case float32:
		return binary.BigEndian.AppendUint32(append(dst, tagFloat32), math.Float32bits(x)), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(dst, tagFloat64), math.Float64bits(x)), nil
	case time.Time:
		t, err := x.MarshalBinary()
		if err != nil {
			return dst, err
		}
		return append(append(dst, tagTime), t...), nil
	}
	data, err := c.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(append(dst, tagCodec), data...), nil
}

// encodedSize estimates what appendValue writes for v, so a buffer for
// several values is allocated once at about the right size: exactly for
// strings and byte slices, at most for the other scalars, a guess for
// what goes through the codec.
func encodedSize(v any) int {
	switch x := v.(type) {
	case string:
		return 1 + len(x)
	case []byte:
		return 1 + len(x)
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return 1 + binary.MaxVarintLen64
	case time.Time:
		return 1 + 16
	}
	return 64
}

// decodeValue decodes bytes made by encodeValue. It never panics: junk
// yields an error wrapping ErrCorruptValue.
func decodeValue(c Codec, b []byte) (any, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrCorruptValue)
	}
	tag, p := b[0], b[1:]
	switch tag {
	case tagNil:
		if len(p) == 0 {
			return nil, nil
		}
	case tagString:
		return string(p), nil
	case tagBytes:
		return append([]byte{}, p...), nil
	case tagBool:
		if len(p) == 1 && p[0] <= 1 {
			return p[0] == 1, nil
		}
	case tagInt, tagInt8, tagInt16, tagInt32, tagInt64:
		n, k := binary.Varint(p)
		if k <= 0 || k != len(p) {
			break
		}
		switch tag {
		case tagInt:
			if n >= math.MinInt && n <= math.MaxInt {
				return int(n), nil
			}
		case tagInt8:
			if n >= math.MinInt8 && n <= math.MaxInt8 {
				return int8(n), nil
			}
		case tagInt16:
			if n >= math.MinInt16 && n <= math.MaxInt16 {
				return int16(n), nil
			}
		case tagInt32:
			if n >= math.MinInt32 && n <= math.MaxInt32 {
				return int32(n), nil
			}
		default:
			return n, nil
		}
	case tagUint, tagUint8, tagUint16, tagUint32, tagUint64:
		n, k := binary.Uvarint(p)
		if k <= 0 || k != len(p) {
			break
		}
		switch tag {
		case tagUint:
			if n <= math.MaxUint {
				return uint(n), nil
			}
		case tagUint8:
			if n <= math.MaxUint8 {
				return uint8(n), nil
			}
		case tagUint16:
			if n <= math.MaxUint16 {
				return uint16(n), nil
			}
		case tagUint32:
			if n <= math.MaxUint32 {
				return uint32(n), nil
			}
		default:
			return n, nil
		}
	case tagFloat32:
		if len(p) == 4 {
			return math.Float32frombits(binary.BigEndian.Uint32(p)), nil
		}
	case tagFloat64:
		if len(p) == 8 {
			return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
		}
	case tagTime:
		var t time.Time
		if err := t.UnmarshalBinary(p); err == nil {
			return t, nil
		}
	case tagCodec:
		var v any
		if err := c.Unmarshal(p, &v); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorruptValue, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("%w: bad encoding (tag %d, %d bytes)", ErrCorruptValue, tag, len(p))
}

// decodeShared is decodeValue for bytes that are never modified (a
// provider's Record): a string shares them instead of copying.
func decodeShared(c Codec, b []byte) (any, error) {
	if len(b) > 1 && b[0] == tagString {
		return unsafe.String(&b[1], len(b)-1), nil
	}
	return decodeValue(c, b)
}

// decodeInto decodes b into the value dst points to.
func decodeInto(c Codec, b []byte, dst any) error {
	if len(b) > 0 && b[0] == tagCodec {
		if err := c.Unmarshal(b[1:], dst); err != nil {
			return fmt.Errorf("%w: %w", ErrCorruptValue, err)
		}
		return nil
	}
	v, err := decodeValue(c, b)
	if err != nil {
		return err
	}
	return assignTo(dst, v)
}

// asInt64 converts any integer kind, or a float with an integral value in
// range, to int64.
func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint:
		return int64(x), uint64(x) <= math.MaxInt64
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case float32:
		return floatToInt64(float64(x))
	case float64:
		return floatToInt64(x)
	}
	return kindToInt64(v)
}

// kindToInt64 is asInt64 for a named number type (type Level int,
// time.Duration), which a codec may hand back as it is (GobCodec does)
// rather than as its underlying kind. Reflection is kept out of asInt64
// so that the built-in types cost nothing more.
func kindToInt64(v any) (int64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n := rv.Uint()
		return int64(n), n <= math.MaxInt64
	case reflect.Float32, reflect.Float64:
		return floatToInt64(rv.Float())
	}
	return 0, false
}

func floatToInt64(f float64) (int64, bool) {
	if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// asFloat64 converts any numeric kind to float64, an integer only when
// float64 holds it exactly (every one of magnitude up to 2^53 does, a
// larger one only if its low bits are zero): 2^53+1 would read back as
// 2^53, a loss the getters promise not to make.
func asFloat64(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return intToFloat64(int64(x))
	case int64:
		return intToFloat64(x)
	case uint:
		return uintToFloat64(uint64(x))
	case uint64:
		return uintToFloat64(x)
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	}
	return kindToFloat64(v)
}

// isFloat reports whether v is a floating-point number, of a named type
// too.
func isFloat(v any) bool {
	switch v.(type) {
	case float64, float32:
		return true
	}
	k := reflect.ValueOf(v).Kind()
	return k == reflect.Float64 || k == reflect.Float32
}

// kindToFloat64 is asFloat64 for a named number type, as kindToInt64 is
// asInt64's.
func kindToFloat64(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return intToFloat64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return uintToFloat64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

// intToFloat64 converts n if float64 holds it exactly. The integers next
// to MaxInt64 round up to 2^63, which int64 cannot hold, and converting
// that back is implementation-specific in Go: the range is checked first.
func intToFloat64(n int64) (float64, bool) {
	if f := float64(n); f < 0x1p63 && int64(f) == n {
		return f, true
	}
	return 0, false
}

// uintToFloat64 is intToFloat64 for n unsigned, where the integers next to
// MaxUint64 round up to 2^64.
func uintToFloat64(n uint64) (float64, bool) {
	if f := float64(n); f < 0x1p64 && uint64(f) == n {
		return f, true
	}
	return 0, false
}

// asString converts a string or a []byte to a string, of a named type
// too, which a codec may hand back as it is (GobCodec does).
func asString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	}
	rv := reflect.ValueOf(v)
	switch {
	case rv.Kind() == reflect.String:
		return rv.String(), true
	case rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8:
		return string(rv.Bytes()), true
	}
	return "", false
}

// asBool converts a bool to a bool, of a named type too, as asString
// does.
func asBool(v any) (bool, bool) {
	if b, ok := v.(bool); ok {
		return b, true
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Bool {
		return rv.Bool(), true
	}
	return false, false
}

// ownEncoding reports whether appendValue encodes v itself, so that v
// comes back from any codec with its own type and value; any other value
// may come back from the codec as another type. It lists the types of
// appendValue's switch.
func ownEncoding(v any) bool {
	switch v.(type) {
	case nil, string, []byte, bool, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64, float32, float64, time.Time:
		return true
	}
	return false
}
