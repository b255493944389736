package sessionkit

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
)

// Codec turns the values a Store holds into bytes and back.
//
// The manager encodes the common scalar types itself, whatever the Codec:
// string, []byte, bool, every int and uint kind, float32, float64 and
// time.Time come back with exactly the type and value they were stored with
// (an int stays an int). Everything else (structs, maps, slices) goes
// through the Codec, and what Store.Get returns for it is whatever the
// Codec's Unmarshal into an *any produces; use Store.Decode to read such a
// value into a typed destination.
//
// Implementations must be safe for concurrent use and must return an error,
// never panic, on malformed input.
type Codec interface {
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the value pointed to by v; v is an *any
	// or a pointer to a concrete type.
	Unmarshal(data []byte, v any) error
}

// MsgpackCodec encodes with MessagePack (github.com/vmihailenco/msgpack/v5).
// It is the default. Structs, maps, slices and pointers to them survive;
// decoded into an *any, maps come back as map[string]any and integers as
// the smallest integer type that holds them. Unexported struct fields are
// dropped.
type MsgpackCodec struct{}

// Marshal implements Codec.
func (MsgpackCodec) Marshal(v any) ([]byte, error) { return msgpack.Marshal(v) }

// Unmarshal implements Codec. The data's structure is checked first (see
// checkMsgpack), so corrupt or hostile bytes fail fast instead of keeping
// the decoder busy.
func (MsgpackCodec) Unmarshal(data []byte, v any) error {
	if err := checkMsgpack(data); err != nil {
		return err
	}
	return msgpack.Unmarshal(data, v)
}

// JSONCodec encodes with encoding/json. Decoded into an *any, objects come
// back as map[string]any and numbers as float64; decode into a typed value
// with Store.Decode to keep types. Unexported fields, channels and
// functions are not encodable.
type JSONCodec struct{}

// Marshal implements Codec.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// GobCodec encodes with encoding/gob. Values are encoded as interface
// values so that Store.Get returns them with their concrete type; custom
// types must be registered with gob.Register before they are stored or
// read, as gob requires (map[string]any and []any are registered here).
type GobCodec struct{}

func init() {
	gob.Register(map[string]any{})
	gob.Register([]any{})
}

// Marshal implements Codec.
func (GobCodec) Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unmarshal implements Codec.
func (GobCodec) Unmarshal(data []byte, v any) error {
	var out any
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&out); err != nil {
		return err
	}
	return assignTo(v, out)
}

// assignTo stores src into the value dst points to, when the types allow.
func assignTo(dst, src any) error {
	if p, ok := dst.(*any); ok {
		*p = src
		return nil
	}
	dv := reflect.ValueOf(dst)
	if dv.Kind() != reflect.Pointer || dv.IsNil() {
		return fmt.Errorf("%w: decode destination must be a non-nil pointer, got %T", ErrWrongType, dst)
	}
	if src == nil {
		dv.Elem().SetZero()
		return nil
	}
	sv := reflect.ValueOf(src)
	if !sv.Type().AssignableTo(dv.Elem().Type()) {
		return fmt.Errorf("%w: stored %T cannot be decoded into %T", ErrWrongType, src, dst)
	}
	dv.Elem().Set(sv)
	return nil
}
