package sessionkit_test

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/valyala/fasthttp"
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

// GetFloat64 and GetFloat32 convert an integer only if their type holds
// it exactly, in the request that Set it as in the later ones: an integer
// float64 or float32 would round is ErrWrongType. A float64 reads as the
// nearest float32, as a Go conversion gives, unless float32 cannot hold
// it at all (beyond its range, or rounding to zero).
func TestFloatGetters(t *testing.T) {
	values := map[string]any{
		"2^53+1": int64(1<<53 + 1), "2^53": int64(1 << 53), "MaxInt64": int64(math.MaxInt64),
		"MinInt64": int64(math.MinInt64), "MaxUint64": uint64(math.MaxUint64), "2^63": uint64(1 << 63),
		"2^24+1": 1<<24 + 1, "2^24": 1 << 24, "0.1": 0.1, "0.5": 0.5, "f32": float32(0.1),
		"1e300": 1e300, "inf": math.Inf(1), "nan": math.NaN(), "tiny": 1e-300,
	}
	want := map[string]string{
		"2^53+1": "ErrWrongType ErrWrongType", "2^53": "9.007199254740992e+15 9.007199e+15",
		"MaxInt64": "ErrWrongType ErrWrongType", "MinInt64": "-9.223372036854776e+18 -9.223372e+18",
		"MaxUint64": "ErrWrongType ErrWrongType", "2^63": "9.223372036854776e+18 9.223372e+18",
		"2^24+1": "1.6777217e+07 ErrWrongType", "2^24": "1.6777216e+07 1.6777216e+07",
		"0.1": "0.1 0.1", "0.5": "0.5 0.5", "f32": "0.10000000149011612 0.1",
		"1e300": "1e+300 ErrWrongType", "inf": "+Inf +Inf", "nan": "NaN NaN", "tiny": "1e-300 ErrWrongType",
	}
	read := func(s *sessionkit.Store) map[string]string {
		got := map[string]string{}
		for k := range values {
			var r [2]any
			f, err := s.GetFloat64(k)
			r[0] = f
			if err != nil {
				r[0] = err
			}
			f32, err := s.GetFloat32(k)
			r[1] = f32
			if err != nil {
				r[1] = err
			}
			for i, v := range r {
				if err, ok := v.(error); ok && errors.Is(err, sessionkit.ErrWrongType) {
					r[i] = "ErrWrongType"
				}
			}
			got[k] = fmt.Sprint(r[0], " ", r[1])
		}
		return got
	}
	m, _ := newManager(t, sessionkit.Config{})
	same, later := sameAndLater(t, m, values, read)
	for k, w := range want {
		if same[k] != w || later[k] != w {
			t.Errorf("%s: GetFloat64, GetFloat32 = %s in the same request, %s later; want %s", k, same[k], later[k], w)
		}
	}
}

// sameAndLater sets values in a new session, and returns what read makes
// of the session in that request and in the next one, which reads the
// values back through the codec.
func sameAndLater[T any](t *testing.T, m *sessionkit.Session, values map[string]any, read func(*sessionkit.Store) T) (same, later T) {
	t.Helper()
	res := serve(t, m, request{}, func(s *sessionkit.Store) {
		for k, v := range values {
			s.Set(k, v)
		}
		same = read(s)
	})
	if res.saveErr != nil {
		t.Fatal(res.saveErr)
	}
	serve(t, m, request{cookie: res.cookieVal}, func(s *sessionkit.Store) { later = read(s) })
	return same, later
}

type (
	role  string
	level int
	ratio float64
	flag  bool
	blob  []byte
)

// The typed getters answer in the request that Set a value as in the
// later ones, which read it through the codec: a named type reads as its
// underlying kind, a pointer as its element, a type that marshals itself
// to text (slog.Level) as whatever the codec makes of it.
func TestTypedGettersSameRequestAsLater(t *testing.T) {
	for _, v := range []any{role(""), level(0), ratio(0), flag(false), blob(nil), slog.Level(0), time.Duration(0)} {
		gob.Register(v)
	}
	n := 5
	values := map[string]any{
		"role": role("admin"), "level": level(3), "ttl": time.Minute, "ratio": ratio(0.5),
		"flag": flag(true), "blob": blob("raw"), "ptr": &n, "slog": slog.LevelWarn,
	}
	read := func(s *sessionkit.Store) map[string]string {
		got := map[string]string{}
		note := func(k string, v any, err error) {
			if errors.Is(err, sessionkit.ErrWrongType) {
				v = "ErrWrongType"
			} else if err != nil {
				v = err
			}
			got[k] = fmt.Sprint(v)
		}
		for k := range values {
			str, err := s.GetString(k)
			note("GetString("+k+")", str, err)
			i, err := s.GetInt(k)
			note("GetInt("+k+")", i, err)
			i64, err := s.GetInt64(k)
			note("GetInt64("+k+")", i64, err)
			f, err := s.GetFloat64(k)
			note("GetFloat64("+k+")", f, err)
			b, err := s.GetBool(k)
			note("GetBool("+k+")", b, err)
		}
		return got
	}
	want := map[string]string{
		"GetString(role)": "admin", "GetInt(level)": "3", "GetInt64(ttl)": "60000000000",
		"GetFloat64(ratio)": "0.5", "GetBool(flag)": "true", "GetInt(ptr)": "5", "GetFloat64(level)": "3",
	}
	for name, codec := range map[string]sessionkit.Codec{
		"msgpack": sessionkit.MsgpackCodec{}, "json": sessionkit.JSONCodec{}, "gob": sessionkit.GobCodec{},
	} {
		t.Run(name, func(t *testing.T) {
			m, _ := newManager(t, sessionkit.Config{Codec: codec})
			same, later := sameAndLater(t, m, values, read)
			for k, l := range later {
				if same[k] != l {
					t.Errorf("%s: same request %s, later request %s", k, same[k], l)
				}
				if w, ok := want[k]; ok && l != w {
					t.Errorf("%s = %s, want %s", k, l, w)
				}
			}
		})
	}
}

type account struct {
	Name  string
	Roles []string
}

// Decode answers in the request that Set a value as in the later ones,
// which read it through the codec: a pointer decodes into its element
// type, a typed map into a map[string]any, into an *any what the codec
// gives back.
func TestDecodeSameRequestAsLater(t *testing.T) {
	decode := func(s *sessionkit.Store) string {
		var u account
		var m map[string]any
		var v any
		uErr := s.Decode("user", &u)
		mErr := s.Decode("m", &m)
		vErr := s.Decode("user", &v)
		wrong := errors.Is(s.Decode("user", u), sessionkit.ErrWrongType)
		return fmt.Sprintf("%v %v; %v %v; %v %v; %v", uErr, u, mErr, m, vErr, v, wrong)
	}
	want := "<nil> {alice [admin]}; <nil> map[a:1]; <nil> map[Name:alice Roles:[admin]]; true"
	for name, codec := range map[string]sessionkit.Codec{"msgpack": sessionkit.MsgpackCodec{}, "json": sessionkit.JSONCodec{}} {
		t.Run(name, func(t *testing.T) {
			m, _ := newManager(t, sessionkit.Config{Codec: codec})
			same, later := sameAndLater(t, m, map[string]any{
				"user": &account{Name: "alice", Roles: []string{"admin"}},
				"m":    map[string]int{"a": 1},
			}, decode)
			if same != want || later != want {
				t.Errorf("Decode (error, value) of *account into *account, map[string]int into *map[string]any,\n"+
					"*account into *any, and into a non-pointer (ErrWrongType):\nsame request  %s\nlater request %s\nwant          %s",
					same, later, want)
			}
		})
	}
}

// Until Save, a Store holds what Set was given: Decode into a value of
// its exact type shares it, as Get does, but a conversion through the
// codec is the caller's own copy.
func TestDecodeSharesOnlyTheValueItself(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	serve(t, m, request{}, func(s *sessionkit.Store) {
		s.Set("m", map[string]int{"a": 1})
		var typed map[string]int
		var converted map[string]any
		if err := s.Decode("m", &typed); err != nil {
			t.Fatal(err)
		}
		if err := s.Decode("m", &converted); err != nil {
			t.Fatal(err)
		}
		typed["b"] = 2
		converted["a"] = 5
		if got := s.Get("m").(map[string]int); len(got) != 2 || got["a"] != 1 {
			t.Errorf("Get = %v, want map[a:1 b:2]", got)
		}
	})
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

// A request's ID lies in its Store's recycled state while the request
// runs (for a Copier such as the memory provider), and the state's next
// request writes its own ID there: nothing handed out of a request may
// change with it. Checked for what Store.ID returns, for what a user's
// EncodeCookie hook keeps of its argument, and for the ID header a
// net/http response keeps; each must still be the ID its response's
// cookie carried after many more requests, each of which released its
// state for the next (as fasthttp's server and Middleware do).
func TestIDsOutliveTheirRequest(t *testing.T) {
	var kept []string
	m, _ := newManager(t, sessionkit.Config{
		EncodeCookie: func(id string) (string, error) { kept = append(kept, id); return id, nil },
		DecodeCookie: func(v string) (string, error) { return v, nil },
	})
	const requests = 50
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	var fromID, cookies []string
	for range requests {
		var fromStore string
		err := handle(m, &ctx, "", func(s *sessionkit.Store) {
			s.Set("n", 1)
			fromStore = s.ID()
		})
		if err != nil {
			t.Fatal(err)
		}
		c := fasthttp.AcquireCookie()
		c.SetKey(m.Config().CookieName)
		ctx.Response.Header.Cookie(c)
		fromID = append(fromID, fromStore)
		cookies = append(cookies, string(c.Value()))
		fasthttp.ReleaseCookie(c)
		// A request that reads a stored session writes its ID where
		// the new ones were made.
		if err := handle(m, &ctx, cookies[len(cookies)-1], func(s *sessionkit.Store) { _, _ = s.GetInt("n") }); err != nil {
			t.Fatal(err)
		}
	}
	// With no hook, the header gets the ID itself.
	plain, _ := newManager(t, sessionkit.Config{IDInHeader: true})
	var recs []*httptest.ResponseRecorder
	for range requests {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		s, err := plain.StartHTTP(rec, r)
		if err != nil {
			t.Fatal(err)
		}
		s.Set("n", 1)
		if err := s.Save(r.Context()); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		recs = append(recs, rec)
	}
	if len(kept) != requests {
		t.Fatalf("EncodeCookie ran %d times, want %d", len(kept), requests)
	}
	seen := map[string]bool{}
	for i := range requests {
		if c := cookies[i]; !sessionkit.ValidID(c) || seen[c] || fromID[i] != c || kept[i] != c {
			t.Fatalf("request %d: cookie %q (seen before %v), Store.ID %q, EncodeCookie's argument %q", i, c, seen[c], fromID[i], kept[i])
		}
		seen[cookies[i]] = true
		rec := recs[i]
		var c string
		for _, hc := range rec.Result().Cookies() {
			if hc.Name == plain.Config().CookieName {
				c = hc.Value
			}
		}
		if h := rec.Header().Get(plain.Config().HeaderName); !sessionkit.ValidID(c) || seen[c] || h != c {
			t.Fatalf("net/http request %d: cookie %q (seen before %v), header %q", i, c, seen[c], h)
		}
		seen[c] = true
	}
}

// Save writes nothing for a session that was only read, without taking
// the Store's lock; every call that can change the session must therefore
// turn that shortcut off, or Save would drop the change. Each case here
// changes a stored session one way and checks that Save wrote it; the
// read-only calls must write nothing.
func TestSaveWritesEveryKindOfChange(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{IdleTimeout: time.Hour})
	writes := func() int64 { return p.updates.Load() + p.touches.Load() }
	for _, c := range []struct {
		name  string
		write bool
		do    func(s *sessionkit.Store)
	}{
		{"reads only", false, func(s *sessionkit.Store) {
			_, _ = s.GetString("a")
			_, _ = s.GetInt("n")
			_ = s.Get("a")
			_ = s.Has("a")
			_ = s.Keys()
			_ = s.GetAll()
			_ = s.ID()
			_ = s.IsNew()
			_ = s.HasFlash("f")
			_ = s.GetFlash("missing")
			var v string
			_ = s.Decode("a", &v)
		}},
		{"Set", true, func(s *sessionkit.Store) { s.Set("b", 1) }},
		{"SetImmutable", true, func(s *sessionkit.Store) { _ = s.SetImmutable("b", 1) }},
		{"Delete", true, func(s *sessionkit.Store) { s.Delete("a") }},
		{"Clear", true, func(s *sessionkit.Store) { s.Clear() }},
		{"SetFlash", true, func(s *sessionkit.Store) { s.SetFlash("g", 1) }},
		{"GetFlash", true, func(s *sessionkit.Store) { _ = s.GetFlash("f") }},
		{"GetFlashes", true, func(s *sessionkit.Store) { _ = s.GetFlashes() }},
		{"ClearFlashes", true, func(s *sessionkit.Store) { s.ClearFlashes() }},
		{"ShiftExpiration", true, func(s *sessionkit.Store) { s.ShiftExpiration() }},
		{"UpdateExpiration", true, func(s *sessionkit.Store) { _ = s.UpdateExpiration(2 * time.Hour) }},
		{"Set from another goroutine", true, func(s *sessionkit.Store) {
			done := make(chan struct{})
			go func() { s.Set("b", 1); close(done) }()
			<-done
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := serve(t, m, request{}, func(s *sessionkit.Store) {
				s.Set("a", "x")
				s.SetFlash("f", "once")
			}).cookieVal
			before := writes()
			res := serve(t, m, request{cookie: id}, c.do)
			if res.saveErr != nil {
				t.Fatal(res.saveErr)
			}
			if wrote := writes() > before; wrote != c.write {
				t.Errorf("Save wrote %v, want %v", wrote, c.write)
			}
		})
	}
	// A misuse is reported by Save even when nothing else changed.
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", "x") }).cookieVal
	res := serve(t, m, request{cookie: id}, func(s *sessionkit.Store) { s.Set("\x00m", 1) })
	if !errors.Is(res.saveErr, sessionkit.ErrReservedKey) {
		t.Errorf("Save after Set of a reserved key = %v, want ErrReservedKey", res.saveErr)
	}
	// A flash read is gone for good once saved.
	id = serve(t, m, request{}, func(s *sessionkit.Store) { s.SetFlash("f", "once") }).cookieVal
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if s.GetFlash("f") != "once" {
			t.Error("flash not found")
		}
	})
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if s.HasFlash("f") {
			t.Error("flash still there after it was read and saved")
		}
	})
}

// Goroutines of one request that each set a key and save, while others
// only read and save, never lose a key: a Save after a goroutine's own Set
// must not take the unchanged session's shortcut, whatever the others do.
func TestConcurrentSetsAndSavesKeepEveryKey(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{IdleTimeout: time.Hour})
	for round := range 50 {
		id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", "x") }).cookieVal
		var req fasthttp.Request
		req.Header.SetCookie(m.Config().CookieName, id)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		s, err := m.Start(&ctx)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = s.GetString("a")
				if g%2 == 0 {
					s.Set(fmt.Sprintf("k%d", g), g)
				}
				if err := s.Save(&ctx); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
			for g := 0; g < 16; g += 2 {
				if n, err := s.GetInt(fmt.Sprintf("k%d", g)); err != nil || n != g {
					t.Errorf("round %d: k%d = %d, %v after every goroutine saved", round, g, n, err)
				}
			}
		})
		ctx.ResetUserValues()
	}
}
