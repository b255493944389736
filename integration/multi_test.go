package integration_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/cookie"
	"github.com/sessionkit/sessionkit/providertest"
	"github.com/sessionkit/sessionkit/redis"
	"github.com/valyala/fasthttp"
)

// Two managers in one handler: preferences in a sealed cookie, the login
// in Redis, each with its own cookie name, each saved on its own. A real
// fasthttp server on 127.0.0.1 and a cookie-keeping client drive them.
func TestCookieAndRedisManagersInOneHandler(t *testing.T) {
	addr := providertest.Env("SESSIONKIT_REDIS_ADDR", "127.0.0.1:6379")
	prefix := providertest.UniquePrefix(t) + ":"
	auth := sessionkit.New(sessionkit.Config{CookieName: "auth"})
	if err := auth.SetProvider("redis", &redis.Config{Addrs: []string{addr}, Prefix: prefix}); err != nil {
		providertest.ServerUnavailable(t, "redis at "+addr, err)
	}
	defer auth.Close()
	prefs := sessionkit.New(sessionkit.Config{CookieName: "prefs"})
	if err := prefs.SetProvider("cookie", &cookie.Config{Keys: [][]byte{bytes.Repeat([]byte{9}, 32)}}); err != nil {
		t.Fatal(err)
	}
	defer prefs.Close()

	h := auth.Handler(prefs.Handler(func(ctx *fasthttp.RequestCtx) {
		a, p := auth.FromContext(ctx), prefs.FromContext(ctx)
		switch string(ctx.Path()) {
		case "/login":
			if err := a.Regenerate(ctx); err != nil {
				ctx.Error(err.Error(), 500)
				return
			}
			a.Set("user", "alice")
		case "/theme":
			p.Set("theme", string(ctx.QueryArgs().Peek("v")))
		case "/logout":
			if err := a.Destroy(ctx); err != nil {
				ctx.Error(err.Error(), 500)
				return
			}
		}
		user, _ := a.GetString("user")
		theme, _ := p.GetString("theme")
		ctx.SetBodyString(user + "/" + theme)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown() }()

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(path string) (string, []*http.Cookie) {
		t.Helper()
		res, err := hc.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b), res.Cookies()
	}
	names := func(cs []*http.Cookie) string {
		var n []string
		for _, c := range cs {
			n = append(n, c.Name)
		}
		return strings.Join(n, ",")
	}

	if body, cs := get("/theme?v=dark"); body != "/dark" || names(cs) != "prefs" {
		t.Fatalf("theme: %q, cookies %s (only prefs should change)", body, names(cs))
	}
	if body, cs := get("/login"); body != "alice/dark" || names(cs) != "auth" {
		t.Fatalf("login: %q, cookies %s (only auth should change)", body, names(cs))
	}
	if body, cs := get("/"); body != "alice/dark" || len(cs) != 0 {
		t.Fatalf("read: %q, cookies %s", body, names(cs))
	}
	if n, err := auth.Count(context.Background()); err != nil || n != 1 {
		t.Fatalf("redis holds %d sessions (%v), want 1", n, err)
	}
	if body, _ := get("/logout"); body != "/dark" {
		t.Fatalf("logout: %q; the cookie session must survive the redis one", body)
	}
	if n, _ := auth.Count(context.Background()); n != 0 {
		t.Fatalf("redis still holds %d sessions after logout", n)
	}
}
