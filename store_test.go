package sessionkit_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/sessionkit/sessionkit"
)

// An int stored comes back as an int after a round trip through every
// codec, and the typed getters convert between number kinds.
func TestTypedGettersAfterRoundTrip(t *testing.T) {
	for name, codec := range map[string]sessionkit.Codec{
		"msgpack": sessionkit.MsgpackCodec{}, "json": sessionkit.JSONCodec{}, "gob": sessionkit.GobCodec{},
	} {
		t.Run(name, func(t *testing.T) {
			m, _ := newManager(t, sessionkit.Config{Codec: codec})
			res := serve(t, m, request{}, func(s *sessionkit.Store) {
				s.Set("int", 42)
				s.Set("i64", int64(math.MaxInt64))
				s.Set("u8", uint8(7))
				s.Set("f", 2.0)
				s.Set("half", 2.5)
				s.Set("f32", float32(1.25))
				s.Set("b", true)
				s.Set("s", "str")
				s.Set("bytes", []byte("raw"))
				s.Set("map", map[string]any{"k": "v"})
			})
			if res.saveErr != nil {
				t.Fatal(res.saveErr)
			}
			id := res.cookieVal
			serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
				if v, ok := s.Get("int").(int); !ok || v != 42 {
					t.Errorf("Get(int) = %T %v, want int 42", s.Get("int"), s.Get("int"))
				}
				check := func(what string, got, want any, err error) {
					t.Helper()
					if err != nil || got != want {
						t.Errorf("%s = %v (%T), %v; want %v", what, got, got, err, want)
					}
				}
				n, err := s.GetInt("int")
				check("GetInt(int)", n, 42, err)
				n, err = s.GetInt("u8")
				check("GetInt(uint8)", n, 7, err)
				n, err = s.GetInt("f")
				check("GetInt(2.0)", n, 2, err)
				i64, err := s.GetInt64("i64")
				check("GetInt64", i64, int64(math.MaxInt64), err)
				f, err := s.GetFloat64("int")
				check("GetFloat64(int)", f, 42.0, err)
				f32, err := s.GetFloat32("f32")
				check("GetFloat32", f32, float32(1.25), err)
				b, err := s.GetBool("b")
				check("GetBool", b, true, err)
				str, err := s.GetString("s")
				check("GetString", str, "str", err)
				str, err = s.GetString("bytes")
				check("GetString([]byte)", str, "raw", err)

				if _, err := s.GetInt("half"); !errors.Is(err, sessionkit.ErrWrongType) {
					t.Errorf("GetInt(2.5) = %v, want ErrWrongType", err)
				}
				if _, err := s.GetInt("s"); !errors.Is(err, sessionkit.ErrWrongType) {
					t.Errorf("GetInt(string) = %v, want ErrWrongType", err)
				}
				if _, err := s.GetBool("int"); !errors.Is(err, sessionkit.ErrWrongType) {
					t.Errorf("GetBool(int) = %v, want ErrWrongType", err)
				}
				if _, err := s.GetString("missing"); !errors.Is(err, sessionkit.ErrKeyNotFound) {
					t.Errorf("GetString(missing) = %v, want ErrKeyNotFound", err)
				} else if want := `sessionkit: key not found: "missing"`; err.Error() != want {
					t.Errorf("GetString(missing) says %q, want %q", err, want)
				}
				var mv map[string]any
				if err := s.Decode("map", &mv); err != nil || mv["k"] != "v" {
					t.Errorf("Decode(map) = %v, %v", mv, err)
				}
			})
		})
	}
}

// A Store is safe for the goroutines of one request.
func TestStoreConcurrentUse(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	serve(t, m, request{}, func(s *sessionkit.Store) {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 200 {
					k := fmt.Sprintf("g%d-%d", g, i%10)
					s.Set(k, i)
					_ = s.Get(k)
					_, _ = s.GetInt(k)
					_ = s.Keys()
					s.SetFlash(k, i)
					_ = s.GetFlash(k)
					if i%50 == 0 {
						s.Delete(k)
					}
				}
			}()
		}
		wg.Wait()
		if n := len(s.Keys()); n != 80 {
			t.Fatalf("%d keys after concurrent use, want 80", n)
		}
	})
}

// An ID handed out never changes, even when the Store gets a new one.
func TestIDStringsNeverChange(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }).cookieVal
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		loaded := s.ID()
		want := strings.Clone(loaded)
		if err := s.Destroy(bg); err != nil {
			t.Fatal(err)
		}
		s.Set("b", 2)
		fresh := s.ID()
		if loaded != want || fresh == loaded {
			t.Fatalf("the loaded ID changed to %q (was %q); new ID %q", loaded, want, fresh)
		}
	})
	serve(t, m, request{}, func(s *sessionkit.Store) {
		first := s.ID()
		want := strings.Clone(first)
		s.Set("a", 1)
		if err := s.Destroy(bg); err != nil {
			t.Fatal(err)
		}
		s.Set("b", 1)
		_ = s.ID()
		if first != want {
			t.Fatalf("a generated ID changed to %q (was %q)", first, want)
		}
	})
}

// TestUpdateBase checks what the manager hands providers as Update.Base:
// the Record Get returned, for the first write of a loaded session only.
// A new session, a second save in the same request, and a save after
// Regenerate get none, since what is stored is no longer what was read.
func TestUpdateBase(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }).cookieVal
	stored, err := p.Provider.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		s.Set("b", 2)
		if err := s.Save(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.Set("c", 3)
	})
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if err := s.Regenerate(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.Set("d", 4)
	})
	p.mu.Lock()
	bases := p.bases
	p.mu.Unlock()
	if len(bases) != 4 {
		t.Fatalf("%d updates, want 4", len(bases))
	}
	if !bases[0].Expires.IsZero() {
		t.Errorf("Create got a Base: %+v", bases[0])
	}
	if b := bases[1]; b.Packed != stored.Packed || !b.Expires.Equal(stored.Expires) || b.Rev != stored.Rev {
		t.Errorf("first save of a loaded session: Base = %+v, want what Get returned, %+v", b, stored)
	}
	for i, what := range map[int]string{2: "second save in one request", 3: "save after Regenerate"} {
		if !bases[i].Expires.IsZero() || bases[i].Packed != "" {
			t.Errorf("%s got a Base: %+v", what, bases[i])
		}
	}
}
