package sessionkit

import (
	"testing"
	"time"
)

// FuzzCodecs feeds random bytes to every codec's decoder, as a corrupted
// or hostile store would: errors are fine, panics are not.
func FuzzCodecs(f *testing.F) {
	for _, c := range codecs {
		b, _ := c.Marshal(map[string]any{"a": []any{1, "x"}})
		f.Add(b)
	}
	f.Add([]byte{0xc1})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range codecs {
			var v any
			_ = c.Unmarshal(b, &v)
			var p profile
			_ = c.Unmarshal(b, &p)
		}
	})
}

// checkMsgpack must accept everything the encoder produces.
func TestCheckMsgpackAcceptsEncoderOutput(t *testing.T) {
	values := []any{
		nil, true, 1, -1, -100, 300, -70000, int64(1) << 40, uint64(1) << 63, 1.5, float32(2.5),
		"", "short", string(make([]byte, 40)), string(make([]byte, 300)), string(make([]byte, 70000)),
		[]byte{1, 2}, make([]byte, 300), make([]byte, 70000),
		[]any{1, "a", []any{map[string]any{"k": []int{1, 2}}}}, make([]int, 20), make([]int, 70000),
		map[string]any{"a": 1, "b": map[string]any{"c": nil}}, profile{Name: "x", Roles: []string{"a"}},
		time.Now(),
	}
	big := map[string]int{}
	for i := range 20 {
		big[string(rune('a'+i))] = i
	}
	values = append(values, big)
	for _, v := range values {
		b, err := MsgpackCodec{}.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkMsgpack(b); err != nil {
			t.Fatalf("valid encoding of %T refused: %x", v, b[:min(len(b), 32)])
		}
		if err := checkMsgpack(b[:len(b)-1]); err == nil && len(b) > 1 {
			t.Fatalf("truncated encoding of %T accepted", v)
		}
	}
	// A map header claiming billions of entries is refused at once.
	if err := checkMsgpack([]byte("\xdf\xd9\xbd\xf9\xd5\xe10000")); err == nil {
		t.Fatal("absurd map header accepted")
	}
}
