package compare

import (
	"errors"
	"sync"
	"time"

	sessions "github.com/kataras/go-sessions/v3"
	"github.com/valyala/fasthttp"
)

const goSessionsModule = "github.com/kataras/go-sessions/v3 v3.3.1"

func goSessionsLib() Lib {
	return Lib{
		Name:        "go-sessions",
		Module:      goSessionsModule,
		Setup:       "StartFasthttp, built-in memory database, Expires 30 min (a timer per session); values live in memory, so there is no save step",
		Benchmarked: true,
		Issues: "values are shared in memory rather than saved per request; the memory database's Set changes a session's " +
			"values under a read lock (database.go mem.Set), so two concurrent requests of one session race: " +
			"go test -race reports it in the concurrent-keys check",
		New: func() (Instance, error) {
			return newGoSessions(nil), nil
		},
	}
}

type goSessionsInst struct {
	s *sessions.Sessions

	// started holds every session this instance created, so that Close
	// can stop their expiry timers: the library's DestroyAll leaves them
	// running, and a timer per session would otherwise keep memory (and
	// the runtime's timer heaps) busy for the rest of the process.
	mu      sync.Mutex
	started []*sessions.Session
}

// newGoSessions opens an instance on db, or on the built-in memory
// database when db is nil.
func newGoSessions(db sessions.Database) *goSessionsInst {
	s := sessions.New(sessions.Config{
		Cookie:                      CookieName,
		Expires:                     30 * time.Minute,
		DisableSubdomainPersistence: true,
	})
	if db != nil {
		s.UseDatabase(db)
	}
	return &goSessionsInst{s: s}
}

func (i *goSessionsInst) Serve(ctx *fasthttp.RequestCtx, op Op) (int, error) {
	return i.ServeAfterStart(ctx, op, nil)
}

func (i *goSessionsInst) ServeAfterStart(ctx *fasthttp.RequestCtx, op Op, afterStart func()) (int, error) {
	sess := i.s.StartFasthttp(ctx)
	if !op.WithCookie() {
		i.mu.Lock()
		i.started = append(i.started, sess)
		i.mu.Unlock()
	}
	if afterStart != nil {
		afterStart()
	}
	n := 0
	switch op {
	case W1:
		_ = sess.GetString("name")
	case W2:
		n = sess.GetIntDefault("n", 0) + 1
		sess.Set("n", n)
	case W3:
		sess.Set("name", "sessionkit")
	case OpPreload:
		sess.Set("name", "sessionkit")
		sess.Set("n", 0)
	case OpReadN:
		v, err := sess.GetInt("n")
		if err != nil {
			return 0, errors.New(`"n" not found`)
		}
		n = v
	case OpHasName:
		if sess.GetString("name") != "" {
			n = 1
		}
	case OpSetA:
		sess.Set("a", 1)
	case OpSetB:
		sess.Set("b", 1)
	case OpCountAB:
		for _, k := range []string{"a", "b"} {
			if sess.Get(k) != nil {
				n++
			}
		}
	}
	// Values are written to the database by Set itself: nothing to save.
	return n, nil
}

func (i *goSessionsInst) Close() {
	i.mu.Lock()
	for _, s := range i.started {
		s.Lifetime.ExpireNow()
	}
	i.started = nil
	i.mu.Unlock()
	i.s.DestroyAll()
}
