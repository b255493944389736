package providertest

import (
	"fmt"
	"testing"

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
func BenchManager(b *testing.B, p sessionkit.Provider) {
	m := sessionkit.New(sessionkit.Config{})
	if err := m.UseProvider(p); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	ids := make([]string, 1000)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	for i := range ids {
		if err := request(m, &ctx, "", func(s *sessionkit.Store) {
			s.Set("name", "sessionkit")
			s.Set("n", 0)
			ids[i] = s.ID()
		}); err != nil {
			b.Fatal(err)
		}
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
