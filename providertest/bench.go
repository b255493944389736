package providertest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/valyala/fasthttp"
)

// BenchManager measures whole requests through a sessionkit manager on p,
// the workloads the project compares libraries with:
//
//	W1: valid cookie, read one value, save unchanged (Start+Get+Save)
//	W2: valid cookie, increment an int, save (Start+Set+Save)
//	W3: no cookie, set one value, save: a new session
//
// each serial and parallel, over 1000 preloaded sessions. The manager is
// closed, and p with it, when the benchmark ends.
//
// Requests send the cookie the preloading response set, so a
// sessionkit.ClientSide provider works too: its W1 opens the sealed
// session, and its W2 opens it and seals a new one (each request starts
// from the preloaded cookie, which stays valid, rather than the one the
// previous request returned).
func BenchManager(b *testing.B, p sessionkit.Provider) {
	m := newManager(b, p)
	ids := make([]string, 1000)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	for i := range ids {
		if err := request(m, &ctx, "", func(s *sessionkit.Store) {
			s.Set("name", "sessionkit")
			s.Set("n", 0)
		}); err != nil {
			b.Fatal(err)
		}
		// The cookie as sent: the ID, or for a sessionkit.ClientSide
		// provider the sealed session itself.
		var c fasthttp.Cookie
		c.SetKey(m.Config().CookieName)
		if !ctx.Response.Header.Cookie(&c) || len(c.Value()) == 0 {
			b.Fatal("preloading: the response sets no session cookie")
		}
		ids[i] = string(c.Value())
	}
	work := []struct {
		name   string
		cookie bool
		fn     func(*sessionkit.Store)
	}{
		{"W1", true, func(s *sessionkit.Store) { _, _ = s.GetString("name") }},
		{"W2", true, func(s *sessionkit.Store) { n, _ := s.GetInt("n"); s.Set("n", n+1) }},
		{"W3", false, func(s *sessionkit.Store) { s.Set("name", "sessionkit") }},
	}
	for _, w := range work {
		cookie := func(i int) string {
			if !w.cookie {
				return ""
			}
			return ids[i%len(ids)]
		}
		b.Run(w.name+"/serial", func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, nil, nil)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := request(m, &ctx, cookie(i), w.fn); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(w.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				ctx.Init(&fasthttp.Request{}, nil, nil)
				for i := 0; pb.Next(); i++ {
					if err := request(m, &ctx, cookie(i*7919), w.fn); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// request runs one in-process request through m, reusing ctx the way
// fasthttp does.
func request(m *sessionkit.Session, ctx *fasthttp.RequestCtx, cookie string, work func(*sessionkit.Store)) error {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.ResetUserValues()
	if cookie != "" {
		ctx.Request.Header.SetCookie(m.Config().CookieName, cookie)
	}
	s, err := m.Start(ctx)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	work(s)
	if err := s.Save(ctx); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// benchValues is a typical small session: bookkeeping plus a few values.
func benchValues() map[string][]byte {
	return map[string][]byte{
		"\x00c":   {0x80, 0xa0, 0xb4, 0xc8, 0xd9, 0x93, 0xe4, 0xc6, 0x17},
		"user_id": []byte("1234567"),
		"name":    []byte("Ada Lovelace"),
		"role":    []byte("admin"),
		"csrf":    []byte("hB7rV0q3yT2uW5xZ8aD1fG4jK6mN9pQs"),
	}
}

// BenchProvider measures p's own operations on a typical small session,
// each serially and from GOMAXPROCS goroutines:
//
//	Get:    read one stored session
//	Update: set one key of a stored session (in parallel, each goroutine
//	        updates a session of its own, as requests of different users do)
//	Create: store a new session
func BenchProvider(b *testing.B, p sessionkit.Provider) {
	newSession := func(b *testing.B) string {
		id := ID()
		if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: benchValues(), Expires: time.Now().Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
		return id
	}
	u := sessionkit.Update{Set: Values("last_seen", "1700000000")}
	ops := []struct {
		name string
		// setup runs once per goroutine and returns the operation.
		setup func(b *testing.B) func() error
	}{
		{"Get", func(b *testing.B) func() error {
			id := newSession(b)
			return func() error { _, err := p.Get(bg, id); return err }
		}},
		{"Update", func(b *testing.B) func() error {
			id := newSession(b)
			return func() error { return p.Update(bg, id, u) }
		}},
		{"Create", func(*testing.B) func() error {
			exp := time.Now().Add(time.Hour)
			return func() error {
				return p.Update(bg, ID(), sessionkit.Update{Create: true, Set: benchValues(), Expires: exp})
			}
		}},
	}
	for _, op := range ops {
		b.Run(op.name+"/serial", func(b *testing.B) {
			do := op.setup(b)
			b.ReportAllocs()
			for b.Loop() {
				if err := do(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(op.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				do := op.setup(b)
				for pb.Next() {
					if err := do(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
