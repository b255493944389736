package sessionkit_test

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
)

// unwrapOnly is a ResponseWriter as middleware written for
// http.ResponseController wraps one: it offers Unwrap and none of the
// optional interfaces (Flusher, Hijacker) itself.
type unwrapOnly struct{ http.ResponseWriter }

func (u unwrapOnly) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// A flush through Middleware commits the session's cookie, then reaches
// the server's writer, however the writers in between are wrapped.
func TestMiddlewareFlush(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	for _, tc := range []struct {
		name  string
		flush func(w http.ResponseWriter) error
	}{
		{"Flusher", func(w http.ResponseWriter) error { w.(http.Flusher).Flush(); return nil }},
		{"ResponseController", func(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() }},
	} {
		for _, wrapped := range []bool{false, true} {
			rec := httptest.NewRecorder()
			var cookieAtFlush string
			h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sessionkit.FromContext(r.Context()).Set("k", "v")
				_, _ = io.WriteString(w, "first part")
				if err := tc.flush(w); err != nil {
					t.Errorf("%s, wrapped %v: flush: %v", tc.name, wrapped, err)
				}
				cookieAtFlush = rec.Header().Get("Set-Cookie")
				_, _ = io.WriteString(w, ", second part")
			}))
			var w http.ResponseWriter = rec
			if wrapped {
				w = unwrapOnly{rec}
			}
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if !rec.Flushed {
				t.Errorf("%s, wrapped %v: the flush did not reach the server's writer", tc.name, wrapped)
			}
			if !strings.HasPrefix(cookieAtFlush, "sessionid=") {
				t.Errorf("%s, wrapped %v: no session cookie when the header was flushed (%q)", tc.name, wrapped, cookieAtFlush)
			}
			if body := rec.Body.String(); body != "first part, second part" {
				t.Errorf("%s, wrapped %v: body %q", tc.name, wrapped, body)
			}
		}
	}
}

// A flush whose save fails reports it, and sends the 500 rather than the
// handler's output.
func TestMiddlewareFlushAfterFailedSave(t *testing.T) {
	m := failingManager(t)
	rec := httptest.NewRecorder()
	var flushErr error
	m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sessionkit.FromContext(r.Context()).Set("k", "v")
		flushErr = http.NewResponseController(w).Flush()
		_, _ = io.WriteString(w, "handler output")
	})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if flushErr == nil {
		t.Error("a flush whose save failed reported no error")
	}
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "handler output") {
		t.Errorf("after a failed save: %d %q, want the 500 alone", rec.Code, rec.Body.String())
	}
}

// A handler that takes over the connection (a WebSocket upgrade, say)
// through Middleware finds the session saved first, and the server's
// other controls (deadlines) reachable through Unwrap.
func TestMiddlewareHijackAndControls(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	srv := httptest.NewServer(m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessionkit.FromContext(r.Context())
		switch r.URL.Path {
		case "/init":
			s.Set("v", "0")
		case "/read":
			v, _ := s.GetString("v")
			_, _ = io.WriteString(w, v)
		case "/hijack":
			rc := http.NewResponseController(w)
			if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Errorf("SetWriteDeadline through Middleware: %v", err)
			}
			s.Set("v", "1")
			conn, buf, err := rc.Hijack()
			if err != nil {
				t.Errorf("Hijack through Middleware: %v", err)
				return
			}
			defer conn.Close()
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
			_ = buf.Flush()
		}
	})))
	defer srv.Close()
	c := newClient(t, srv.URL, nil)
	c.get("/init")
	if body, res := c.get("/hijack"); body != "hijacked" || res.StatusCode != http.StatusOK {
		t.Fatalf("hijacked response: %d %q", res.StatusCode, body)
	}
	if body, _ := c.get("/read"); body != "1" {
		t.Fatalf("the change made before Hijack was not saved: %q", body)
	}
}

// Hijack through Middleware on a writer that cannot be hijacked reports
// it as http.ResponseController does.
func TestMiddlewareHijackUnsupported(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	var err error
	m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var conn interface{ Close() error }
		var buf *bufio.ReadWriter
		conn, buf, err = w.(http.Hijacker).Hijack()
		if conn != nil || buf != nil {
			t.Error("a recorder was hijacked")
		}
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !errors.Is(err, http.ErrNotSupported) {
		t.Fatalf("Hijack of a recorder: %v, want http.ErrNotSupported", err)
	}
}

// readFromRecorder is a recorder that, like net/http's own writer,
// implements io.ReaderFrom, and counts the calls.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	calls int
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.calls++
	return io.Copy(r.ResponseRecorder, src)
}

// io.Copy through Middleware reaches the server's writer's ReadFrom (so a
// file can go out by sendfile), after the session is committed; on a
// writer without ReadFrom it falls back to Write.
func TestMiddlewareReadFrom(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	body := strings.Repeat("0123456789", 10_000)
	for _, withReadFrom := range []bool{true, false} {
		rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
		var w http.ResponseWriter = rec
		if !withReadFrom {
			w = rec.ResponseRecorder
		}
		var n int64
		var err error
		m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sessionkit.FromContext(r.Context()).Set("k", "v")
			// As http.ServeContent copies: io.CopyN, whose LimitedReader
			// has no WriteTo, so io.Copy asks the writer for ReadFrom.
			n, err = io.CopyN(w, strings.NewReader(body), int64(len(body)))
		})).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		if err != nil || n != int64(len(body)) || rec.Body.String() != body {
			t.Fatalf("ReadFrom %v: copied %d, %v; body of %d bytes", withReadFrom, n, err, rec.Body.Len())
		}
		if want := map[bool]int{true: 1, false: 0}[withReadFrom]; rec.calls != want {
			t.Fatalf("ReadFrom %v: the server's ReadFrom ran %d times, want %d", withReadFrom, rec.calls, want)
		}
		if !strings.HasPrefix(rec.Header().Get("Set-Cookie"), "sessionid=") || rec.Code != http.StatusOK {
			t.Fatalf("ReadFrom %v: %d, cookie %q", withReadFrom, rec.Code, rec.Header().Get("Set-Cookie"))
		}
	}
}

// Middleware inside a Middleware of the same manager leaves the request's
// Store to the outer one, which saves it once the code around the inner
// handler is done too; the inner one used to release it first, losing
// what that code did.
func TestMiddlewareNested(t *testing.T) {
	var logs strings.Builder
	m, _ := newManager(t, sessionkit.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	inner := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sessionkit.FromContext(r.Context()).Set("user", "alice")
	}))
	var after error
	outer := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r)
		s := sessionkit.FromContext(r.Context())
		if _, after = s.GetString("user"); after == nil {
			s.Set("seen", true)
		}
	}))
	rec := httptest.NewRecorder()
	outer.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if after != nil {
		t.Fatalf("the outer handler's Store after the inner Middleware: %v", after)
	}
	if logs.Len() != 0 {
		t.Errorf("logged: %s", logs.String())
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("%d cookies set, want the session's one: %v", len(cookies), rec.Header().Values("Set-Cookie"))
	}
	serve(t, m, request{cookie: cookies[0].Value}, func(s *sessionkit.Store) {
		user, _ := s.GetString("user")
		seen, _ := s.GetBool("seen")
		if user != "alice" || !seen {
			t.Errorf("next request: user %q, seen %v; want both handlers' values", user, seen)
		}
	})
}

// Regenerate once the body has started under Middleware cannot send the
// new cookie: it fails with ErrHeaderSent and leaves the session where
// the client's cookie finds it, where it used to move the session and
// leave the client with a dead ID.
func TestMiddlewareLateRegenerate(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("user", "alice") }).cookieVal
	for _, late := range []bool{false, true} {
		var regen error
		h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if late {
				_, _ = io.WriteString(w, "body first")
			}
			regen = sessionkit.FromContext(r.Context()).Regenerate(r.Context())
		}))
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(&http.Cookie{Name: "sessionid", Value: id})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		cookies := rec.Result().Cookies()
		if late {
			if !errors.Is(regen, sessionkit.ErrHeaderSent) || len(cookies) != 0 {
				t.Fatalf("Regenerate after the body = %v, cookies %v; want ErrHeaderSent and none", regen, cookies)
			}
		} else {
			if regen != nil || len(cookies) != 1 || cookies[0].Value == id {
				t.Fatalf("Regenerate before the body = %v, cookies %v; want a new ID", regen, cookies)
			}
			id = cookies[0].Value
		}
		var user string
		serve(t, m, request{cookie: id}, func(s *sessionkit.Store) { user, _ = s.GetString("user") })
		if user != "alice" {
			t.Fatalf("late %v: the client's cookie no longer finds the session", late)
		}
	}
}
