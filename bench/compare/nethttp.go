package compare

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
)

// The net/http side of the comparison: the same workloads through each
// library's own net/http middleware (sessionkit's Middleware, scs's
// LoadAndSave), driven in-process on one reused *http.Request and
// ResponseWriter per goroutine, as the fasthttp side reuses a RequestCtx.
// What the libraries cost is then what they add to a handler, not what a
// server or a socket costs.

// HTTPInstance is one net/http library set up with its storage.
type HTTPInstance interface {
	// Handler returns the library's middleware around op's work. The
	// work calls afterStart (if not nil) first, once the session is
	// loaded, and for OpReadN, OpHasName and OpCountAB writes its number
	// as the response body; it answers 500 on an error.
	Handler(op Op, afterStart func()) http.Handler
	// Close releases the instance's sessions and background work.
	Close()
}

// HTTPLib is a net/http library under comparison.
type HTTPLib struct {
	// Name is short and has no slash, for benchmark names.
	Name string
	// Module is the module path and version measured.
	Module string
	// Setup says how the library is configured, for the report.
	Setup string
	// New opens a fresh instance on the memory storage.
	New func() (HTTPInstance, error)
}

// HTTPLibs returns the net/http libraries, sessionkit first.
func HTTPLibs() []HTTPLib {
	return []HTTPLib{sessionkitHTTPLib(), scsLib(true), scsLib(false)}
}

// HTTPClient drives handlers in-process: one request and one response
// writer, both reused, so that a request costs the harness no allocation.
type HTTPClient struct {
	req    *http.Request
	cookie []string // the request's Cookie header, reused
	w      recorder
}

// NewHTTPClient returns a client for one goroutine.
func NewHTTPClient() *HTTPClient {
	return &HTTPClient{
		req:    httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil),
		cookie: make([]string, 1),
		w:      recorder{h: http.Header{}},
	}
}

// CookieHeader is the Cookie header that sends the session ID id.
func CookieHeader(id string) string { return CookieName + "=" + id }

// Do serves one request through h, with the Cookie header cookie (none if
// ""), and returns an error for a response status of 400 or more.
func (c *HTTPClient) Do(h http.Handler, cookie string) error {
	clear(c.w.h)
	c.w.code, c.w.body = 0, c.w.body[:0]
	if cookie == "" {
		delete(c.req.Header, "Cookie")
	} else {
		c.cookie[0] = cookie
		c.req.Header["Cookie"] = c.cookie
	}
	h.ServeHTTP(&c.w, c.req)
	if c.w.code >= 400 {
		return fmt.Errorf("status %d: %s", c.w.code, c.w.body)
	}
	return nil
}

// Number returns the number the last response's body holds.
func (c *HTTPClient) Number() (int, error) { return strconv.Atoi(string(c.w.body)) }

// SessionCookie returns the session ID the last response's Set-Cookie
// gives, or "" if it sets none.
func (c *HTTPClient) SessionCookie() string {
	for _, line := range c.w.h.Values("Set-Cookie") {
		if ck, err := http.ParseSetCookie(line); err == nil && ck.Name == CookieName {
			return ck.Value
		}
	}
	return ""
}

// recorder is a reusable http.ResponseWriter that keeps the status, the
// header and the body.
type recorder struct {
	h    http.Header
	code int
	body []byte
}

func (w *recorder) Header() http.Header { return w.h }

func (w *recorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, b...)
	return len(b), nil
}

// writeNumber answers a work's number, for the ops that read one. The
// workloads write nothing: the response's body is no part of them.
func writeNumber(w http.ResponseWriter, op Op, n int) {
	switch op {
	case OpReadN, OpHasName, OpCountAB:
		_, _ = w.Write(strconv.AppendInt(nil, int64(n), 10))
	}
}

// PreloadHTTP creates n sessions holding "name" and "n" = 0 and returns
// the Cookie headers that send them.
func PreloadHTTP(inst HTTPInstance, n int) ([]string, error) {
	c := NewHTTPClient()
	h := inst.Handler(OpPreload, nil)
	cookies := make([]string, n)
	for i := range cookies {
		if err := c.Do(h, ""); err != nil {
			return nil, fmt.Errorf("preload: %w", err)
		}
		id := c.SessionCookie()
		if id == "" {
			return nil, fmt.Errorf("preload: no session cookie in the response")
		}
		cookies[i] = CookieHeader(id)
	}
	return cookies, nil
}

// BenchHTTP returns the benchmark of op on lib, serial or with
// b.RunParallel, as Bench does for the fasthttp libraries, walking the
// sessions the same way. Its loop is Bench's written again rather than
// shared through a function value: the measured loops then make no
// indirect call per request, and Bench's stays the loop that earlier runs
// measured.
func BenchHTTP(lib HTTPLib, op Op, parallel bool) func(b *testing.B) {
	return func(b *testing.B) {
		inst, err := lib.New()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(inst.Close)
		var cookies []string
		if op.WithCookie() {
			if cookies, err = PreloadHTTP(inst, Preloaded); err != nil {
				b.Fatal(err)
			}
		}
		h := inst.Handler(op, nil)
		b.ReportAllocs()
		b.ResetTimer()
		if !parallel {
			c := NewHTTPClient()
			k := 0
			for i := 0; i < b.N; i++ {
				cookie := ""
				if cookies != nil {
					cookie = cookies[k]
					k = (k + stride) % len(cookies)
				}
				if err := c.Do(h, cookie); err != nil {
					b.Fatal(err)
				}
			}
			return
		}
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			c := NewHTTPClient()
			k := int(seq.Add(1)*2503) % Preloaded
			for pb.Next() {
				cookie := ""
				if cookies != nil {
					cookie = cookies[k%len(cookies)]
					k = (k + stride) % len(cookies)
				}
				if err := c.Do(h, cookie); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
}

// BaselineHTTP is the same request handling with no session library: a
// handler that does nothing.
func BaselineHTTP(parallel bool) func(b *testing.B) {
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	cookie := CookieHeader("0123456789abcdefghijABCDEFGHIJ-_")
	return func(b *testing.B) {
		b.ReportAllocs()
		if !parallel {
			c := NewHTTPClient()
			for i := 0; i < b.N; i++ {
				_ = c.Do(h, cookie)
			}
			return
		}
		b.RunParallel(func(pb *testing.PB) {
			c := NewHTTPClient()
			for pb.Next() {
				_ = c.Do(h, cookie)
			}
		})
	}
}
