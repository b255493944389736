package sessionkit

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/valyala/fasthttp"
)

// latestKey finds the Store of the innermost Handler or Middleware, for
// FromContext.
type latestKey struct{}

// FromContext returns the Store that the innermost Handler or Middleware
// attached to a request, or nil. ctx is the *fasthttp.RequestCtx for
// fasthttp and r.Context() for net/http. With several managers on one
// request, use Session.FromContext to pick one.
func FromContext(ctx context.Context) *Store {
	s, _ := ctx.Value(latestKey{}).(*Store)
	return s
}

// FromContext returns this manager's Store for a request, or nil if
// neither Start nor this manager's middleware ran for it.
func (m *Session) FromContext(ctx context.Context) *Store {
	s, _ := ctx.Value(m.key).(*Store)
	return s
}

// Handler wraps a fasthttp handler: it starts the session before next
// runs (reachable with FromContext or Start) and saves it afterwards. If
// the session cannot be loaded, next does not run and the response is a
// 500; if it cannot be saved, the response next produced is replaced by a
// 500, so a lost write never looks like success.
func (m *Session) Handler(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		s, err := m.Start(ctx)
		if err != nil {
			m.cfg.Logger.Error("sessionkit: start session", "err", err)
			ctx.Error("session unavailable", fasthttp.StatusInternalServerError)
			return
		}
		ctx.SetUserValue(latestKey{}, s)
		next(ctx)
		if err := s.Save(ctx); err != nil {
			m.cfg.Logger.Error("sessionkit: save session", "err", err)
			ctx.Response.ResetBody()
			ctx.Error("session could not be saved", fasthttp.StatusInternalServerError)
		}
	}
}

// Middleware wraps a net/http handler: it starts the session before next
// runs (reachable with FromContext or StartHTTP) and saves it just before
// the response header is written (so a new session's cookie is sent), and
// once more after next returns for anything changed later.
//
// If the save before the header fails, the client gets a 500 instead of
// next's response. A change made after the header was sent is still
// stored, except that a session created that late cannot send its cookie:
// it is not stored and the problem is logged, rather than silently kept
// where nobody can reach it.
//
// Middleware inside a Middleware of the same manager (on a router and on
// one of its sub-routers, say) only calls next: the outer one's Store
// serves the request, and it is saved and released by the outer one,
// after code that runs once the inner handler is done.
func (m *Session) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Context().Value(m.key).(*Store); ok {
			next.ServeHTTP(w, r)
			return
		}
		mw := &middlewareRequest{sw: saveWriter{ResponseWriter: w, m: m}}
		sw := &mw.sw
		s, err := m.StartHTTP(sw, r)
		if err != nil {
			m.cfg.Logger.Error("sessionkit: start session", "err", err)
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		// The Store's state is recycled once the handler is done; a
		// goroutine that kept the Store then gets ErrStoreReleased.
		defer s.Close()
		sw.s, sw.ctx = s, r.Context()
		mw.ctx = storeCtx{Context: r.Context(), key: m.key, s: s}
		next.ServeHTTP(sw, r.WithContext(&mw.ctx))
		if !sw.wroteHeader {
			if sw.commit() {
				w.WriteHeader(http.StatusOK)
			}
			return
		}
		if sw.failed {
			return
		}
		// The header is out: late changes can still be stored, but a new
		// session's cookie can no longer reach the client.
		if s.IsNew() && s.dirtyNow() {
			m.cfg.Logger.Error("sessionkit: session created after the response header was written; it was not stored because its cookie could not be sent. Set values before writing the body.", "path", r.URL.Path)
			return
		}
		if err := s.Save(r.Context()); err != nil {
			m.cfg.Logger.Error("sessionkit: save session after the response", "err", err)
		}
	})
}

// middlewareRequest is what Middleware allocates for a request, in one
// piece: the ResponseWriter and the context it hands to next.
type middlewareRequest struct {
	sw  saveWriter
	ctx storeCtx
}

// storeCtx is the context Middleware hands to next: the request's, with
// the Store under both the manager's key (for Session.FromContext) and
// latestKey (for FromContext), where two context.WithValue calls would
// make two allocations.
type storeCtx struct {
	context.Context
	key storeKey
	s   *Store
}

func (c *storeCtx) Value(key any) any {
	if key == c.key || key == (latestKey{}) {
		return c.s
	}
	return c.Context.Value(key)
}

func (h *Store) dirtyNow() bool {
	s, ok := h.read()
	if !ok {
		return false
	}
	defer s.mu.Unlock()
	return s.dirty()
}

// saveWriter saves the session when the response header is about to be
// written.
type saveWriter struct {
	http.ResponseWriter
	m           *Session
	s           *Store
	ctx         context.Context
	wroteHeader bool
	failed      bool // Save failed: the 500 is sent and next's output dropped
}

// commit saves the session before the header goes out. It reports whether
// the caller may write its own header; on failure it has sent a 500.
func (w *saveWriter) commit() bool {
	w.wroteHeader = true
	if err := w.s.Save(w.ctx); err != nil {
		w.m.cfg.Logger.Error("sessionkit: save session", "err", err)
		w.failed = true
		http.Error(w.ResponseWriter, "session could not be saved", http.StatusInternalServerError)
		return false
	}
	return true
}

func (w *saveWriter) WriteHeader(code int) {
	if w.wroteHeader {
		if !w.failed {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	// Informational responses (103 Early Hints) do not end the header.
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.commit() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *saveWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, errSaveFailed
	}
	return w.ResponseWriter.Write(b)
}

var errSaveFailed = errors.New("sessionkit: response replaced by an error: the session could not be saved")

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *saveWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher; it commits the header first (see
// FlushError).
func (w *saveWriter) Flush() { _ = w.FlushError() }

// FlushError commits the header, saving the session, then flushes the
// writer Middleware wrapped through http.ResponseController, which
// follows Unwrap down to a writer that can flush: when the wrapped writer
// is another middleware's that offers only Unwrap, asking it for
// http.Flusher alone would skip the flush and stall a stream. It returns
// the flush's error, or an error if the session could not be saved (the
// client then has a 500). http.ResponseController calls it rather than
// Flush.
func (w *saveWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return errSaveFailed
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// ReadFrom implements io.ReaderFrom, which io.Copy prefers, so that a
// file served through Middleware (http.ServeContent, http.FileServer)
// still reaches the server's writer as a whole and net/http can hand it
// to the kernel (sendfile) rather than copy it through a buffer. The
// header is committed first, as for Write.
func (w *saveWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, errSaveFailed
	}
	// The wrapped writer's own ReadFrom, never one found through Unwrap:
	// a writer in between (compressing, say) must see every byte.
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	// Only Write: io.Copy on w itself would come back here.
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}

// Hijack implements http.Hijacker for protocol upgrades; the session is
// saved first. A new session's cookie is then in Header(), where only a
// response written from it reaches the client: a WebSocket library that
// writes its own upgrade response from headers passed to it needs the
// Set-Cookie line passed too, or the new session stays unreachable.
func (w *saveWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.wroteHeader && !w.commit() {
		return nil, nil, errSaveFailed
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}
