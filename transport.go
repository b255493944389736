package sessionkit

import (
	"net/http"
	"net/textproto"
	"strings"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// transport is where a Store's session ID came from and where it goes
// back: a fasthttp request or a net/http one.
type transport interface {
	// header and isTLS serve Config.IsSecure through RequestInfo.
	header(name string) string
	isTLS() bool
	// setCookie writes one Set-Cookie header. maxAge < 0 deletes the cookie.
	setCookie(c cookie)
	// cachingHeaders returns the response's Vary and Cache-Control
	// headers as set so far, each as one list: the values of a header
	// sent more than once are joined, as a cache reads them (RFC 9110,
	// section 5.3), and repeated says that one of the two was. The
	// strings may share the response's memory: they must not be kept,
	// nor used after the response is changed.
	cachingHeaders() (vary, cacheControl string, repeated bool)
	// setHeader sets a response header. name is in canonical form
	// (textproto.CanonicalMIMEHeaderKey): Config.HeaderName is stored so.
	// The transport may keep value (net/http does), so it must never
	// change. Of a header already sent more than once, setHeader may
	// replace the first only (fasthttp up to v1.74 does) or all of them
	// (net/http, later fasthttp releases): delHeader first when it
	// matters.
	setHeader(name, value string)
	// delHeader removes every response header called name (canonical).
	delHeader(name string)
	// headerSent reports whether the response header is known to be
	// out, so that a cookie set now would never reach the client.
	headerSent() bool
}

// cookie is a transport-neutral Set-Cookie.
type cookie struct {
	name, value, domain, path string
	maxAge                    int // seconds; 0 = session cookie; <0 = delete
	secure, httpOnly          bool
	partitioned               bool
	sameSite                  http.SameSite
	// fastAttrs is everything fasthttp writes after the value for these
	// attributes (see appendFastCookieAttrs), made once per manager.
	fastAttrs []byte
}

type requestInfo struct{ t transport }

func (r requestInfo) Header(name string) string { return r.t.header(name) }
func (r requestInfo) TLS() bool                 { return r.t.isTLS() }

// fastTransport is a single pointer, so storing it in the transport
// interface costs no allocation.
type fastTransport struct{ ctx *fasthttp.RequestCtx }

func (t fastTransport) header(name string) string { return string(t.ctx.Request.Header.Peek(name)) }
func (t fastTransport) isTLS() bool               { return t.ctx.IsTLS() }

// headerSent is false: fasthttp writes the response once the handler has
// returned.
func (fastTransport) headerSent() bool { return false }
func (t fastTransport) setHeader(name, value string) {
	// The name is canonical already (see transport), so fasthttp need not
	// normalize a copy of it; SetCanonical copies both arguments.
	t.ctx.Response.Header.SetCanonical(unsafe.Slice(unsafe.StringData(name), len(name)), unsafe.Slice(unsafe.StringData(value), len(value)))
}

func (t fastTransport) delHeader(name string) { t.ctx.Response.Header.Del(name) }

func (t fastTransport) cachingHeaders() (vary, cacheControl string, repeated bool) {
	// One walk over the headers, compared in place, rather than a
	// ResponseHeader.Peek for each: a Peek copies and normalizes its key
	// first, and the two cost a tenth of a new session's instructions.
	// Names are compared as Peek and SetCanonical compare them, byte for
	// byte with the canonical name. A header's one value is returned in
	// place; only a repeated header's values are joined into a string of
	// their own.
	for k, v := range t.ctx.Response.Header.All() {
		switch string(k) {
		case "Vary":
			vary, repeated = joinHeader(vary, v, repeated)
		case "Cache-Control":
			cacheControl, repeated = joinHeader(cacheControl, v, repeated)
		}
	}
	return vary, cacheControl, repeated
}

// joinHeader adds the value v of a response header to list, its earlier
// values, and reports whether the header is now repeated, or was.
func joinHeader(list string, v []byte, repeated bool) (string, bool) {
	if list == "" {
		return unsafe.String(unsafe.SliceData(v), len(v)), repeated
	}
	return list + ", " + string(v), true
}

// setCookieHeader is the header fasthttp files under the response's
// cookies, one per cookie name.
var setCookieHeader = []byte("Set-Cookie")

func (t fastTransport) setCookie(c cookie) {
	// The cookie as fasthttp formats it (TestFastCookieMatchesFasthttp),
	// but with the part after the value made once per manager rather than
	// through a fasthttp.Cookie's setters and formatting on every new
	// session (a fifth of a new session's instructions). Set-Cookie is
	// filed under the cookie's name like ResponseHeader.SetCookie files
	// it, after the name's earlier cookie is dropped, so a response still
	// carries one session cookie. SetCanonical copies buf.
	var buf [256]byte
	b := append(buf[:0], c.name...)
	b = append(b, '=')
	b = append(b, c.value...)
	b = append(b, c.fastAttrs...)
	h := &t.ctx.Response.Header
	h.DelCookie(c.name)
	h.SetCanonical(setCookieHeader, b)
}

// setFastCookieAttrs sets everything of c on fc but its name and value.
func setFastCookieAttrs(fc *fasthttp.Cookie, c cookie) {
	fc.SetDomain(c.domain)
	fc.SetPath(c.path)
	fc.SetMaxAge(c.maxAge)
	fc.SetHTTPOnly(c.httpOnly)
	fc.SetSecure(c.secure)
	fc.SetPartitioned(c.partitioned)
	switch c.sameSite {
	case http.SameSiteStrictMode:
		fc.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	case http.SameSiteNoneMode:
		fc.SetSameSite(fasthttp.CookieSameSiteNoneMode)
	default:
		fc.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	}
}

// appendFastCookieAttrs appends what fasthttp writes after a cookie's
// value for c's attributes: a fasthttp.Cookie with no name and no value
// formats as exactly that.
func appendFastCookieAttrs(dst []byte, c cookie) []byte {
	var fc fasthttp.Cookie
	setFastCookieAttrs(&fc, c)
	return fc.AppendBytes(dst)
}

// cookieValue returns the value of the first cookie called name in the
// request header h, as (*http.Request).Cookie reads it (each Cookie
// line split at ";", names and values trimmed of spaces, one pair of
// double quotes stripped, pairs with a byte RFC 6265 forbids in the value
// skipped), or "" if there is none. It allocates nothing, where Cookie
// parses every cookie of the request into a new *http.Cookie; and it
// stops at the first match, so net/http's cap of 3,000 cookies per request,
// which bounds that parsing, has nothing to bound here.
func cookieValue(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(textproto.TrimString(part), "=")
			if textproto.TrimString(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) {
				return v
			}
		}
	}
	return ""
}

// validCookieValue reports whether every byte of v may appear in a
// cookie value (RFC 6265's cookie-octet, and the space net/http lets
// through).
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}

// httpTransport serves net/http. Cookies must reach the header map before
// the first byte of the body; the Middleware arranges that.
type httpTransport struct {
	w http.ResponseWriter
	r *http.Request
}

func (t *httpTransport) header(name string) string    { return t.r.Header.Get(name) }
func (t *httpTransport) isTLS() bool                  { return t.r.TLS != nil }
func (t *httpTransport) setHeader(name, value string) { t.w.Header().Set(name, value) }
func (t *httpTransport) delHeader(name string)        { t.w.Header().Del(name) }

// headerSent knows only under Middleware, whose writer sees the header go
// out; without it, the handler must save before writing (see StartHTTP).
func (t *httpTransport) headerSent() bool {
	sw, ok := t.w.(*saveWriter)
	return ok && sw.wroteHeader
}

func (t *httpTransport) cachingHeaders() (vary, cacheControl string, repeated bool) {
	h := t.w.Header()
	vs, ccs := h.Values("Vary"), h.Values("Cache-Control")
	return strings.Join(vs, ", "), strings.Join(ccs, ", "), len(vs) > 1 || len(ccs) > 1
}

func (t *httpTransport) setCookie(c cookie) {
	hc := &http.Cookie{
		Name:        c.name,
		Value:       c.value,
		Domain:      c.domain,
		Path:        c.path,
		MaxAge:      c.maxAge,
		HttpOnly:    c.httpOnly,
		Secure:      c.secure,
		Partitioned: c.partitioned,
		SameSite:    c.sameSite,
	}
	// Replace an earlier Set-Cookie for the same name in this response
	// (for example a Regenerate after the session was first saved) so the
	// browser never sees two values.
	h := t.w.Header()
	if old := h.Values("Set-Cookie"); len(old) > 0 {
		keep := old[:0:0]
		for _, v := range old {
			if !strings.HasPrefix(v, c.name+"=") {
				keep = append(keep, v)
			}
		}
		h["Set-Cookie"] = keep
	}
	http.SetCookie(t.w, hc)
}

// listHas reports whether the comma-separated list holds item,
// case-insensitively, as a whole element: a Vary of "Cookie2" or
// "X-Cookie" does not vary on Cookie. It scans in place, since it runs on
// every response that sets the cookie.
func listHas(list, item string) bool {
	for list != "" {
		var elem string
		elem, list, _ = strings.Cut(list, ",")
		if strings.EqualFold(textproto.TrimString(elem), item) {
			return true
		}
	}
	return false
}

// nextDirective splits the first directive off the Cache-Control list cc
// (RFC 9111, section 5.2): its name; its argument, without the quotes of a
// quoted string, whose commas belong to it and not to the list; whether
// it has one; and the rest of the list. An argument in token form is
// returned too, since RFC 9111 asks recipients to accept both forms. A
// quoted-pair is left escaped, so an argument that uses one never equals
// a plain name: the caller then adds its own directive rather than trust
// one it cannot read simply.
func nextDirective(cc string) (name, arg string, hasArg bool, rest string) {
	i := 0
	for i < len(cc) && (cc[i] == ',' || cc[i] == ' ' || cc[i] == '\t') {
		i++
	}
	start := i
	for i < len(cc) && cc[i] != '=' && cc[i] != ',' {
		i++
	}
	name = textproto.TrimString(cc[start:i])
	if i == len(cc) || cc[i] == ',' {
		return name, "", false, cc[i:]
	}
	i++ // '='
	for i < len(cc) && (cc[i] == ' ' || cc[i] == '\t') {
		i++
	}
	if i < len(cc) && cc[i] == '"' {
		start = i + 1
		for i++; i < len(cc) && cc[i] != '"'; i++ {
			if cc[i] == '\\' {
				i++
			}
		}
		if i >= len(cc) {
			// No closing quote: the list is malformed, and its argument
			// names nothing that can be relied on.
			return name, "", true, ""
		}
		arg = cc[start:i]
		for i < len(cc) && cc[i] != ',' {
			i++
		}
		return name, arg, true, cc[i:]
	}
	start = i
	for i < len(cc) && cc[i] != ',' {
		i++
	}
	return name, textproto.TrimString(cc[start:i]), true, cc[i:]
}

// keepsSetCookieOut reports whether the Cache-Control list cc already
// keeps shared caches from reusing a Set-Cookie: a bare no-store, private
// or no-cache does, but private="X-User" or no-cache="X-Debug" withholds
// only the fields it names and lets a cache store and replay the rest,
// the session cookie included, unless Set-Cookie is among them. What
// this cannot read counts as not keeping it out: one more
// no-cache="Set-Cookie" costs nothing, a cached session cookie is handed
// to other users.
func keepsSetCookieOut(cc string) bool {
	for cc != "" {
		var name, arg string
		var hasArg bool
		name, arg, hasArg, cc = nextDirective(cc)
		switch {
		case strings.EqualFold(name, "no-store"):
			if !hasArg {
				return true
			}
		case strings.EqualFold(name, "no-cache"), strings.EqualFold(name, "private"):
			if !hasArg || listHas(arg, "Set-Cookie") {
				return true
			}
		}
	}
	return false
}

// markUncacheable makes sure no shared cache stores a response that sets
// the session cookie: it adds Cookie to Vary and, unless the response is
// already private or uncacheable, tells caches not to reuse Set-Cookie.
func markUncacheable(t transport) {
	vary, cc, repeated := t.cachingHeaders()
	// Both new values are built before either is set: what
	// cachingHeaders returned may share the response's memory, which a
	// change may reuse.
	var newVary, newCC string
	switch {
	case vary == "":
		newVary = "Cookie"
	case listHas(vary, "Cookie"):
	default:
		newVary = vary + ", Cookie"
	}
	switch {
	case cc == "":
		newCC = `no-cache="Set-Cookie"`
	case keepsSetCookieOut(cc):
	default:
		newCC = cc + `, no-cache="Set-Cookie"`
	}
	// A repeated header is replaced as a whole by the amended list, on
	// every transport: setting it alone would, depending on fasthttp's
	// version, keep its later values beside the list that holds them
	// already, or drop them along with a directive such as private. Only
	// a repeated one is deleted first: fasthttp's Del normalizes its key
	// and walks every header, and deleting always added about 840
	// instructions to a new session's 7,170.
	if newVary != "" {
		if repeated {
			t.delHeader("Vary")
		}
		t.setHeader("Vary", newVary)
	}
	if newCC != "" {
		if repeated {
			t.delHeader("Cache-Control")
		}
		t.setHeader("Cache-Control", newCC)
	}
}
