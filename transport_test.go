package sessionkit

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// setCookieHeaders returns the Set-Cookie headers of ctx's response, as
// they go on the wire.
func setCookieHeaders(ctx *fasthttp.RequestCtx) []string {
	var out []string
	for _, line := range strings.Split(ctx.Response.Header.String(), "\r\n") {
		if v, ok := strings.CutPrefix(line, "Set-Cookie: "); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestFastCookieMatchesFasthttp checks the session cookie written from the
// manager's ready-made attributes against fasthttp's own formatting of the
// same cookie, for every attribute, and that writing it again in one
// response replaces it.
func TestFastCookieMatchesFasthttp(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{CookieName: "sid", Domain: "example.com", Path: "/app", Expires: 90 * time.Minute},
		{SameSite: http.SameSiteStrictMode, HTTPOnlyDisabled: true},
		{SameSite: http.SameSiteNoneMode},
		{Partitioned: true, Expires: time.Second / 2},
		{CookieName: "__Host-sid", Domain: "example.com"},
		{Domain: "example.com", DisableSubdomainPersistence: true},
	} {
		m := New(cfg)
		for _, secure := range []bool{false, true} {
			for _, deleting := range []bool{false, true} {
				value := "0123456789abcdefghijABCDEFGHIJ-_"
				if deleting {
					value = ""
				}
				var fast, slow fasthttp.RequestCtx
				ft := fastTransport{&fast}
				c := m.cookieFor(secure, value, deleting)
				c.fastAttrs = m.fastCookieAttrs[b2i(secure)][b2i(deleting)]
				if c.fastAttrs == nil {
					t.Fatalf("%+v: no ready-made attributes", cfg)
				}
				ft.setCookie(c)
				ft.setCookie(c) // again: still one cookie
				// fasthttp's own formatting of the same cookie.
				fc := fasthttp.AcquireCookie()
				fc.SetKey(c.name)
				fc.SetValue(c.value)
				setFastCookieAttrs(fc, c)
				slow.Response.Header.SetCookie(fc)
				fasthttp.ReleaseCookie(fc)
				got, want := setCookieHeaders(&fast), setCookieHeaders(&slow)
				if len(got) != 1 || len(want) != 1 || got[0] != want[0] {
					t.Fatalf("%+v, secure %v, deleting %v:\n got  %q\n want %q", cfg, c.secure, deleting, got, want)
				}
				var parsed fasthttp.Cookie
				parsed.SetKey(m.cfg.CookieName)
				if !fast.Response.Header.Cookie(&parsed) || string(parsed.Value()) != value {
					t.Fatalf("%+v: fasthttp reads back %q", cfg, parsed.Value())
				}
			}
		}
	}
}
