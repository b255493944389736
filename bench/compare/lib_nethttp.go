package compare

import (
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
)

func sessionkitHTTPLib() HTTPLib {
	return HTTPLib{
		Name:   "sessionkit",
		Module: "github.com/sessionkit/sessionkit (this repository)",
		Setup:  "`Session.Middleware`, memory provider, default Config (30 min idle timeout)",
		New: func() (HTTPInstance, error) {
			m := sessionkit.New(sessionkit.Config{CookieName: CookieName})
			if err := m.UseProvider(memory.New(memory.Config{})); err != nil {
				return nil, err
			}
			return sessionkitHTTP{m}, nil
		},
	}
}

type sessionkitHTTP struct{ m *sessionkit.Session }

func (i sessionkitHTTP) Handler(op Op, afterStart func()) http.Handler {
	return i.m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := i.m.FromContext(r.Context())
		if afterStart != nil {
			afterStart()
		}
		n, err := sessionkitWork(s, op)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeNumber(w, op, n)
	}))
}

func (sessionkitHTTP) Close() {}

// scsLib is alexedwards/scs v2 with its default store (memstore) and
// codec (gob). With idle, sessions end after 30 idle minutes, as
// sessionkit's do, which scs implements by saving every session it loads;
// without, they end 30 minutes after they were created, whatever
// happens, and a request that changes nothing saves nothing.
//
// The memstore runs without its cleanup goroutine: its StopCleanup
// reads the goroutine's channel without synchronisation, a data race the
// race detector reports (and a goroutine that never stops when
// StopCleanup comes first). Expired sessions are still refused when read;
// they are only not swept, which no benchmark here lasts long enough to
// need.
func scsLib(idle bool) HTTPLib {
	l := HTTPLib{
		Name:   "scs",
		Module: "github.com/alexedwards/scs/v2 v2.8.0",
		Setup:  "`LoadAndSave`, memstore (no cleanup goroutine), gob codec, `IdleTimeout` 30 min",
	}
	if !idle {
		l.Name = "scs-lifetime"
		l.Setup = "as above, but `Lifetime` 30 min and no idle timeout (an absolute expiry: not the same sessions)"
	}
	l.New = func() (HTTPInstance, error) {
		sm := scs.New()
		sm.Store = memstore.NewWithCleanupInterval(0)
		sm.Cookie.Name = CookieName
		if idle {
			sm.IdleTimeout = 30 * time.Minute
		} else {
			sm.Lifetime = 30 * time.Minute
		}
		return scsInst{sm}, nil
	}
	return l
}

type scsInst struct{ sm *scs.SessionManager }

func (i scsInst) Handler(op Op, afterStart func()) http.Handler {
	sm := i.sm
	return sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if afterStart != nil {
			afterStart()
		}
		n := 0
		switch op {
		case W1:
			_ = sm.GetString(ctx, "name")
		case W2:
			n = sm.GetInt(ctx, "n") + 1
			sm.Put(ctx, "n", n)
		case W3:
			sm.Put(ctx, "name", "sessionkit")
		case OpPreload:
			sm.Put(ctx, "name", "sessionkit")
			sm.Put(ctx, "n", 0)
		case OpReadN:
			if !sm.Exists(ctx, "n") {
				http.Error(w, `"n" not found`, http.StatusInternalServerError)
				return
			}
			n = sm.GetInt(ctx, "n")
		case OpHasName:
			if sm.Exists(ctx, "name") {
				n = 1
			}
		case OpSetA:
			sm.Put(ctx, "a", 1)
		case OpSetB:
			sm.Put(ctx, "b", 1)
		case OpCountAB:
			for _, k := range []string{"a", "b"} {
				if sm.Exists(ctx, k) {
					n++
				}
			}
		}
		writeNumber(w, op, n)
	}))
}

func (scsInst) Close() {}
