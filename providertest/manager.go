package providertest

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/valyala/fasthttp"
)

// viaManager drives a provider through a sessionkit manager, with
// in-process requests on fasthttp RequestCtxs, as a server would.
type viaManager struct {
	t   *testing.T
	m   *sessionkit.Session
	ctx fasthttp.RequestCtx
}

func newViaManager(t *testing.T, p sessionkit.Provider) *viaManager {
	t.Helper()
	v := &viaManager{t: t, m: newManager(t, p)}
	v.ctx.Init(&fasthttp.Request{}, nil, nil)
	return v
}

// newManager returns a manager with the default Config on p, closed when
// tb ends.
func newManager(tb testing.TB, p sessionkit.Provider) *sessionkit.Session {
	tb.Helper()
	m := sessionkit.New(sessionkit.Config{})
	if err := m.UseProvider(p); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

// do runs one request sending cookie ("" for none) through work, and
// returns the session cookie the client holds afterwards.
func (v *viaManager) do(what, cookie string, work func(*sessionkit.Store)) string {
	v.t.Helper()
	if err := request(v.m, &v.ctx, cookie, work); err != nil {
		v.t.Fatalf("%s: %v", what, err)
	}
	if c := v.cookieOf(&v.ctx); c != "" {
		return c
	}
	return cookie
}

// open starts a request sending cookie that stays open until the caller
// saves it, so that requests of one session can overlap: each loads the
// session before the others save. The session must exist.
func (v *viaManager) open(what, cookie string) (*sessionkit.Store, *fasthttp.RequestCtx) {
	v.t.Helper()
	s, ctx, err := v.start(cookie)
	if err != nil || s.IsNew() {
		v.t.Fatalf("%s: start: %v (session found: %v)", what, err, err == nil && !s.IsNew())
	}
	return s, ctx
}

// start starts a request sending cookie, on a RequestCtx of its own.
func (v *viaManager) start(cookie string) (*sessionkit.Store, *fasthttp.RequestCtx, error) {
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&fasthttp.Request{}, nil, nil)
	ctx.Request.Header.SetCookie(v.m.Config().CookieName, cookie)
	s, err := v.m.Start(ctx)
	return s, ctx, err
}

// cookieOf returns the session cookie ctx's response sets, or "".
func (v *viaManager) cookieOf(ctx *fasthttp.RequestCtx) string {
	var c fasthttp.Cookie
	c.SetKey(v.m.Config().CookieName)
	if ctx.Response.Header.Cookie(&c) {
		return string(c.Value())
	}
	return ""
}

// testThroughManager saves sessions through a sessionkit manager, as
// requests do, and reads them back: whatever form the manager gives an
// Update (for a sessionkit.MethodReader, the values listed and Set nil),
// every value arrives, whether it creates a session, overwrites a value
// at its length, deletes, clears, or merges into a session another
// request changed since it was read.
func testThroughManager(t *testing.T, p sessionkit.Provider) {
	v := newViaManager(t, p)
	want := func(what, cookie string, values map[string]string) {
		t.Helper()
		v.do(what, cookie, func(s *sessionkit.Store) {
			if s.IsNew() {
				t.Fatalf("%s: the session was not found", what)
			}
			if keys := s.Keys(); len(keys) != len(values) {
				t.Errorf("%s: keys %q, want %d", what, keys, len(values))
			}
			for k, v := range values {
				if got, err := s.GetString(k); err != nil || got != v {
					t.Errorf("%s: %s = %q (%v), want %q", what, k, got, err, v)
				}
			}
		})
	}
	cookie := v.do("create", "", func(s *sessionkit.Store) {
		s.Set("a", "1")
		s.Set("b", "two")
	})
	if cookie == "" {
		t.Fatal("create: the response sets no session cookie")
	}
	want("after create", cookie, map[string]string{"a": "1", "b": "two"})
	v.do("overwrite at the same length", cookie, func(s *sessionkit.Store) {
		if _, err := s.GetString("b"); err != nil {
			t.Fatal(err)
		}
		s.Set("b", "TWO")
	})
	want("after the overwrite", cookie, map[string]string{"a": "1", "b": "TWO"})
	v.do("delete, add and grow", cookie, func(s *sessionkit.Store) {
		s.Delete("a")
		s.Set("c", strings.Repeat("c", 300))
		s.Set("b", "three")
	})
	want("after the delete", cookie, map[string]string{"b": "three", "c": strings.Repeat("c", 300)})
	v.do("clear", cookie, func(s *sessionkit.Store) {
		s.Clear()
		s.Set("d", "4")
	})
	want("after the clear", cookie, map[string]string{"d": "4"})

	// Two requests that loaded the session before either saved: the
	// second save meets a session the first changed since (its Base is
	// stale), so the provider merges, replacing the key both set.
	first, firstCtx := v.open("first overlapping request", cookie)
	second, secondCtx := v.open("second overlapping request", cookie)
	first.Set("d", "from the first")
	first.Set("e", "5")
	second.Set("d", "from the second, longer")
	second.Set("f", "6")
	if err := first.Save(firstCtx); err != nil {
		t.Fatalf("first overlapping request: save: %v", err)
	}
	if err := second.Save(secondCtx); err != nil {
		t.Fatalf("second overlapping request: save: %v", err)
	}
	want("after two overlapping requests", cookie, map[string]string{"d": "from the second, longer", "e": "5", "f": "6"})
}

// testRandomRequests runs a seeded random mix of requests through a
// manager, and checks every read, and every session after every step,
// against a model. Each request reads and writes integers whose encodings
// grow and shrink, and strings, sometimes at their stored length (the
// manager's patched write) and sometimes not; sets and reads a flash;
// deletes and clears; now and then destroys or regenerates its session;
// saves once or twice; and one time in three a second request of the same
// session overlaps it, loaded before either saves, so saves meet sessions
// changed, moved or ended since they were read. The model is the manager's
// promise: a request reads the session as it loaded it plus its own
// changes; a save applies only the changes made since the request's last
// save (a clear, then deletions, then values) to the session as stored, so
// keys another request wrote meanwhile keep its values; a save of changes
// to a session another request ended (destroyed, or moved to a new ID)
// fails with sessionkit.ErrNotFound and writes nothing; and an ended
// session's ID never finds a session again.
func testRandomRequests(t *testing.T, p sessionkit.Provider) {
	randomRequests(t, 0, newViaManager(t, p))
}

// testSharedRandomRequests is testRandomRequests with every request
// served by one of two instances over one store, as a fleet's load
// balancer sends them: overlapping requests of one session often go to
// different instances. An instance may take SharedLag to see what the
// other wrote, so a request starts, and a check passes, once its instance
// sees the session as the model says, within SharedLag; a save to a
// session the other instance ended must fail at once all the same.
func testSharedRandomRequests(t *testing.T, a, b sessionkit.Provider) {
	randomRequests(t, SharedLag, newViaManager(t, a), newViaManager(t, b))
}

// randomRequests runs testRandomRequests's steps, each request through
// one of vs, and lets an instance take up to lag to see the session as
// the model says.
func randomRequests(t *testing.T, lag time.Duration, vs ...*viaManager) {
	rng := rand.New(rand.NewPCG(5, 11))
	pick := func() *viaManager { return vs[rng.IntN(len(vs))] }
	var sessions []*modelSession
	live := func() []*modelSession {
		var l []*modelSession
		for _, ms := range sessions {
			if ms.alive {
				l = append(l, ms)
			}
		}
		return l
	}
	for step := range 400 {
		for len(live()) < 3 {
			ms := &modelSession{values: map[string]any{"n1": 1, "s1": "one"}, alive: true}
			ms.cookie = pick().do("create", "", func(s *sessionkit.Store) {
				for k, x := range ms.values {
					s.Set(k, x)
				}
			})
			sessions = append(sessions, ms)
		}
		l := live()
		ms := l[rng.IntN(len(l))]
		reqs := []*modelRequest{openModelRequest(t, pick(), ms, lag, step)}
		if rng.IntN(3) == 0 {
			reqs = append(reqs, openModelRequest(t, pick(), ms, lag, step))
		}
		// The requests' work and saves, interleaved at random.
		for pending := len(reqs); pending > 0; {
			r := reqs[rng.IntN(len(reqs))]
			if r.done {
				continue
			}
			for range 1 + rng.IntN(3) {
				if created := r.op(t, rng, step); created != nil {
					sessions = append(sessions, created)
				}
			}
			if rng.IntN(3) > 0 {
				created, ended := r.save(t, step)
				if created != nil {
					sessions = append(sessions, created)
				}
				if ended || rng.IntN(4) > 0 {
					r.done = true
					pending--
				}
			}
		}
		for _, ms := range sessions {
			checkSession(t, pick(), ms, lag, step)
		}
	}
}

// checkSession fails t unless a request through v finds ms as the model
// says (within lag): its values if it is alive, nothing if it ended.
func checkSession(t *testing.T, v *viaManager, ms *modelSession, lag time.Duration, step int) {
	t.Helper()
	poll(t, lag, fmt.Sprint("step ", step), func() (err error) {
		v.do("check", ms.cookie, func(s *sessionkit.Store) {
			switch {
			case !ms.alive && !s.IsNew():
				err = fmt.Errorf("an ended session's ID found a session holding %q", s.Keys())
			case ms.alive && s.IsNew():
				err = errors.New("a session was not found")
			case ms.alive:
				err = viewError(s, ms.values)
			}
		})
		return err
	})
}

// modelSession is the model of one session: what it holds, and whether
// it is still alive under the ID its cookie holds.
type modelSession struct {
	cookie string
	values map[string]any
	alive  bool
}

// modelRequest is one open request of testRandomRequests and what the
// model says of it: the session its Store refers to (nil for a new one,
// after Destroy), the session as it reads it, and the changes its next
// save sends.
type modelRequest struct {
	v       *viaManager
	s       *sessionkit.Store
	ctx     *fasthttp.RequestCtx
	sess    *modelSession
	view    map[string]any
	cleared bool
	deleted map[string]bool
	set     map[string]any
	done    bool
}

// openModelRequest starts a request of ms through v, once v finds ms as
// the model says (within lag).
func openModelRequest(t *testing.T, v *viaManager, ms *modelSession, lag time.Duration, step int) *modelRequest {
	t.Helper()
	var r *modelRequest
	poll(t, lag, fmt.Sprint("step ", step), func() error {
		s, ctx, err := v.start(ms.cookie)
		switch {
		case err != nil:
			return fmt.Errorf("start: %w", err)
		case s.IsNew():
			err = errors.New("start: the session was not found")
		default:
			err = viewError(s, ms.values)
		}
		if err != nil {
			_ = s.Close()
			return err
		}
		r = &modelRequest{v: v, s: s, ctx: ctx, sess: ms, view: maps.Clone(ms.values), deleted: map[string]bool{}, set: map[string]any{}}
		return nil
	})
	return r
}

// modelKeys are the keys the random requests use: n* hold integers, s*
// strings, and f1 is a flash's key (which Keys does not list).
var modelKeys = []string{"n1", "n2", "s1", "s2", "f1"}

// op does one random operation of r, checking what it reads. It returns
// the session a Regenerate moved r's session to, which the model then
// holds too.
func (r *modelRequest) op(t *testing.T, rng *rand.Rand, step int) *modelSession {
	t.Helper()
	k := modelKeys[rng.IntN(len(modelKeys))]
	switch n := rng.IntN(60); {
	case n == 0:
		if err := r.s.Destroy(r.ctx); err != nil {
			t.Fatalf("step %d: destroy: %v", step, err)
		}
		if r.sess != nil {
			r.sess.alive = false
		}
		r.detach()
	case n == 1:
		err := r.s.Regenerate(r.ctx)
		switch {
		case r.sess == nil:
			if err != nil {
				t.Fatalf("step %d: regenerate a new session: %v", step, err)
			}
		case !r.sess.alive:
			if !errors.Is(err, sessionkit.ErrNotFound) {
				t.Fatalf("step %d: regenerate a session another request ended: %v, want ErrNotFound", step, err)
			}
			r.detach()
		case err != nil:
			t.Fatalf("step %d: regenerate: %v", step, err)
		default:
			moved := &modelSession{cookie: r.v.cookieOf(r.ctx), values: r.sess.values, alive: true}
			if moved.cookie == r.sess.cookie {
				t.Fatalf("step %d: regenerate kept the session's ID", step)
			}
			r.sess.alive, r.sess = false, moved
			return moved
		}
	case n < 3:
		r.s.Clear()
		clear(r.view)
		clear(r.deleted)
		clear(r.set)
		r.cleared = true
	case n < 9:
		if k[0] == 'f' {
			r.s.ClearFlashes()
		} else {
			r.s.Delete(k)
		}
		delete(r.view, k)
		delete(r.set, k)
		r.deleted[k] = true
	case n < 21:
		if err := viewError(r.s, r.view); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
	case k[0] == 'f' && n%2 == 0:
		// A flash is read once: GetFlash returns it and removes it.
		old, ok := r.view[k]
		if got := r.s.GetFlash(k); (got != nil) != ok || ok && got != old {
			t.Fatalf("step %d: GetFlash(%s) = %v; the request's view holds %v (%v)", step, k, got, old, ok)
		}
		if ok {
			delete(r.view, k)
			delete(r.set, k)
			r.deleted[k] = true
		}
	case k[0] == 'f':
		x := strings.Repeat(string(rune('a'+rng.IntN(26))), 1+rng.IntN(20))
		r.s.SetFlash(k, x)
		r.view[k] = x
		r.set[k] = x
		delete(r.deleted, k)
	default:
		// Read the value first, as a handler updating it does: that is
		// what lets the manager patch the write in place.
		old, ok := r.view[k]
		var x any
		if k[0] == 'n' {
			got, err := r.s.GetInt(k)
			if ok != (err == nil) || ok && got != old {
				t.Fatalf("step %d: GetInt(%s) = %d, %v; the request's view holds %v (%v)", step, k, got, err, old, ok)
			}
			x = nextInt(rng, got)
		} else {
			got, err := r.s.GetString(k)
			if ok != (err == nil) || ok && got != old {
				t.Fatalf("step %d: GetString(%s) = %q, %v; the request's view holds %q (%v)", step, k, got, err, old, ok)
			}
			size := rng.IntN(40)
			if ok && rng.IntN(2) == 0 {
				size = len(got)
			}
			x = strings.Repeat(string(rune('a'+rng.IntN(26))), size)
		}
		r.s.Set(k, x)
		r.view[k] = x
		r.set[k] = x
		delete(r.deleted, k)
	}
	return nil
}

// detach makes r's Store, as Destroy does, hold a new and empty session.
func (r *modelRequest) detach() {
	r.sess = nil
	clear(r.view)
	r.cleared = false
	clear(r.deleted)
	clear(r.set)
}

// nextInt returns a new value for an integer key holding n: often one
// of the same encoded length, often one across a boundary of the
// encoding's lengths.
func nextInt(rng *rand.Rand, n int) int {
	switch rng.IntN(4) {
	case 0:
		return n + 1
	case 1:
		return n - 1
	case 2:
		return []int{0, 63, 64, -64, -65, 8191, 8192, 1 << 20, -(1 << 40)}[rng.IntN(9)]
	}
	return rng.IntN(1<<16) - 1<<15
}

// save saves r and applies the changes it sent to the model: to r's
// session, or, for a Store holding a new session that was given values, a
// session of its own, which it returns. It reports whether the save
// failed as the model says it must, for a session another request ended,
// which ends r.
func (r *modelRequest) save(t *testing.T, step int) (created *modelSession, ended bool) {
	t.Helper()
	err := r.s.Save(r.ctx)
	changed := r.cleared || len(r.deleted) > 0 || len(r.set) > 0
	switch {
	case r.sess == nil:
		if err != nil {
			t.Fatalf("step %d: save a new session: %v", step, err)
		}
		if len(r.set) > 0 {
			created = &modelSession{cookie: r.v.cookieOf(r.ctx), values: maps.Clone(r.set), alive: true}
			r.sess = created
		}
	case !r.sess.alive && changed:
		if !errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatalf("step %d: save to a session another request ended: %v, want ErrNotFound", step, err)
		}
		// The Store keeps its changes (the save may be retried), and
		// the model none of them.
		return nil, true
	case err != nil:
		t.Fatalf("step %d: save: %v", step, err)
	default:
		if r.cleared {
			clear(r.sess.values)
		}
		for k := range r.deleted {
			delete(r.sess.values, k)
		}
		maps.Copy(r.sess.values, r.set)
	}
	r.cleared = false
	clear(r.deleted)
	clear(r.set)
	return created, false
}

// viewError describes how what s holds differs from want, or returns nil.
func viewError(s *sessionkit.Store, want map[string]any) error {
	var wantKeys []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if k[0] != 'f' {
			wantKeys = append(wantKeys, k)
		}
	}
	if keys := s.Keys(); !slices.Equal(keys, wantKeys) {
		return fmt.Errorf("keys %q, want %q", keys, wantKeys)
	}
	for _, k := range modelKeys {
		// A flash is only looked at here: reading it would remove it.
		if _, ok := want[k]; k[0] == 'f' && s.HasFlash(k) != ok {
			return fmt.Errorf("HasFlash(%s) = %v, want %v", k, !ok, ok)
		}
	}
	for k, x := range want {
		var got any
		var err error
		switch k[0] {
		case 'f':
			continue
		case 'n':
			got, err = s.GetInt(k)
		default:
			got, err = s.GetString(k)
		}
		if err != nil || got != x {
			return fmt.Errorf("%s = %v (%v), want %v", k, got, err, x)
		}
	}
	return nil
}
