package sessionkit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/valyala/fasthttp"
)

var bg = context.Background()

func TestLazyNoCookieNoStorage(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{})
	for range 1000 {
		res := serve(t, m, request{}, func(s *sessionkit.Store) {
			_ = s.Get("anything")
			_ = s.Has("x")
			_ = s.GetFlash("f")
			// Removing what is not there is no reason to create a session.
			s.Delete("x")
			s.Clear()
			s.ClearFlashes()
		})
		if res.setCookie != "" || res.saveErr != nil {
			t.Fatalf("a request that set nothing got cookie %q, err %v", res.setCookie, res.saveErr)
		}
	}
	if n, _ := m.Count(bg); n != 0 {
		t.Fatalf("1000 cookieless read-only requests stored %d sessions", n)
	}
	if c := p.calls(); c != 0 {
		t.Fatalf("cookieless read-only requests made %d provider calls, want 0", c)
	}
}

func TestSetThenReadBack(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{})
	res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("name", "sessionkit") })
	if res.saveErr != nil {
		t.Fatal(res.saveErr)
	}
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "path=/"} {
		if !strings.Contains(strings.ToLower(res.setCookie), strings.ToLower(want)) {
			t.Fatalf("Set-Cookie %q lacks %s", res.setCookie, want)
		}
	}
	for _, bad := range []string{"secure", "domain", "max-age", "expires"} {
		if strings.Contains(strings.ToLower(res.setCookie), bad) {
			t.Fatalf("default Set-Cookie %q has %s", res.setCookie, bad)
		}
	}
	if !sessionkit.ValidID(res.cookieVal) || len(res.cookieVal) != sessionkit.DefaultIDLength {
		t.Fatalf("cookie value %q is not a default session ID", res.cookieVal)
	}
	if res.vary != "Cookie" || res.cacheCtl != `no-cache="Set-Cookie"` {
		t.Fatalf("Vary %q, Cache-Control %q; want Cookie and no-cache=\"Set-Cookie\"", res.vary, res.cacheCtl)
	}
	writes := p.updates.Load()
	var got string
	res2 := serve(t, m, request{cookie: res.cookieVal}, func(s *sessionkit.Store) {
		got, _ = s.GetString("name")
		if s.IsNew() {
			t.Error("a stored session reads as new")
		}
	})
	if got != "sessionkit" {
		t.Fatalf("read back %q", got)
	}
	if res2.setCookie != "" {
		t.Fatalf("an unchanged session re-sent its cookie: %q", res2.setCookie)
	}
	if p.updates.Load() != writes || p.touches.Load() != 0 {
		t.Fatal("a read-only request wrote to the provider")
	}
}

func TestUnknownIDNeverAdopted(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{IDInHeader: true, IDInQuery: true})
	forged := sessionkit.NewID()
	for _, r := range []request{{cookie: forged}, {header: forged}, {query: forged}} {
		var id string
		res := serve(t, m, r, func(s *sessionkit.Store) {
			if !s.IsNew() {
				t.Error("an unknown ID loaded a session")
			}
			s.Set("k", 1)
			id = s.ID()
		})
		if id == forged || res.cookieVal == forged || res.cookieVal == "" {
			t.Fatalf("request %+v: forged ID adopted (store ID %q, cookie %q)", r, id, res.cookieVal)
		}
		if _, err := m.Count(bg); err != nil {
			t.Fatal(err)
		}
	}
	// The forged ID must not exist afterwards either.
	res := serve(t, m, request{cookie: forged}, nil)
	if res.setCookie != "" {
		t.Fatalf("unexpected cookie %q", res.setCookie)
	}
}

func TestMalformedIDsNeverReachProvider(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{IDInHeader: true, IDInQuery: true})
	bad := []string{
		"a", "short", "../../etc/passwd", strings.Repeat("a", 257), strings.Repeat("a", 5000),
		"aaaaaaaaaaaaaaaaaaaa aaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaa%00aaaaaaa", "ééééééééééééééééééééé",
		"aaaaaaaaaaaaaaaaaaaa;aaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaa.aaaaaaaaaa",
	}
	for _, id := range bad {
		for _, r := range []request{{cookie: id}, {header: id}, {query: id}} {
			serve(t, m, r, nil)
		}
	}
	if c := p.calls(); c != 0 {
		t.Fatalf("malformed IDs caused %d provider calls, want 0", c)
	}
}

// TestHeaderNameAnyCase configures the ID header in lower case: the
// manager keeps it in canonical form, so the header it writes is found
// under any spelling, and a client's header in any case is read.
func TestHeaderNameAnyCase(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{IDInHeader: true, HeaderName: "x-session-id"})
	if got := m.Config().HeaderName; got != "X-Session-Id" {
		t.Fatalf("HeaderName kept as %q, want the canonical X-Session-Id", got)
	}
	res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", "b") })
	if res.headerID == "" || res.headerID != res.cookieVal {
		t.Fatalf("response header X-Session-Id = %q, want the new ID %q", res.headerID, res.cookieVal)
	}
	var got string
	serve(t, m, request{header: res.headerID}, func(s *sessionkit.Store) { got, _ = s.GetString("a") })
	if got != "b" {
		t.Fatalf("the session sent back in the header reads a = %q, want b", got)
	}
}

func TestIDSourcePrecedence(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{IDInHeader: true, IDInQuery: true})
	ids := map[string]string{}
	for _, name := range []string{"header", "cookie", "query"} {
		res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("src", name) })
		ids[name] = res.cookieVal
		if res.headerID != res.cookieVal {
			t.Fatalf("with IDInHeader a new session must send its ID in the header too: %q vs %q", res.headerID, res.cookieVal)
		}
	}
	read := func(r request) string {
		var v string
		serve(t, m, r, func(s *sessionkit.Store) { v, _ = s.GetString("src") })
		return v
	}
	if got := read(request{header: ids["header"], cookie: ids["cookie"], query: ids["query"]}); got != "header" {
		t.Fatalf("header+cookie+query picked %q, want header", got)
	}
	if got := read(request{cookie: ids["cookie"], query: ids["query"]}); got != "cookie" {
		t.Fatalf("cookie+query picked %q, want cookie", got)
	}
	if got := read(request{query: ids["query"]}); got != "query" {
		t.Fatalf("query alone picked %q", got)
	}
	m2, _ := newManager(t, sessionkit.Config{})
	if got := read(request{query: ids["query"]}); got != "query" {
		t.Fatal("setup")
	}
	serve(t, m2, request{query: ids["query"], header: ids["header"]}, func(s *sessionkit.Store) {
		if !s.IsNew() {
			t.Error("header and query IDs were read although disabled")
		}
	})
}

// fasthttp reuses request buffers: the ID a Store holds must be a copy.
func TestIDCopiedOutOfRequestBuffer(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("user", "alice") })
	var req fasthttp.Request
	req.SetRequestURI("/")
	req.Header.SetCookie("sessionid", res.cookieVal)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	s, err := m.Start(&ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	// Overwrite the request's memory as fasthttp does for the next request.
	raw := ctx.Request.Header.Cookie("sessionid")
	for i := range raw {
		raw[i] = 'X'
	}
	if s.ID() != res.cookieVal {
		t.Fatalf("store ID changed with the request buffer: %q, want %q", s.ID(), res.cookieVal)
	}
	if v, _ := s.GetString("user"); v != "alice" {
		t.Fatalf("value %q", v)
	}
	// The next request: fasthttp resets the request, which releases the
	// Store, and the ID handed out before must not change either.
	ctx.Request.Reset()
	ctx.Request.Header.SetCookie("sessionid", strings.Repeat("Y", 32))
	if id != res.cookieVal {
		t.Fatalf("the ID handed out changed with the next request: %q", id)
	}
	if _, err := s.GetString("user"); !errors.Is(err, sessionkit.ErrStoreReleased) {
		t.Fatalf("GetString after the request ended: %v, want ErrStoreReleased", err)
	}
}

func TestStartTwiceSameStore(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	a, _ := m.Start(&ctx)
	b, _ := m.Start(&ctx)
	if a != b {
		t.Fatal("Start twice in one request gave two stores")
	}
	if m.FromContext(&ctx) != a {
		t.Fatal("FromContext does not find the started store")
	}
}

func TestSaveTwiceAndAfterDestroy(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{})
	res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) })
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.Header.SetCookie("sessionid", res.cookieVal)
	ctx.Init(&req, nil, nil)
	s, _ := m.Start(&ctx)
	s.Set("b", 2)
	if err := s.Save(&ctx); err != nil {
		t.Fatal(err)
	}
	u := p.updates.Load()
	if err := s.Save(&ctx); err != nil {
		t.Fatal(err)
	}
	if p.updates.Load() != u {
		t.Fatal("a second Save with no changes wrote again")
	}
	if err := m.Destroy(&ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(&ctx); err != nil {
		t.Fatal(err)
	}
	if p.updates.Load() != u {
		t.Fatal("Save after Destroy wrote")
	}
	if _, err := p.Get(bg, res.cookieVal); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("destroyed session still stored: %v", err)
	}
	if sc := string(ctx.Response.Header.PeekCookie("sessionid")); !strings.Contains(sc, "max-age=0") {
		t.Fatalf("Destroy did not send a deletion cookie: %q", sc)
	}
	// After Destroy, new values go to a brand-new session, never the old ID.
	s.Set("c", 3)
	if err := s.Save(&ctx); err != nil {
		t.Fatal(err)
	}
	if s.ID() == res.cookieVal {
		t.Fatal("Destroy then Set reused the destroyed ID")
	}
	if _, err := p.Get(bg, res.cookieVal); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatal("destroyed session resurrected")
	}
}

func TestDeletionCookieKeepsDomainAndPath(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{Domain: "example.com", Path: "/app"})
	res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) })
	if !strings.Contains(res.setCookie, "domain=example.com") || !strings.Contains(res.setCookie, "path=/app") {
		t.Fatalf("cookie %q", res.setCookie)
	}
	del := serve(t, m, request{cookie: res.cookieVal}, func(s *sessionkit.Store) {
		if err := s.Destroy(bg); err != nil {
			t.Fatal(err)
		}
	})
	for _, want := range []string{"domain=example.com", "path=/app", "max-age=0"} {
		if !strings.Contains(del.setCookie, want) {
			t.Fatalf("deletion cookie %q lacks %s", del.setCookie, want)
		}
	}
	m2, _ := newManager(t, sessionkit.Config{Domain: "example.com", DisableSubdomainPersistence: true})
	if res := serve(t, m2, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }); strings.Contains(res.setCookie, "domain") {
		t.Fatalf("DisableSubdomainPersistence still sent a Domain: %q", res.setCookie)
	}
}

func TestRegenerateKeepsDataKillsOldID(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{})
	res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("cart", "3 items") })
	old := res.cookieVal
	var newID string
	res2 := serve(t, m, request{cookie: old}, func(s *sessionkit.Store) {
		if err := s.Regenerate(bg); err != nil {
			t.Fatal(err)
		}
		s.Set("user", "alice")
		newID = s.ID()
	})
	if newID == old || res2.cookieVal != newID {
		t.Fatalf("Regenerate: old %q new %q cookie %q", old, newID, res2.cookieVal)
	}
	if _, err := p.Get(bg, old); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatal("old ID still live after Regenerate")
	}
	serve(t, m, request{cookie: newID}, func(s *sessionkit.Store) {
		if v, _ := s.GetString("cart"); v != "3 items" {
			t.Errorf("data lost at Regenerate: cart = %q", v)
		}
		if v, _ := s.GetString("user"); v != "alice" {
			t.Errorf("value set after Regenerate lost: %q", v)
		}
	})
	serve(t, m, request{cookie: old}, func(s *sessionkit.Store) {
		if !s.IsNew() {
			t.Error("old cookie still opens the session")
		}
	})
}

func TestConcurrentRequestsDifferentKeysBothPersist(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("base", 0) }).cookieVal
	const n = 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var req fasthttp.Request
			req.Header.SetCookie("sessionid", id)
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, nil, nil)
			s, err := m.Start(&ctx) // all load the same snapshot first
			if err != nil {
				t.Error(err)
				return
			}
			<-start
			s.Set("k"+string(rune('a'+i)), i)
			if err := s.Save(&ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(start)
	wg.Wait()
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if got := len(s.Keys()); got != n+1 {
			t.Fatalf("after %d concurrent requests with different keys, %d keys survive: %v", n, got, s.Keys())
		}
	})
}

func TestDestroyedSessionNotResurrectedByConcurrentSave(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }).cookieVal
	var reqA fasthttp.Request
	reqA.Header.SetCookie("sessionid", id)
	var ctxA fasthttp.RequestCtx
	ctxA.Init(&reqA, nil, nil)
	a, _ := m.Start(&ctxA)
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) { _ = s.Destroy(bg) })
	a.Set("late", true)
	err := a.Save(&ctxA)
	if !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Save of a destroyed session = %v, want ErrNotFound", err)
	}
	if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatal("destroyed session resurrected by a concurrent Save")
	}
	// Same for a regenerated one.
	id = serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }).cookieVal
	var reqB fasthttp.Request
	reqB.Header.SetCookie("sessionid", id)
	var ctxB fasthttp.RequestCtx
	ctxB.Init(&reqB, nil, nil)
	b, _ := m.Start(&ctxB)
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) { _ = s.Regenerate(bg) })
	b.Set("late", true)
	if err := b.Save(&ctxB); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Save under a regenerated-away ID = %v, want ErrNotFound", err)
	}
	if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatal("old ID resurrected after Regenerate")
	}
}

func TestTouchThrottled(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{IdleTimeout: 2 * time.Second})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }).cookieVal
	for range 5 {
		serve(t, m, request{cookie: id}, func(s *sessionkit.Store) { _ = s.Get("a") })
	}
	if n := p.touches.Load(); n != 0 {
		t.Fatalf("%d touches right after creation; want 0 (touch at most once per tenth of the idle timeout)", n)
	}
	time.Sleep(300 * time.Millisecond) // > IdleTimeout/10
	for range 3 {
		serve(t, m, request{cookie: id}, func(s *sessionkit.Store) { _ = s.Get("a") })
	}
	if n := p.touches.Load(); n != 1 {
		t.Fatalf("%d touches after a tenth of the idle timeout; want exactly 1", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{IdleTimeout: 600 * time.Millisecond})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }).cookieVal
	// Staying active keeps it alive past the idle timeout... A request
	// moves the deadline at most once per tenth of the timeout, so the
	// session must be alive while less than 9/10 of it has passed since
	// the last request (less a margin for the clock the manager reads:
	// see Now); a machine so loaded that a 250 ms sleep took
	// longer than that proves nothing either way.
	last := time.Now()
	for range 4 {
		time.Sleep(250 * time.Millisecond)
		idle := time.Since(last)
		serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
			switch {
			case !s.IsNew():
			case idle < 480*time.Millisecond:
				t.Fatalf("an active session expired after %v idle", idle)
			default:
				t.Skipf("a 250 ms sleep took %v: the machine is too loaded to keep a session active", idle)
			}
		})
		last = time.Now()
	}
	// ...and idling kills it, even though the client still has the cookie.
	time.Sleep(800 * time.Millisecond)
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if !s.IsNew() {
			t.Fatal("an idle session outlived IdleTimeout")
		}
	})
}

func TestAbsoluteTimeoutEnforcedWhileActive(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{IdleTimeout: time.Hour, AbsoluteTimeout: time.Second})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }).cookieVal
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline.Add(-150 * time.Millisecond)) {
		serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
			if s.IsNew() {
				t.Fatal("session ended before its absolute timeout")
			}
			s.Set("activity", time.Now().UnixNano()) // writes push the idle deadline
		})
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if !s.IsNew() {
			t.Fatal("a constantly active session outlived AbsoluteTimeout")
		}
	})
}

func TestZeroConfigIsDefaultConfig(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }).cookieVal
	r, err := p.Get(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	left := time.Until(r.Expires)
	if left < sessionkit.DefaultIdleTimeout-time.Minute || left > sessionkit.DefaultIdleTimeout {
		t.Fatalf("Config{} session lives %v; want the default idle timeout %v", left, sessionkit.DefaultIdleTimeout)
	}
	got, want := m.Config(), sessionkit.DefaultConfig()
	if got.CookieName != want.CookieName || got.Path != want.Path || got.SameSite != want.SameSite ||
		got.IdleTimeout != want.IdleTimeout || got.AbsoluteTimeout != want.AbsoluteTimeout ||
		got.GCInterval != want.GCInterval || got.HeaderName != want.HeaderName || got.QueryName != want.QueryName {
		t.Fatalf("Config{} with defaults = %+v, want %+v", got, want)
	}
}

func TestPersistentCookie(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{Expires: 90 * time.Minute})
	res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) })
	if !strings.Contains(res.setCookie, "max-age=5400") {
		t.Fatalf("persistent cookie %q lacks max-age=5400", res.setCookie)
	}
}

// A persistent cookie's Max-Age is Expires rounded up to a second, and at
// most 400 days, the longest browsers keep a cookie (RFC 6265bis): an
// Expires of math.MaxInt64, "never", must not overflow into a Max-Age of
// 0, which deletes the cookie at once.
func TestPersistentCookieMaxAge(t *testing.T) {
	const day = 24 * time.Hour
	for _, c := range []struct {
		expires time.Duration
		want    int
	}{
		{time.Nanosecond, 1},
		{90*time.Minute + 1, 5401},
		{399*day + time.Nanosecond, 399*86400 + 1},
		{400 * day, 400 * 86400},
		{400*day + time.Nanosecond, 400 * 86400},
		{100 * 365 * day, 400 * 86400},
		{time.Duration(math.MaxInt64) - time.Second + 2, 400 * 86400},
		{time.Duration(math.MaxInt64), 400 * 86400},
	} {
		m, _ := newManager(t, sessionkit.Config{Expires: c.expires})
		res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) })
		if want := fmt.Sprintf("max-age=%d;", c.want); res.saveErr != nil || !strings.Contains(res.setCookie, want) {
			t.Errorf("fasthttp, Expires %v: Set-Cookie %q (save: %v), want %s", c.expires, res.setCookie, res.saveErr, want)
		}
		w := httptest.NewRecorder()
		m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sessionkit.FromContext(r.Context()).Set("a", 1)
		})).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge != c.want {
			t.Errorf("net/http, Expires %v: Set-Cookie %q, want Max-Age=%d", c.expires, w.Header().Values("Set-Cookie"), c.want)
		}
	}
}

func TestSecureCookie(t *testing.T) {
	forwarded := func(r sessionkit.RequestInfo) bool { return r.Header("X-Forwarded-Proto") == "https" }
	m, _ := newManager(t, sessionkit.Config{IsSecure: forwarded})
	var req fasthttp.Request
	req.Header.Set("X-Forwarded-Proto", "https")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	s, _ := m.Start(&ctx)
	s.Set("a", 1)
	if err := s.Save(&ctx); err != nil {
		t.Fatal(err)
	}
	if sc := string(ctx.Response.Header.PeekCookie("sessionid")); !strings.Contains(sc, "secure") {
		t.Fatalf("IsSecure=true but cookie %q lacks Secure", sc)
	}
	if res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }); strings.Contains(res.setCookie, "secure") {
		t.Fatalf("plain HTTP request got a Secure cookie %q", res.setCookie)
	}
	// The same through net/http, where RequestInfo reads the
	// http.Request.
	for _, proto := range []string{"https", "http"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Forwarded-Proto", proto)
		m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sessionkit.FromContext(r.Context()).Set("a", 1)
		})).ServeHTTP(w, r)
		if sc := w.Header().Get("Set-Cookie"); sc == "" || strings.Contains(sc, "Secure") != (proto == "https") {
			t.Fatalf("net/http, X-Forwarded-Proto %s: cookie %q", proto, sc)
		}
	}
	// IsSecure is asked only about requests that did not arrive over
	// TLS (those always get Secure), on either server: RequestInfo.TLS
	// then reports false.
	var sawTLS []bool
	mTLS, _ := newManager(t, sessionkit.Config{IsSecure: func(r sessionkit.RequestInfo) bool {
		sawTLS = append(sawTLS, r.TLS())
		return false
	}})
	serve(t, mTLS, request{}, func(s *sessionkit.Store) { s.Set("a", 1) })
	plain := startNetHTTP(t, mTLS, false)
	if _, res := newClient(t, plain.URL, nil).get("/set?a=1"); len(res.Cookies()) != 1 || res.Cookies()[0].Secure {
		t.Fatalf("plain net/http: cookies %+v, want one, not Secure", res.Cookies())
	}
	overTLS := startNetHTTP(t, mTLS, true)
	if _, res := newClient(t, overTLS.URL, overTLS.Client()).get("/set?a=1"); len(res.Cookies()) != 1 || !res.Cookies()[0].Secure {
		t.Fatalf("over TLS: cookies %+v, want one Secure", res.Cookies())
	}
	if len(sawTLS) != 2 || sawTLS[0] || sawTLS[1] {
		t.Fatalf("IsSecure's calls on plain fasthttp, plain net/http and net/http over TLS saw TLS %v, want [false false]", sawTLS)
	}
	m2, _ := newManager(t, sessionkit.Config{Partitioned: true, SameSite: http.SameSiteNoneMode})
	res := serve(t, m2, request{}, func(s *sessionkit.Store) { s.Set("a", 1) })
	for _, want := range []string{"secure", "Partitioned", "SameSite=None"} {
		if !strings.Contains(res.setCookie, want) {
			t.Fatalf("cookie %q lacks %s", res.setCookie, want)
		}
	}
}

func TestEncodeErrorKeepsData(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("keep", "me") }).cookieVal
	u := p.updates.Load()
	res := serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		s.Set("ok", 1)
		s.Set("bad", make(chan int))
	})
	if res.saveErr == nil {
		t.Fatal("Save of an unencodable value succeeded")
	}
	if p.updates.Load() != u {
		t.Fatal("a failed encode still wrote")
	}
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if v, _ := s.GetString("keep"); v != "me" || s.Has("ok") {
			t.Fatalf("stored session changed by a failed Save: %v", s.GetAll())
		}
	})
}

func TestReservedKeyRefused(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("\x00c", 1) })
	if !errors.Is(res.saveErr, sessionkit.ErrReservedKey) {
		t.Fatalf("Set of a reserved key: Save = %v", res.saveErr)
	}
}

func TestFlashReadOnce(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	id := serve(t, m, request{}, func(s *sessionkit.Store) {
		s.Set("user", "bob")
		s.SetFlash("notice", "saved!")
	}).cookieVal
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if !s.HasFlash("notice") {
			t.Fatal("flash missing on the next request")
		}
		if keys := s.Keys(); len(keys) != 1 || keys[0] != "user" {
			t.Fatalf("Keys lists flashes or bookkeeping: %q", keys)
		}
		if v := s.GetFlash("notice"); v != "saved!" {
			t.Fatalf("GetFlash = %v", v)
		}
		if s.GetFlash("notice") != nil {
			t.Fatal("flash readable twice in one request")
		}
	})
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if s.HasFlash("notice") || s.GetFlash("notice") != nil {
			t.Fatal("flash survived being read")
		}
		s.SetFlash("a", 1)
		s.SetFlash("b", 2)
	})
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if f := s.GetFlashes(); len(f) != 2 || f["a"] != 1 || f["b"] != 2 {
			t.Fatalf("GetFlashes = %v", f)
		}
		s.SetFlash("c", 3)
		s.ClearFlashes()
	})
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if f := s.GetFlashes(); len(f) != 0 {
			t.Fatalf("flashes after read/clear: %v", f)
		}
	})
}

func TestImmutable(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	id := serve(t, m, request{}, func(s *sessionkit.Store) {
		if err := s.SetImmutable("roles", []string{"admin"}); err != nil {
			t.Fatal(err)
		}
		got := s.Get("roles").([]any)
		got[0] = "hacked"
		if s.Get("roles").([]any)[0] != "admin" {
			t.Fatal("immutable value changed through Get")
		}
		var typed []string
		if err := s.Decode("roles", &typed); err != nil || typed[0] != "admin" {
			t.Fatalf("Decode = %v, %v", typed, err)
		}
		if err := s.SetImmutable("bad", make(chan int)); err == nil {
			t.Fatal("SetImmutable of an unencodable value succeeded")
		}
	}).cookieVal
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		var typed []string
		if err := s.Decode("roles", &typed); err != nil || len(typed) != 1 || typed[0] != "admin" {
			t.Fatalf("after a round trip: %v, %v", typed, err)
		}
	})
}

func TestClearAndDelete(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	id := serve(t, m, request{}, func(s *sessionkit.Store) {
		s.Set("a", 1)
		s.Set("b", 2)
		s.SetFlash("f", 1)
	}).cookieVal
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) { s.Delete("a") })
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if s.Has("a") || !s.Has("b") {
			t.Fatalf("after Delete: %v", s.GetAll())
		}
		s.Flush()
		s.Set("c", 3)
	})
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if s.IsNew() {
			t.Fatal("Clear lost the session itself (its bookkeeping)")
		}
		if all := s.GetAll(); len(all) != 1 || all["c"] != 3 || s.HasFlash("f") {
			t.Fatalf("after Clear+Set: %v", all)
		}
	})
}

func TestCorruptStoredSessionGivesFreshSession(t *testing.T) {
	var logs bytes.Buffer
	cfg := sessionkit.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	m, p := newManager(t, cfg)
	id := sessionkit.NewID()
	// A record without the manager's bookkeeping, as a foreign writer or a
	// corrupted store would leave it.
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: map[string][]byte{"x": {0xff}}, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	res := serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if !s.IsNew() {
			t.Error("a corrupt session was loaded")
		}
	})
	if res.startError != nil {
		t.Fatal(res.startError)
	}
	if !strings.Contains(logs.String(), "corrupt") {
		t.Fatalf("corruption not logged: %q", logs.String())
	}
	// A corrupt value under one key gives an error for that key only.
	id2 := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("good", "yes") }).cookieVal
	if err := p.Update(bg, id2, sessionkit.Update{Set: map[string][]byte{"bad": {0xee, 1, 2}}}); err != nil {
		t.Fatal(err)
	}
	serve(t, m, request{cookie: id2}, func(s *sessionkit.Store) {
		if _, err := s.GetString("bad"); !errors.Is(err, sessionkit.ErrCorruptValue) {
			t.Errorf("GetString of a corrupt value = %v", err)
		}
		if v, _ := s.GetString("good"); v != "yes" {
			t.Error("a corrupt key spoiled the others")
		}
	})
}

func TestUpdateAndShiftExpiration(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{IdleTimeout: time.Minute})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }).cookieVal
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if err := s.UpdateExpiration(5 * time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateExpiration(-1); err == nil {
			t.Fatal("negative UpdateExpiration accepted")
		}
	})
	r, _ := p.Get(bg, id)
	if left := time.Until(r.Expires); left < 4*time.Hour {
		t.Fatalf("after UpdateExpiration(5h) the session lives %v", left)
	}
	// The per-session timeout sticks on later touches.
	var req fasthttp.Request
	req.Header.SetCookie("sessionid", id)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	if err := m.ShiftExpiration(&ctx); err != nil {
		t.Fatal(err)
	}
	s, _ := m.Start(&ctx)
	if err := s.Save(&ctx); err != nil {
		t.Fatal(err)
	}
	if p.touches.Load() != 1 {
		t.Fatalf("ShiftExpiration did not touch (%d)", p.touches.Load())
	}
	r, _ = p.Get(bg, id)
	if left := time.Until(r.Expires); left < 4*time.Hour {
		t.Fatalf("ShiftExpiration lost the per-session timeout: %v left", left)
	}
}

func TestSetProviderErrors(t *testing.T) {
	m := sessionkit.New(sessionkit.Config{})
	defer m.Close()
	if _, err := m.Start(&fasthttp.RequestCtx{}); !errors.Is(err, sessionkit.ErrNoProvider) {
		t.Fatalf("Start without provider = %v", err)
	}
	if err := m.SetProvider("nope", nil); err == nil || !strings.Contains(err.Error(), "unknown provider") {
		t.Fatalf("unknown provider: %v", err)
	}
	if err := m.SetProvider("memory", &memory.Config{Shards: -1}); err == nil {
		t.Fatal("bad memory config accepted")
	}
	if err := m.SetProvider("memory", wrongConfig{}); !errors.Is(err, sessionkit.ErrInvalidConfig) {
		t.Fatalf("config for another provider: %v", err)
	}
	if err := m.SetProvider("memory", nil); err != nil {
		t.Fatalf("nil config means defaults: %v", err)
	}
	bad := sessionkit.New(sessionkit.Config{IdleTimeout: -1, AbsoluteTimeout: -1})
	if err := bad.SetProvider("memory", nil); !errors.Is(err, sessionkit.ErrInvalidConfig) {
		t.Fatalf("never-expiring config accepted: %v", err)
	}
	for _, cfg := range []sessionkit.Config{
		{CookieName: "bad name"},
		{CookieName: "__Host-s", Domain: "example.com"},
		{CookieName: "__Host-s", Path: "/x"},
		{IDGenerator: func() string { return "short" }},
		{EncodeCookie: func(s string) (string, error) { return s, nil }},
		{Expires: -time.Second},
	} {
		if err := sessionkit.New(cfg).SetProvider("memory", nil); !errors.Is(err, sessionkit.ErrInvalidConfig) {
			t.Errorf("config %+v accepted: %v", cfg, err)
		}
	}
}

// A Session not made by New refuses a provider, where it used to take
// one and start a GC goroutine that panicked (a zero GC interval),
// ending the process.
func TestZeroSession(t *testing.T) {
	var m sessionkit.Session
	if err := m.SetProvider("memory", nil); !errors.Is(err, sessionkit.ErrInvalidConfig) {
		t.Errorf("zero Session: SetProvider = %v, want ErrInvalidConfig", err)
	}
	if err := m.UseProvider(memory.New(memory.Config{})); !errors.Is(err, sessionkit.ErrInvalidConfig) || !strings.Contains(err.Error(), "sessionkit.New") {
		t.Errorf("zero Session: UseProvider = %v, want ErrInvalidConfig naming sessionkit.New", err)
	}
	if _, err := m.Start(&fasthttp.RequestCtx{}); !errors.Is(err, sessionkit.ErrNoProvider) {
		t.Errorf("zero Session: Start = %v, want ErrNoProvider", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("zero Session: Close = %v", err)
	}
}

// A cookie attribute the transports cannot send as configured is refused
// with an error that names it; every one validate lets through, both
// transports send as configured. net/http drops a Domain or the bytes of
// a Path that it refuses, where fasthttp sends such a Domain as it is and
// rewrites the path (it also decodes percent-escapes and removes dot
// segments), so the two would otherwise disagree with the configuration
// and with each other.
func TestCookieAttributesValidated(t *testing.T) {
	for _, c := range []struct {
		cfg   sessionkit.Config
		field string
	}{
		{sessionkit.Config{Path: "/app;x"}, "Path"},
		{sessionkit.Config{Path: "/a\x00b"}, "Path"},
		{sessionkit.Config{Path: "/a\tb"}, "Path"},
		{sessionkit.Config{Path: "/a\x7fb"}, "Path"},
		{sessionkit.Config{Path: "/caf\u00e9"}, "Path"},
		{sessionkit.Config{Path: "app"}, "Path"},
		{sessionkit.Config{Path: "/caf%C3%A9"}, "Path"},
		{sessionkit.Config{Path: "/a%20b"}, "Path"},
		{sessionkit.Config{Path: "/a//b"}, "Path"},
		{sessionkit.Config{Path: "/a/./b"}, "Path"},
		{sessionkit.Config{Path: "/a/../b"}, "Path"},
		{sessionkit.Config{Domain: "exa mple.com"}, "Domain"},
		{sessionkit.Config{Domain: "example.com; Secure"}, "Domain"},
		{sessionkit.Config{Domain: "example.com\r\n"}, "Domain"},
		{sessionkit.Config{Domain: "exa_mple.com"}, "Domain"},
		{sessionkit.Config{Domain: "-example.com"}, "Domain"},
		{sessionkit.Config{Domain: "example..com"}, "Domain"},
		{sessionkit.Config{Domain: "localhost:8080"}, "Domain"},
		{sessionkit.Config{Domain: "https://example.com"}, "Domain"},
		{sessionkit.Config{Domain: "b\u00fccher.example"}, "Domain"},
		{sessionkit.Config{Domain: "::1"}, "Domain"},
		{sessionkit.Config{SameSite: http.SameSite(42)}, "SameSite"},
		{sessionkit.Config{SameSite: -1}, "SameSite"},
	} {
		err := sessionkit.New(c.cfg).SetProvider("memory", nil)
		if !errors.Is(err, sessionkit.ErrInvalidConfig) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Config{Path: %q, Domain: %q, SameSite: %d}: error %v, want one about %s", c.cfg.Path, c.cfg.Domain, c.cfg.SameSite, err, c.field)
		}
	}
	for _, cfg := range []sessionkit.Config{
		{Path: "/a b/~!'()*+,=@:$&"},
		{Path: "/app/"},
		{Domain: "example.com"},
		{Domain: ".Example.COM"},
		{Domain: "localhost"},
		{Domain: "xn--bcher-kva.example"},
		{Domain: "192.0.2.1"},
		{Domain: "localhost:8080", DisableSubdomainPersistence: true},
		{SameSite: http.SameSiteDefaultMode},
		{SameSite: http.SameSiteStrictMode},
		{SameSite: http.SameSiteNoneMode},
	} {
		m := sessionkit.New(cfg)
		if err := m.SetProvider("memory", nil); err != nil {
			t.Errorf("Config{Path: %q, Domain: %q, SameSite: %d}: %v", cfg.Path, cfg.Domain, cfg.SameSite, err)
			continue
		}
		wantPath, wantDomain := m.Config().Path, strings.TrimPrefix(cfg.Domain, ".")
		if cfg.DisableSubdomainPersistence {
			wantDomain = ""
		}
		res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) })
		var fc fasthttp.Cookie
		if err := fc.Parse(res.setCookie); err != nil || string(fc.Path()) != wantPath || strings.TrimPrefix(string(fc.Domain()), ".") != wantDomain {
			t.Errorf("fasthttp, Config{Path: %q, Domain: %q}: Set-Cookie %q", cfg.Path, cfg.Domain, res.setCookie)
		}
		w := httptest.NewRecorder()
		m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sessionkit.FromContext(r.Context()).Set("a", 1)
		})).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].Path != wantPath || cs[0].Domain != wantDomain {
			t.Errorf("net/http, Config{Path: %q, Domain: %q}: Set-Cookie %q", cfg.Path, cfg.Domain, w.Header().Values("Set-Cookie"))
		}
		_ = m.Close()
	}
}

type wrongConfig struct{}

func (wrongConfig) ProviderName() string { return "redis" }

func TestRegisterPanics(t *testing.T) {
	mustPanic := func(name string, fn func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		fn()
	}
	mustPanic("duplicate", func() { sessionkit.Register("memory", dummyDriver{}) })
	mustPanic("nil", func() { sessionkit.Register("x-nil", nil) })
	mustPanic("empty name", func() { sessionkit.Register("", dummyDriver{}) })
}

type dummyDriver struct{}

func (dummyDriver) Open(context.Context, sessionkit.ProviderConfig) (sessionkit.Provider, error) {
	return memory.New(memory.Config{}), nil
}

func TestTwoManagersDoNotShareState(t *testing.T) {
	a, b := sessionkit.New(sessionkit.Config{}), sessionkit.New(sessionkit.Config{})
	defer a.Close()
	defer b.Close()
	if err := a.SetProvider("memory", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.SetProvider("memory", nil); err != nil {
		t.Fatal(err)
	}
	id := serve(t, a, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }).cookieVal
	serve(t, b, request{cookie: id}, func(s *sessionkit.Store) {
		if !s.IsNew() {
			t.Fatal("two managers share one memory provider's state")
		}
	})
}

func TestGCRunsAndCloseStopsIt(t *testing.T) {
	m := sessionkit.New(sessionkit.Config{GCInterval: 20 * time.Millisecond, IdleTimeout: 50 * time.Millisecond})
	p := memory.New(memory.Config{})
	if err := m.UseProvider(p); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) })
	}
	// Expired entries stay in memory until GC removes them; Stored counts
	// them all, expired or not.
	if n := p.Stored(); n != 50 {
		t.Fatalf("Stored = %d before expiry, want 50", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Stored() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := p.Stored(); n != 0 {
		t.Fatalf("background GC left %d expired sessions in memory", n)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(bg, sessionkit.NewID()); !errors.Is(err, sessionkit.ErrClosed) {
		t.Fatalf("provider not closed by Close: %v", err)
	}
}

func TestCount(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	for range 7 {
		serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) })
	}
	if n, err := m.Count(bg); err != nil || n != 7 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }).cookieVal
	if err := m.DestroyByID(bg, id); err != nil {
		t.Fatal(err)
	}
	if n, _ := m.Count(bg); n != 7 {
		t.Fatalf("Count after DestroyByID = %d", n)
	}
}

// corruptProvider answers every Get as a provider does for a garbled row.
type corruptProvider struct{ *countingProvider }

func (corruptProvider) Get(context.Context, string) (sessionkit.Record, error) {
	return sessionkit.Record{}, fmt.Errorf("row: %w", sessionkit.ErrCorruptValue)
}

func TestProviderCorruptValueGivesFreshSessionAndLogs(t *testing.T) {
	var logs bytes.Buffer
	m := sessionkit.New(sessionkit.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	_, cp := newManager(t, sessionkit.Config{})
	if err := m.UseProvider(corruptProvider{cp}); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	res := serve(t, m, request{cookie: sessionkit.NewID()}, func(s *sessionkit.Store) {
		if !s.IsNew() {
			t.Error("a corrupt session was loaded")
		}
		s.Set("fresh", true)
	})
	if res.startError != nil || res.saveErr != nil {
		t.Fatalf("corrupt data must not fail the request: %v / %v", res.startError, res.saveErr)
	}
	if !strings.Contains(logs.String(), "corrupt") {
		t.Fatalf("nothing logged: %q", logs.String())
	}
}

// A read-only request whose session another request destroyed meanwhile
// is not an error: there is nothing to extend and nothing was lost.
func TestTouchOfDestroyedSessionIsNotAnError(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{IdleTimeout: time.Second})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) }).cookieVal
	time.Sleep(150 * time.Millisecond) // past a tenth of the idle timeout: a touch is due
	var req fasthttp.Request
	req.Header.SetCookie("sessionid", id)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	s, err := m.Start(&ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Delete(bg, id)
	if err := s.Save(&ctx); err != nil {
		t.Fatalf("Save = %v, want nil", err)
	}
	if p.touches.Load() != 1 {
		t.Fatalf("touches = %d, want 1 (the test must reach the touch)", p.touches.Load())
	}
	if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatal("the touch resurrected the session")
	}
}

// TestDriverFor checks the Driver that DriverFor builds: configs reach
// open converted by ConfigAs, a config of another type never reaches it,
// and a failed open gives a nil Provider, not a nil pointer inside one.
func TestDriverFor(t *testing.T) {
	var got []memory.Config
	fail := errors.New("no")
	d := sessionkit.DriverFor(func(_ context.Context, c memory.Config) (*memory.Provider, error) {
		got = append(got, c)
		if c.Shards == 3 {
			return nil, fail
		}
		return memory.New(c), nil
	})
	for _, cfg := range []sessionkit.ProviderConfig{nil, (*memory.Config)(nil), &memory.Config{Shards: 8}} {
		p, err := d.Open(bg, cfg)
		if err != nil || p == nil {
			t.Fatalf("Open(%#v) = %v, %v", cfg, p, err)
		}
		_ = p.Close()
	}
	if len(got) != 3 || got[0].Shards != 0 || got[1].Shards != 0 || got[2].Shards != 8 {
		t.Fatalf("open received %+v", got)
	}
	if p, err := d.Open(bg, &memory.Config{Shards: 3}); !errors.Is(err, fail) || p != nil {
		t.Fatalf("failed open = %#v, %v; want a nil Provider and its error", p, err)
	}
	if _, err := d.Open(bg, wrongConfig{}); !errors.Is(err, sessionkit.ErrInvalidConfig) || len(got) != 4 {
		t.Fatalf("wrong config type: %v, open called %d times (want 4: not for it)", err, len(got))
	}
}

func TestConfigAs(t *testing.T) {
	if c, err := sessionkit.ConfigAs[memory.Config](nil); err != nil || c.Shards != 0 {
		t.Fatalf("nil: %+v, %v", c, err)
	}
	if c, err := sessionkit.ConfigAs[memory.Config]((*memory.Config)(nil)); err != nil || c.Shards != 0 {
		t.Fatalf("nil pointer: %+v, %v", c, err)
	}
	in := &memory.Config{Shards: 8}
	c, err := sessionkit.ConfigAs[memory.Config](in)
	if err != nil || c.Shards != 8 {
		t.Fatalf("*Config: %+v, %v", c, err)
	}
	in.Shards = 16
	if c.Shards != 8 {
		t.Fatal("ConfigAs did not copy the config")
	}
	_, err = sessionkit.ConfigAs[memory.Config](wrongConfig{})
	if !errors.Is(err, sessionkit.ErrInvalidConfig) || !strings.Contains(err.Error(), "*memory.Config") {
		t.Fatalf("wrong type: %v", err)
	}
}

// fastCachingHeaders saves a new session on fasthttp, in a response whose
// handler set the headers before (with header names kept as written if
// rawNames), and returns the Vary and Cache-Control headers sent, each
// header as one string, and the session's Set-Cookie.
func fastCachingHeaders(t *testing.T, m *sessionkit.Session, before []header, rawNames bool) (varies, ccs []string, setCookie string) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	if rawNames {
		ctx.Response.Header.DisableNormalizing()
	}
	for _, h := range before {
		ctx.Response.Header.Add(h.k, h.v)
	}
	s, err := m.Start(&ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Set("k", "v")
	if err := s.Save(&ctx); err != nil {
		t.Fatal(err)
	}
	for k, v := range ctx.Response.Header.All() {
		switch {
		case strings.EqualFold(string(k), "Vary"):
			varies = append(varies, string(v))
		case strings.EqualFold(string(k), "Cache-Control"):
			ccs = append(ccs, string(v))
		}
	}
	return varies, ccs, string(ctx.Response.Header.PeekCookie(m.Config().CookieName))
}

// TestCachingHeadersMerge checks what a new session's response says to
// caches when the handler already set Vary or Cache-Control: Cookie joins
// Vary once, and Cache-Control keeps the handler's directives, gaining
// no-cache="Set-Cookie" unless they already keep shared caches out, with
// other headers around them or not. A cache reads repeated headers as one
// list, and so does the test: with header names the server keeps as the
// handler wrote them, the manager's own go beside the handler's.
func TestCachingHeadersMerge(t *testing.T) {
	m := sessionkit.New(sessionkit.Config{})
	if err := m.UseProvider(memory.New(memory.Config{})); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, c := range []struct {
		name             string
		before           []header
		rawNames         bool // the server keeps header names as written
		wantVary, wantCC string
	}{
		{"none", nil, false, "Cookie", `no-cache="Set-Cookie"`},
		{"both", []header{{"Vary", "Accept-Encoding"}, {"Cache-Control", "max-age=60"}}, false, "Accept-Encoding, Cookie", `max-age=60, no-cache="Set-Cookie"`},
		{"cookie already", []header{{"Vary", "Accept, cookie"}, {"Cache-Control", "no-store"}}, false, "Accept, cookie", "no-store"},
		{"private", []header{{"Cache-Control", "private, max-age=5"}}, false, "Cookie", "private, max-age=5"},
		{"among others", []header{{"X-A", "1"}, {"Content-Type", "text/html"}, {"Cache-Control", "no-cache"}, {"X-Vary", "Cookie"}, {"Vary", "Origin"}}, false, "Origin, Cookie", "no-cache"},
		{"lower case", []header{{"vary", "Origin"}, {"cache-control", "max-age=1"}}, true, "Origin, Cookie", `max-age=1, no-cache="Set-Cookie"`},
		// A repeated header is one list: the manager reads all of it
		// and, to amend it, replaces it with one header holding the whole
		// list, on either server (fasthttp's Set replaces the first of
		// repeated headers up to v1.74 and all of them later). The
		// handler's later values are kept, never dropped.
		{"repeated", []header{{"Vary", "Origin"}, {"Vary", "Accept"}, {"Cache-Control", "max-age=1"}, {"Cache-Control", "private"}}, false, "Origin, Accept, Cookie", "max-age=1, private"},
		{"repeated, amended", []header{{"Cache-Control", "max-age=1"}, {"Vary", "Origin"}, {"Cache-Control", "public"}, {"Vary", "cookie"}}, false, "Origin, cookie", `max-age=1, public, no-cache="Set-Cookie"`},
	} {
		varies, ccs, _ := fastCachingHeaders(t, m, c.before, c.rawNames)
		vary, cc := strings.Join(varies, ", "), strings.Join(ccs, ", ")
		if !c.rawNames && len(varies) > max(1, count(c.before, "Vary")) {
			t.Errorf("fasthttp, %s: %d Vary headers %q: Cookie was not merged into the handler's", c.name, len(varies), varies)
		}
		if !keepsCachesOut(vary, cc) || !sameList(vary, c.wantVary) || !sameList(cc, c.wantCC) {
			t.Errorf("fasthttp, %s: got Vary %q, Cache-Control %q, want %q and %q", c.name, vary, cc, c.wantVary, c.wantCC)
		}
		if c.rawNames {
			continue
		}
		w := httptest.NewRecorder()
		for _, h := range c.before {
			w.Header().Add(h.k, h.v)
		}
		r := httptest.NewRequest("GET", "/", nil)
		m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, err := m.StartHTTP(w, r)
			if err != nil {
				t.Fatal(err)
			}
			s.Set("k", "v")
		})).ServeHTTP(w, r)
		vary, cc = strings.Join(w.Header().Values("Vary"), ", "), strings.Join(w.Header().Values("Cache-Control"), ", ")
		if !keepsCachesOut(vary, cc) || !sameList(vary, c.wantVary) || !sameList(cc, c.wantCC) {
			t.Errorf("net/http, %s: got Vary %q, Cache-Control %q, want %q and %q", c.name, vary, cc, c.wantVary, c.wantCC)
		}
	}
}

// header is a response header a handler set.
type header struct{ k, v string }

// count returns how many of hs are named name.
func count(hs []header, name string) int {
	n := 0
	for _, h := range hs {
		if h.k == name {
			n++
		}
	}
	return n
}

// sameList reports whether two comma-separated header lists hold the same
// items, each as often, in any order: a server may reorder headers of
// different names, which reorders a list that spans repeated ones, and a
// cache reads Vary's names and Cache-Control's directives in any order.
func sameList(a, b string) bool {
	items := func(list string) []string {
		var out []string
		for part := range strings.SplitSeq(list, ",") {
			out = append(out, strings.TrimSpace(part))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(items(a), items(b))
}

// keepsCachesOut reports whether a response with these Vary and
// Cache-Control lists keeps its Set-Cookie out of shared caches, each
// directive or name said once.
func keepsCachesOut(vary, cc string) bool {
	count := func(list, item string) int {
		n := 0
		for part := range strings.SplitSeq(list, ",") {
			if strings.EqualFold(strings.TrimSpace(part), item) {
				n++
			}
		}
		return n
	}
	return count(vary, "Cookie") == 1 &&
		(count(cc, `no-cache="Set-Cookie"`) == 1 || count(cc, "private") > 0 || count(cc, "no-store") > 0 || count(cc, "no-cache") > 0)
}

// The manager's shortcuts act on the request's session, the one Start
// (or StartHTTP) returns: Regenerate moves it to a new ID, Destroy ends
// it, UpdateExpiration sets its idle timeout.
func TestManagerShortcuts(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{IdleTimeout: time.Minute})
	newSession := func() string {
		return serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("k", "v") }).cookieVal
	}
	fastCtx := func(id string) *fasthttp.RequestCtx {
		var req fasthttp.Request
		req.Header.SetCookie("sessionid", id)
		ctx := new(fasthttp.RequestCtx)
		ctx.Init(&req, nil, nil)
		return ctx
	}
	gone := func(id string) bool {
		_, err := p.Get(bg, id)
		return errors.Is(err, sessionkit.ErrNotFound)
	}

	// fasthttp: Regenerate, then UpdateExpiration, then Destroy.
	id := newSession()
	ctx := fastCtx(id)
	s, err := m.Regenerate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if started, _ := m.Start(ctx); started != s || s.ID() == id || !gone(id) {
		t.Fatalf("Regenerate: same Store %v, new ID %q (old %q), old ID gone %v", started == s, s.ID(), id, gone(id))
	}
	if v, _ := s.GetString("k"); v != "v" {
		t.Fatalf("Regenerate lost the data: %q", v)
	}
	if err := m.UpdateExpiration(ctx, 5*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := m.UpdateExpiration(ctx, -1); err == nil {
		t.Fatal("negative UpdateExpiration accepted")
	}
	if err := s.Save(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := p.Get(bg, s.ID()); err != nil || time.Until(r.Expires) < 4*time.Hour {
		t.Fatalf("after UpdateExpiration(5h): %v, %v left", err, time.Until(r.Expires))
	}
	regenerated := s.ID()
	if err := m.Destroy(fastCtx(regenerated)); err != nil || !gone(regenerated) {
		t.Fatalf("Destroy: %v, gone %v", err, gone(regenerated))
	}

	// net/http: RegenerateHTTP and DestroyHTTP.
	id = newSession()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: "sessionid", Value: id})
	w := httptest.NewRecorder()
	hs, err := m.RegenerateHTTP(w, r)
	if err != nil || hs.ID() == id || !gone(id) {
		t.Fatalf("RegenerateHTTP: %v, new ID %q (old %q), old ID gone %v", err, hs.ID(), id, gone(id))
	}
	if err := hs.Save(r.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.Header().Get("Set-Cookie"), "sessionid="+hs.ID()) {
		t.Fatalf("RegenerateHTTP sent %q, want the new ID's cookie", w.Header().Get("Set-Cookie"))
	}
	regenerated = hs.ID()
	hs.Close()
	if gone(regenerated) {
		t.Fatal("RegenerateHTTP's session was not stored")
	}
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: "sessionid", Value: regenerated})
	w = httptest.NewRecorder()
	if err := m.DestroyHTTP(w, r); err != nil || !gone(regenerated) {
		t.Fatalf("DestroyHTTP: %v, gone %v", err, gone(regenerated))
	}
	if c := w.Header().Get("Set-Cookie"); !strings.Contains(c, "Max-Age=0") && !strings.Contains(c, "max-age=0") {
		t.Fatalf("DestroyHTTP did not delete the cookie: %q", c)
	}
}
