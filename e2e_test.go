package sessionkit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/valyala/fasthttp"
)

// app is the handler logic both servers share: op names an action, arg
// its argument.
func app(s *sessionkit.Store, op, arg string) string {
	switch op {
	case "/set":
		s.Set("v", arg)
	case "/get":
		v, _ := s.GetString("v")
		return v
	case "/incr":
		n, _ := s.GetInt("n")
		s.Set("n", n+1)
		return fmt.Sprint(n + 1)
	case "/flash":
		s.SetFlash("msg", arg)
	case "/readflash":
		v, _ := s.GetFlash("msg").(string)
		return v
	case "/login":
		if err := s.Regenerate(context.Background()); err != nil {
			return "error: " + err.Error()
		}
		s.Set("user", arg)
	case "/whoami":
		v, _ := s.GetString("user")
		return v
	case "/destroy":
		if err := s.Destroy(context.Background()); err != nil {
			return "error: " + err.Error()
		}
	case "/id":
		return s.ID()
	}
	return "ok"
}

// startFasthttp serves m.Handler(app) on 127.0.0.1 with a real fasthttp
// server and returns its base URL.
func startFasthttp(t *testing.T, m *sessionkit.Session) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: m.Handler(func(ctx *fasthttp.RequestCtx) {
		s := sessionkit.FromContext(ctx)
		ctx.SetBodyString(app(s, string(ctx.Path()), string(ctx.QueryArgs().Peek("a"))))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// startNetHTTP serves m.Middleware(app) with net/http on 127.0.0.1.
func startNetHTTP(t *testing.T, m *sessionkit.Session, tls bool) *httptest.Server {
	t.Helper()
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessionkit.FromContext(r.Context())
		_, _ = io.WriteString(w, app(s, r.URL.Path, r.URL.Query().Get("a")))
	}))
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newClient(t *testing.T, base string, hc *http.Client) *client {
	if hc == nil {
		hc = &http.Client{}
	}
	jar, _ := cookiejar.New(nil)
	hc.Jar = jar
	hc.Timeout = 10 * time.Second
	return &client{t: t, base: base, hc: hc}
}

// get requests path with the jar's cookies and returns the body and the
// response.
func (c *client) get(path string, mod ...func(*http.Request)) (string, *http.Response) {
	c.t.Helper()
	req, err := http.NewRequest("GET", c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, f := range mod {
		f(req)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b), res
}

func (c *client) cookie() string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == "sessionid" {
			return ck.Value
		}
	}
	return ""
}

func withCookie(v string) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "sessionid", Value: v}) }
}

// TestEndToEnd drives a real fasthttp server and a real net/http server
// with a cookie-keeping client through a session's whole life.
func TestEndToEnd(t *testing.T) {
	servers := map[string]func(*testing.T, *sessionkit.Session) string{
		"fasthttp": startFasthttp,
		"nethttp":  func(t *testing.T, m *sessionkit.Session) string { return startNetHTTP(t, m, false).URL },
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			m, _ := newManager(t, sessionkit.Config{})
			c := newClient(t, start(t, m), nil)

			if body, res := c.get("/get"); body != "" || len(res.Cookies()) != 0 {
				t.Fatalf("first visit: %q, cookies %v", body, res.Cookies())
			}
			if _, res := c.get("/set?a=hello"); len(res.Cookies()) != 1 || res.Header.Get("Vary") != "Cookie" {
				t.Fatalf("set: cookies %v, Vary %q", res.Cookies(), res.Header.Get("Vary"))
			}
			if body, res := c.get("/get"); body != "hello" || len(res.Cookies()) != 0 {
				t.Fatalf("read back %q (cookies re-sent: %v)", body, res.Cookies())
			}
			for i := 1; i <= 3; i++ {
				if body, _ := c.get("/incr"); body != fmt.Sprint(i) {
					t.Fatalf("incr %d gave %q", i, body)
				}
			}

			c.get("/flash?a=welcome")
			if body, _ := c.get("/readflash"); body != "welcome" {
				t.Fatalf("flash read %q", body)
			}
			if body, _ := c.get("/readflash"); body != "" {
				t.Fatalf("flash read twice: %q", body)
			}

			before := c.cookie()
			if body, res := c.get("/login?a=alice"); body != "ok" || len(res.Cookies()) != 1 {
				t.Fatalf("login: %q %v", body, res.Cookies())
			}
			after := c.cookie()
			if after == before || after == "" {
				t.Fatal("login did not issue a new session ID")
			}
			if body, _ := c.get("/whoami"); body != "alice" {
				t.Fatalf("whoami after login = %q", body)
			}
			if body, _ := c.get("/get"); body != "hello" {
				t.Fatalf("data lost at login: %q", body)
			}
			// The pre-login ID is dead.
			bare := newClient(t, c.base, nil)
			if body, _ := bare.get("/whoami", withCookie(before)); body != "" {
				t.Fatalf("old cookie still opens the session: %q", body)
			}

			// A forged ID is refused, and what the client then stores goes
			// under a fresh ID, never the forged one.
			forged := sessionkit.NewID()
			atk := newClient(t, c.base, nil)
			if body, _ := atk.get("/whoami", withCookie(forged)); body != "" {
				t.Fatalf("forged ID opened a session: %q", body)
			}
			_, res := atk.get("/set?a=x", withCookie(forged))
			if len(res.Cookies()) != 1 || res.Cookies()[0].Value == forged {
				t.Fatalf("forged ID adopted: %v", res.Cookies())
			}

			_, res = c.get("/destroy")
			if len(res.Cookies()) != 1 || res.Cookies()[0].MaxAge >= 0 {
				t.Fatalf("destroy did not delete the cookie: %v", res.Cookies())
			}
			if c.cookie() != "" {
				t.Fatal("cookie jar still holds the session cookie")
			}
			if body, _ := bare.get("/whoami", withCookie(after)); body != "" {
				t.Fatalf("destroyed session still readable: %q", body)
			}
		})
	}
}

func TestEndToEndHeaderAndQueryIDs(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{IDInHeader: true, IDInQuery: true})
	for name, base := range map[string]string{"fasthttp": startFasthttp(t, m), "nethttp": startNetHTTP(t, m, false).URL} {
		t.Run(name, func(t *testing.T) {
			c := &client{t: t, base: base, hc: &http.Client{Timeout: 10 * time.Second}} // no jar
			_, res := c.get("/set?a=api")
			id := res.Header.Get("X-Session-Id")
			if !sessionkit.ValidID(id) {
				t.Fatalf("no session ID in the response header: %q", id)
			}
			if body, _ := c.get("/get", func(r *http.Request) { r.Header.Set("X-Session-Id", id) }); body != "api" {
				t.Fatalf("header ID read %q", body)
			}
			if body, _ := c.get("/get?sessionid=" + id); body != "api" {
				t.Fatalf("query ID read %q", body)
			}
			forged := sessionkit.NewID()
			if body, _ := c.get("/get", func(r *http.Request) { r.Header.Set("X-Session-Id", forged) }); body != "" {
				t.Fatalf("forged header ID read %q", body)
			}
		})
	}
}

func TestNetHTTPSecureOnTLS(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	srv := startNetHTTP(t, m, true)
	c := newClient(t, srv.URL, srv.Client())
	_, res := c.get("/set?a=1")
	if len(res.Cookies()) != 1 || !res.Cookies()[0].Secure || !res.Cookies()[0].HttpOnly || res.Cookies()[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie over TLS: %+v", res.Cookies())
	}
}

// failingProvider fails every Update while fail is set.
type failingProvider struct {
	*countingProvider
	fail atomic.Bool
}

func (f *failingProvider) Update(ctx context.Context, id string, u sessionkit.Update) error {
	if f.fail.Load() {
		return errors.New("storage down")
	}
	return f.countingProvider.Update(ctx, id, u)
}

// failingManager returns a manager, logging nowhere, whose provider fails
// every save.
func failingManager(t *testing.T) *sessionkit.Session {
	t.Helper()
	m := sessionkit.New(sessionkit.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_, cp := newManager(t, sessionkit.Config{})
	fp := &failingProvider{countingProvider: cp}
	if err := m.UseProvider(fp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	fp.fail.Store(true)
	return m
}

func TestSaveFailureIsAnError(t *testing.T) {
	m := failingManager(t)
	for name, base := range map[string]string{"fasthttp": startFasthttp(t, m), "nethttp": startNetHTTP(t, m, false).URL} {
		c := newClient(t, base, nil)
		body, res := c.get("/set?a=1")
		if res.StatusCode != http.StatusInternalServerError || strings.Contains(body, "ok") {
			t.Fatalf("%s: a failed save answered %d %q; want a 500", name, res.StatusCode, body)
		}
		if len(res.Cookies()) != 0 {
			t.Fatalf("%s: a failed save still sent a cookie", name)
		}
	}
}

// On net/http a change made after the body started cannot send a new
// session's cookie: it must be reported, not silently dropped.
func TestNetHTTPLateChange(t *testing.T) {
	var logs bytes.Buffer
	m, _ := newManager(t, sessionkit.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessionkit.FromContext(r.Context())
		_, _ = io.WriteString(w, "body first")
		s.Set("late", r.URL.Query().Get("a"))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := newClient(t, srv.URL, nil)
	c.get("/?a=1")
	if !strings.Contains(logs.String(), "after the response header") {
		t.Fatalf("late creation not logged: %q", logs.String())
	}
	if n, _ := m.Count(context.Background()); n != 0 {
		t.Fatalf("an unreachable session was stored (%d)", n)
	}
	// For an existing session, the late change is stored.
	m2, _ := newManager(t, sessionkit.Config{})
	set := m2.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessionkit.FromContext(r.Context())
		if r.URL.Path == "/init" {
			s.Set("late", "0")
			return
		}
		if r.URL.Path == "/read" {
			v, _ := s.GetString("late")
			_, _ = io.WriteString(w, v)
			return
		}
		_, _ = io.WriteString(w, "body first")
		s.Set("late", "1")
	}))
	srv2 := httptest.NewServer(set)
	defer srv2.Close()
	c2 := newClient(t, srv2.URL, nil)
	c2.get("/init")
	c2.get("/change")
	if body, _ := c2.get("/read"); body != "1" {
		t.Fatalf("late change to an existing session lost: %q", body)
	}
}

// Two managers with different cookie names, each saved on its own, in
// one handler.
func TestTwoManagersOneRequest(t *testing.T) {
	a, _ := newManager(t, sessionkit.Config{CookieName: "prefs"})
	b, _ := newManager(t, sessionkit.Config{CookieName: "auth"})
	h := a.Handler(b.Handler(func(ctx *fasthttp.RequestCtx) {
		sa, sb := a.FromContext(ctx), b.FromContext(ctx)
		if string(ctx.Path()) == "/set" {
			sa.Set("theme", "dark")
			sb.Set("user", "alice")
			return
		}
		ta, _ := sa.GetString("theme")
		ub, _ := sb.GetString("user")
		ctx.SetBodyString(ta + "/" + ub)
	}))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &fasthttp.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown() }()
	c := newClient(t, "http://"+ln.Addr().String(), nil)
	if _, res := c.get("/set"); len(res.Cookies()) != 2 {
		t.Fatalf("want two cookies, got %v", res.Cookies())
	}
	if body, _ := c.get("/read"); body != "dark/alice" {
		t.Fatalf("read %q", body)
	}
}
