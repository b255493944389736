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

// netHTTPCookie is what (*http.Request).Cookie finds for name in the
// Cookie lines, or "".
func netHTTPCookie(lines []string, name string) string {
	r := &http.Request{Header: http.Header{"Cookie": lines}}
	if c, err := r.Cookie(name); err == nil {
		return c.Value
	}
	return ""
}

// TestCookieValueMatchesNetHTTP checks cookieValue, sessionkit's own
// reading of a request's cookie, against net/http's on the cases where a
// reader could go wrong.
func TestCookieValueMatchesNetHTTP(t *testing.T) {
	cases := [][]string{
		nil,
		{""},
		{"sid=abc"},
		{"a=1; sid=abc; b=2"},
		{"  sid = abc  "},
		{"sid=abc;sid=def"},
		{"other=1", "sid=second-line"},
		{`sid="quoted"`},
		{`sid="`},
		{`sid=""`},
		{`sid="a"b"`},
		{"sid=a\\b; sid=ok"},
		{"sid=a\x7fb; sid=ok"},
		{"sid=has space"},
		{"sid="},
		{"sid"},
		{"=sid; sid=x"},
		{"SID=upper; sid=lower"},
		{"xsid=1; sidx=2; sid=3"},
		{";;; ; sid=x ;"},
		{"sid=a=b"},
		{"sid=\t tab"},
	}
	for _, lines := range cases {
		if got, want := cookieValue(http.Header{"Cookie": lines}, "sid"), netHTTPCookie(lines, "sid"); got != want {
			t.Errorf("Cookie %q: cookieValue = %q, net/http = %q", lines, got, want)
		}
	}
}

// FuzzCookieValue compares cookieValue with net/http on any Cookie line.
func FuzzCookieValue(f *testing.F) {
	for _, s := range []string{"sid=abc", `a=1; sid="x"; b`, " sid = v ;sid=w", "sid=\x00; sid=ok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.Count(line, ";") >= 3000 {
			t.Skip("net/http reads no cookie past 3,000 of them; cookieValue stops at the first match")
		}
		lines := []string{line}
		if got, want := cookieValue(http.Header{"Cookie": lines}, "sid"), netHTTPCookie(lines, "sid"); got != want {
			t.Fatalf("Cookie %q: cookieValue = %q, net/http = %q", line, got, want)
		}
	})
}
