package sessionkit_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/sessionkit/sessionkit"
)

// The workloads through net/http: Session.Middleware around the work,
// driven in-process on one reused request and ResponseWriter, as the
// fasthttp benchmarks reuse a RequestCtx.

// reusedWriter is a ResponseWriter that a benchmark resets between
// requests, so that the harness allocates nothing.
type reusedWriter struct {
	h    http.Header
	code int
}

func (w *reusedWriter) Header() http.Header { return w.h }
func (w *reusedWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *reusedWriter) Write(b []byte) (int, error) { w.WriteHeader(http.StatusOK); return len(b), nil }

// httpClient is one goroutine's request and writer.
type httpClient struct {
	r      *http.Request
	w      reusedWriter
	cookie []string
}

func newHTTPClient() *httpClient {
	return &httpClient{r: httptest.NewRequest(http.MethodGet, "/", nil), w: reusedWriter{h: http.Header{}}, cookie: make([]string, 1)}
}

// do serves one request through h, with the Cookie header cookieHeader
// ("" for none), and fails tb on a status other than 200.
func (c *httpClient) do(tb testing.TB, h http.Handler, cookieHeader string) {
	clear(c.w.h)
	c.w.code = 0
	if cookieHeader == "" {
		delete(c.r.Header, "Cookie")
	} else {
		c.cookie[0] = cookieHeader
		c.r.Header["Cookie"] = c.cookie
	}
	h.ServeHTTP(&c.w, c.r)
	if c.w.code != http.StatusOK {
		tb.Fatalf("status %d", c.w.code)
	}
}

// httpHandler is m's Middleware around work.
func httpHandler(m *sessionkit.Session, work func(*sessionkit.Store)) http.Handler {
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		work(m.FromContext(r.Context()))
	}))
}

// cookieHeaders turns session IDs into the Cookie headers that send them.
func cookieHeaders(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "sessionid=" + id
	}
	return out
}

func runHTTP(b *testing.B, work func(*sessionkit.Store), withCookie, parallel bool) {
	m, ids := benchManager(b)
	cookies := cookieHeaders(ids)
	h := httpHandler(m, work)
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		c := newHTTPClient()
		for i := 0; i < b.N; i++ {
			c.do(b, h, walk(cookies, i, withCookie))
		}
		return
	}
	var seq atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		c := newHTTPClient()
		for i := walkStart(&seq, len(cookies)); pb.Next(); i++ {
			c.do(b, h, walk(cookies, i, withCookie))
		}
	})
}

func BenchmarkHTTPW1ReadUnchanged(b *testing.B)         { runHTTP(b, w1, true, false) }
func BenchmarkHTTPW2Increment(b *testing.B)             { runHTTP(b, w2, true, false) }
func BenchmarkHTTPW3NewSession(b *testing.B)            { runHTTP(b, w3, false, false) }
func BenchmarkHTTPW1ReadUnchangedParallel(b *testing.B) { runHTTP(b, w1, true, true) }
func BenchmarkHTTPW2IncrementParallel(b *testing.B)     { runHTTP(b, w2, true, true) }
func BenchmarkHTTPW3NewSessionParallel(b *testing.B)    { runHTTP(b, w3, false, true) }

// TestHTTPWorkloadAllocs holds the net/http path's allocation budgets:
// what Middleware cannot avoid (its ResponseWriter with the context it
// hands on, in one piece, and the request carrying that context) and, for
// a write, the session's new version. Reading the cookie, the transport and the provider calls'
// context cost none.
func TestHTTPWorkloadAllocs(t *testing.T) {
	m, id := allocsManager(t)
	c := newHTTPClient()
	for _, tc := range []struct {
		name   string
		work   func(*sessionkit.Store)
		cookie string
		max    float64
	}{
		{"W1", w1, "sessionid=" + id, 2},
		{"W2", w2, "sessionid=" + id, 3},
		// The new session's headers: net/http's header map takes a new
		// []string for each of Set-Cookie, Vary and Cache-Control, and
		// the Set-Cookie line is a string of its own.
		{"W3", w3, "", 7},
	} {
		h := httpHandler(m, tc.work)
		n := testing.AllocsPerRun(200, func() { c.do(t, h, tc.cookie) })
		if n > tc.max {
			t.Errorf("%s allocates %v times per request, want at most %v", tc.name, n, tc.max)
		}
	}
}
