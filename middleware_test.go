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
	m := sessionkit.New(sessionkit.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_, cp := newManager(t, sessionkit.Config{})
	fp := &failingProvider{countingProvider: cp}
	if err := m.UseProvider(fp); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fp.fail.Store(true)
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
