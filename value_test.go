package sessionkit

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

var codecs = map[string]Codec{"msgpack": MsgpackCodec{}, "json": JSONCodec{}, "gob": GobCodec{}}

// Scalars keep their exact type and value through every codec.
func TestScalarsKeepTypeThroughEveryCodec(t *testing.T) {
	now := time.Date(2026, 11, 22, 6, 0, 0, 123456789, time.FixedZone("X", 3600))
	values := []any{
		nil, "", "hello ✓", []byte{0, 1, 2}, []byte{}, true, false,
		0, 42, -7, math.MaxInt, math.MinInt,
		int8(-128), int16(1234), int32(-5), int64(math.MaxInt64),
		uint(7), uint8(255), uint16(65535), uint32(math.MaxUint32), uint64(math.MaxUint64),
		float32(1.5), 3.14159, math.Inf(-1), now,
	}
	for name, c := range codecs {
		for _, v := range values {
			b, err := encodeValue(c, v)
			if err != nil {
				t.Fatalf("%s: encode %T(%v): %v", name, v, v, err)
			}
			got, err := decodeValue(c, b)
			if err != nil {
				t.Fatalf("%s: decode %T(%v): %v", name, v, v, err)
			}
			if tv, ok := v.(time.Time); ok {
				if gt, ok := got.(time.Time); !ok || !gt.Equal(tv) {
					t.Fatalf("%s: time came back as %T %v", name, got, got)
				}
				continue
			}
			if reflect.TypeOf(got) != reflect.TypeOf(v) || !reflect.DeepEqual(got, v) {
				t.Fatalf("%s: %T(%v) came back as %T(%v)", name, v, v, got, got)
			}
		}
	}
}

type profile struct {
	Name  string
	Age   int
	Roles []string
}

func TestCompositeValuesThroughEveryCodec(t *testing.T) {
	in := profile{Name: "alice", Age: 30, Roles: []string{"admin"}}
	for name, c := range codecs {
		if name == "gob" {
			registerGob()
		}
		b, err := encodeValue(c, in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var out profile
		if err := decodeInto(c, b, &out); err != nil {
			t.Fatalf("%s: decodeInto: %v", name, err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("%s: %+v came back as %+v", name, in, out)
		}
		if _, err := decodeValue(c, b); err != nil {
			t.Fatalf("%s: decode into any: %v", name, err)
		}
	}
}

func TestUnencodableValue(t *testing.T) {
	for name, c := range codecs {
		if _, err := encodeValue(c, func() {}); err == nil {
			t.Errorf("%s encoded a func", name)
		}
	}
}

func TestDecodeJunk(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {255}, {tagBool, 2}, {tagBool}, {tagInt}, {tagInt8, 0xfe, 0x03},
		{tagFloat64, 1, 2}, {tagTime, 1}, {tagCodec, 0xc1}, {tagNil, 0}, {tagUint8, 0x80, 0x02}} {
		if _, err := decodeValue(MsgpackCodec{}, b); !errors.Is(err, ErrCorruptValue) {
			t.Errorf("decode %x = %v, want ErrCorruptValue", b, err)
		}
	}
}

type (
	celsius     float64
	celsiusText string
	namedUint   uint64
	namedBool   bool
)

func TestNumericConversions(t *testing.T) {
	cases := []struct {
		v    any
		i    int64
		iok  bool
		f    float64
		fok  bool
		name string
	}{
		{int8(3), 3, true, 3, true, "int8"},
		{uint64(math.MaxUint64), 0, false, 0, false, "big uint, rounds to 2^64"},
		{uint64(math.MaxUint64 - 2047), 0, false, 0x1p64 - 2048, true, "largest float64 below 2^64"},
		{uint64(1 << 63), 0, false, 0x1p63, true, "2^63 unsigned"},
		{int64(math.MaxInt64), math.MaxInt64, true, 0, false, "MaxInt64, rounds to 2^63"},
		{int64(math.MaxInt64 - 1023), math.MaxInt64 - 1023, true, 0x1p63 - 1024, true, "largest float64 below 2^63"},
		{int64(math.MinInt64), math.MinInt64, true, -0x1p63, true, "MinInt64"},
		{int64(math.MinInt64 + 1), math.MinInt64 + 1, true, 0, false, "MinInt64+1"},
		{int64(1<<53 + 1), 1<<53 + 1, true, 0, false, "2^53+1"},
		{int64(-1 << 53), -1 << 53, true, -0x1p53, true, "-2^53"},
		{uint64(1<<53 + 1), 1<<53 + 1, true, 0, false, "2^53+1 unsigned"},
		{3.0, 3, true, 3, true, "integral float"},
		{3.5, 0, false, 3.5, true, "fractional float"},
		{"3", 0, false, 0, false, "string"},
		{math.NaN(), 0, false, math.NaN(), true, "NaN"},
		{1e300, 0, false, 1e300, true, "huge float"},
		{time.Duration(-5), -5, true, -5, true, "named int"},
		{celsius(2.5), 0, false, 2.5, true, "named float"},
		{celsius(-2), -2, true, -2, true, "named integral float"},
		{namedUint(math.MaxUint64), 0, false, 0, false, "named big uint"},
		{time.Duration(1<<53 + 1), 1<<53 + 1, true, 0, false, "named 2^53+1"},
		{namedUint(7), 7, true, 7, true, "named uint"},
		{celsiusText("1"), 0, false, 0, false, "named string"},
	}
	for _, c := range cases {
		i, ok := asInt64(c.v)
		if ok != c.iok || ok && i != c.i {
			t.Errorf("%s: asInt64 = %d, %v", c.name, i, ok)
		}
		f, ok := asFloat64(c.v)
		if ok != c.fok || ok && f != c.f && !(math.IsNaN(f) && math.IsNaN(c.f)) {
			t.Errorf("%s: asFloat64 = %v, %v", c.name, f, ok)
		}
	}
}

// A string, []byte or bool of a named type converts as the built-in type
// does, since a codec may hand it back as it is.
func TestNamedKindConversions(t *testing.T) {
	if s, ok := asString(celsiusText("21")); !ok || s != "21" {
		t.Errorf("asString(named string) = %q, %v", s, ok)
	}
	if s, ok := asString(json.RawMessage("{}")); !ok || s != "{}" {
		t.Errorf("asString(named []byte) = %q, %v", s, ok)
	}
	if _, ok := asString([]int8{1}); ok {
		t.Error("asString([]int8) converted")
	}
	if b, ok := asBool(namedBool(true)); !ok || !b {
		t.Errorf("asBool(named bool) = %v, %v", b, ok)
	}
	if _, ok := asBool(1); ok {
		t.Error("asBool(1) converted")
	}
}

func FuzzDecodeValue(f *testing.F) {
	for _, v := range []any{"s", 1, int64(-9), true, 2.5, []byte("b"), time.Unix(0, 0), map[string]any{"a": 1}} {
		b, _ := encodeValue(MsgpackCodec{}, v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range codecs {
			v, err := decodeValue(c, b)
			if err != nil {
				continue
			}
			// Whatever decodes must encode again without error.
			if _, err := encodeValue(c, v); err != nil && b[0] != tagCodec {
				t.Fatalf("decoded %T(%v) from %x does not re-encode: %v", v, v, b, err)
			}
		}
	})
}
