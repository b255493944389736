package sessionkit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/valyala/fasthttp"
)

// countingProvider wraps a provider and counts calls, to prove what reaches
// the storage and what does not.
type countingProvider struct {
	*memory.Provider
	gets, updates, touches, deletes, renames atomic.Int64

	mu    sync.Mutex
	bases []sessionkit.Record // Update.Base of every Update, in order
}

func (c *countingProvider) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	c.gets.Add(1)
	return c.Provider.Get(ctx, id)
}

func (c *countingProvider) Update(ctx context.Context, id string, u sessionkit.Update) error {
	c.updates.Add(1)
	c.mu.Lock()
	c.bases = append(c.bases, u.Base)
	c.mu.Unlock()
	return c.Provider.Update(ctx, id, u)
}

func (c *countingProvider) Touch(ctx context.Context, id string, exp time.Time) error {
	c.touches.Add(1)
	return c.Provider.Touch(ctx, id, exp)
}

func (c *countingProvider) Delete(ctx context.Context, id string) error {
	c.deletes.Add(1)
	return c.Provider.Delete(ctx, id)
}

func (c *countingProvider) Rename(ctx context.Context, o, n string, exp time.Time) error {
	c.renames.Add(1)
	return c.Provider.Rename(ctx, o, n, exp)
}

func (c *countingProvider) calls() int64 {
	return c.gets.Load() + c.updates.Load() + c.touches.Load() + c.deletes.Load() + c.renames.Load()
}

// newManager returns a manager on a fresh counting memory provider.
func newManager(t testing.TB, cfg sessionkit.Config) (*sessionkit.Session, *countingProvider) {
	t.Helper()
	m := sessionkit.New(cfg)
	p := &countingProvider{Provider: memory.New(memory.Config{})}
	if err := m.UseProvider(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, p
}

// request describes one fasthttp request to drive through a manager.
type request struct {
	cookie string // session cookie value sent, if any
	header string // X-Session-Id sent, if any
	query  string // sessionid query parameter sent, if any
}

// result is what the client would see.
type result struct {
	setCookie  string // raw Set-Cookie header for the session cookie, "" if none
	cookieVal  string // its value
	headerID   string // X-Session-Id response header
	vary       string
	cacheCtl   string
	saveErr    error
	startError error
}

// serve runs h inside a fasthttp request built from r, the way a handler
// would: Start, h, Save.
func serve(t testing.TB, m *sessionkit.Session, r request, h func(s *sessionkit.Store)) result {
	t.Helper()
	var req fasthttp.Request
	uri := "http://example.com/"
	if r.query != "" {
		uri += "?sessionid=" + r.query
	}
	req.SetRequestURI(uri)
	if r.cookie != "" {
		req.Header.SetCookie(m.Config().CookieName, r.cookie)
	}
	if r.header != "" {
		req.Header.Set("X-Session-Id", r.header)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	var res result
	s, err := m.Start(&ctx)
	if err != nil {
		res.startError = err
		return res
	}
	if h != nil {
		h(s)
	}
	res.saveErr = s.Save(&ctx)
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(m.Config().CookieName)
	if ctx.Response.Header.Cookie(c) {
		// PeekCookie gives the header as sent; Cookie re-parses it and
		// loses a Max-Age of 0.
		res.setCookie = string(ctx.Response.Header.PeekCookie(m.Config().CookieName))
		res.cookieVal = string(c.Value())
	}
	res.headerID = string(ctx.Response.Header.Peek("X-Session-Id"))
	res.vary = string(ctx.Response.Header.Peek("Vary"))
	res.cacheCtl = string(ctx.Response.Header.Peek("Cache-Control"))
	return res
}
