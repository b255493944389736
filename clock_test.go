package sessionkit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/valyala/fasthttp"
)

// clockProvider records the time sessionkit.Now gives inside each call the
// manager makes.
type clockProvider struct {
	*memory.Provider
	mu           sync.Mutex
	gets, writes []time.Time
}

func (c *clockProvider) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	c.mu.Lock()
	c.gets = append(c.gets, sessionkit.Now(ctx))
	c.mu.Unlock()
	return c.Provider.Get(ctx, id)
}

func (c *clockProvider) Update(ctx context.Context, id string, u sessionkit.Update) error {
	c.mu.Lock()
	c.writes = append(c.writes, sessionkit.Now(ctx))
	c.mu.Unlock()
	return c.Provider.Update(ctx, id, u)
}

func newClockManager(t *testing.T) (*sessionkit.Session, *clockProvider) {
	m := sessionkit.New(sessionkit.Config{})
	p := &clockProvider{Provider: memory.New(memory.Config{})}
	if err := m.UseProvider(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, p
}

// On fasthttp one request reads the clock once: the provider's Get and
// Update see the instant the manager used, not later readings.
func TestOneClockReadPerFasthttpRequest(t *testing.T) {
	m, p := newClockManager(t)
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("n", 1) }).cookieVal
	p.gets, p.writes = nil, nil
	res := serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		time.Sleep(2 * time.Millisecond) // a later clock reading would differ
		s.Set("n", 2)
	})
	if res.saveErr != nil {
		t.Fatal(res.saveErr)
	}
	if len(p.gets) != 1 || len(p.writes) != 1 {
		t.Fatalf("got %d gets and %d writes, want 1 and 1", len(p.gets), len(p.writes))
	}
	if !p.gets[0].Equal(p.writes[0]) {
		t.Errorf("Get saw %v and Update %v: the request read the clock twice", p.gets[0], p.writes[0])
	}
}

// On net/http a write is stamped with the time of the Save, so a long
// request cannot store a deadline that was already near when it started.
func TestNetHTTPWriteUsesSaveTime(t *testing.T) {
	m, p := newClockManager(t)
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("n", 1) }).cookieVal
	p.gets, p.writes = nil, nil
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: "sessionid", Value: id})
	s, err := m.StartHTTP(rec, r)
	if err != nil {
		t.Fatal(err)
	}
	s.Set("n", 2)
	const pause = 50 * time.Millisecond
	time.Sleep(pause)
	if err := s.Save(r.Context()); err != nil {
		t.Fatal(err)
	}
	if len(p.gets) != 1 || len(p.writes) != 1 {
		t.Fatalf("got %d gets and %d writes, want 1 and 1", len(p.gets), len(p.writes))
	}
	// Half the pause leaves room for the coarse clock's lag (see Now).
	if d := p.writes[0].Sub(p.gets[0]); d < pause/2 {
		t.Fatalf("write stamped %v after the load, want the time of the Save, %v later", d, pause)
	}
}

// Now without a request's time keeps up with the clock: never ahead of
// it, behind it by little, and moving while it is read continuously (the
// coarse clock's ticker running) as after a pause (the ticker stopped).
func TestWallNowTracksTheClock(t *testing.T) {
	bg := context.Background()
	check := func() time.Time {
		t.Helper()
		// Round(0) drops the monotonic readings: the wall clocks are compared.
		before := time.Now().Round(0)
		got := sessionkit.Now(bg).Round(0)
		after := time.Now().Round(0)
		// The lag allowed is far above the coarse clock's tick: this
		// catches a clock that is stuck or wrong, not a busy machine.
		if got.Before(before.Add(-100*time.Millisecond)) || got.After(after) {
			t.Fatalf("Now = %v, outside [%v - 100ms, %v]", got, before, after)
		}
		return got
	}
	first := check()
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
		check()
	}
	if d := check().Sub(first); d < 50*time.Millisecond {
		t.Fatalf("read continuously for 100ms, Now moved %v", d)
	}
	before := check()
	time.Sleep(20 * time.Millisecond)
	if d := check().Sub(before); d < 20*time.Millisecond {
		t.Fatalf("after a pause of 20ms, Now moved %v", d)
	}
}

// keepingProvider keeps the context of every call, as database/sql's Rows
// do (a goroutine waits on the query's context until the rows close, and
// may first look at it after the call has returned).
//
// It embeds the memory provider as a plain sessionkit.Provider: keeping
// contexts, it must not pass for a Copier, which promises to keep none.
type keepingProvider struct {
	sessionkit.Provider
	mu   sync.Mutex
	ctxs []context.Context
}

func (k *keepingProvider) keep(ctx context.Context) {
	k.mu.Lock()
	k.ctxs = append(k.ctxs, ctx)
	k.mu.Unlock()
}

func (k *keepingProvider) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	k.keep(ctx)
	return k.Provider.Get(ctx, id)
}

func (k *keepingProvider) Update(ctx context.Context, id string, u sessionkit.Update) error {
	k.keep(ctx)
	return k.Provider.Update(ctx, id, u)
}

type requestKey struct{}

// A context a provider call got stays what it was after the request
// ends: later requests, which reuse the Store's recycled state, must not
// change what it answers (nor make it panic, as a context left empty by
// the recycling did inside database/sql).
func TestProviderContextOutlivesTheRequest(t *testing.T) {
	m := sessionkit.New(sessionkit.Config{})
	p := &keepingProvider{Provider: memory.New(memory.Config{})}
	if err := m.UseProvider(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	handle := func(i int, cookie string, work func(s *sessionkit.Store)) string {
		ctx := context.WithValue(context.Background(), requestKey{}, i)
		r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: m.Config().CookieName, Value: cookie})
		}
		w := httptest.NewRecorder()
		s, err := m.StartHTTP(w, r)
		if err != nil {
			t.Fatal(err)
		}
		work(s)
		if err := s.Save(ctx); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		for _, c := range w.Result().Cookies() {
			if c.Name == m.Config().CookieName {
				return c.Value
			}
		}
		return cookie
	}
	id := handle(0, "", func(s *sessionkit.Store) { s.Set("n", 0) })
	for i := 1; i <= 20; i++ {
		handle(i, id, func(s *sessionkit.Store) {
			n, _ := s.GetInt("n")
			s.Set("n", n+1)
		})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Each request made two calls, a Get and an Update (the first request
	// an Update only), in order.
	if len(p.ctxs) != 41 {
		t.Fatalf("%d provider calls, want 41", len(p.ctxs))
	}
	for j, ctx := range p.ctxs {
		want := (j + 1) / 2
		if got, _ := ctx.Value(requestKey{}).(int); got != want || ctx.Err() != nil {
			t.Fatalf("call %d: the context now says it belongs to request %d (err %v), want request %d", j, got, ctx.Err(), want)
		}
		_ = ctx.Done()
		if sessionkit.Now(ctx).IsZero() {
			t.Fatalf("call %d: Now of a kept context is zero", j)
		}
	}
}

// A request that loaded its session through a Copier, which shares one
// context among the state's requests, and saves after the manager's
// provider was replaced by one that keeps contexts, hands that provider a
// context of the request's own: after the request, it still answers for
// the request. (On fasthttp a load and a save at one instant share their
// context, which is the case that matters.)
func TestKeptContextAfterProviderSwap(t *testing.T) {
	m := sessionkit.New(sessionkit.Config{})
	if err := m.UseProvider(memory.New(memory.Config{})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("n", 0) }).cookieVal
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	ctx.Request.Header.SetCookie(m.Config().CookieName, id)
	s, err := m.Start(&ctx)
	if err != nil || s.IsNew() {
		t.Fatalf("start: new %v, %v", s.IsNew(), err)
	}
	keeping := &keepingProvider{Provider: memory.New(memory.Config{})}
	if err := m.UseProvider(keeping); err != nil {
		t.Fatal(err)
	}
	s.Set("n", 1)
	// The session is not in the new provider: the save fails, after the
	// provider kept the context it was given.
	if err := s.Save(&ctx); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("save = %v, want ErrNotFound", err)
	}
	_ = s.Close()
	keeping.mu.Lock()
	defer keeping.mu.Unlock()
	if len(keeping.ctxs) != 1 {
		t.Fatalf("%d calls, want 1", len(keeping.ctxs))
	}
	kept := keeping.ctxs[0]
	if sessionkit.Now(kept).IsZero() || kept.Err() != nil {
		t.Fatalf("the kept context was reset with the request: Now %v", sessionkit.Now(kept))
	}
}

// checkingCopier is the memory provider (a Copier, by embedding) checking
// that each call's context answers for the request that made it: the
// session under id belongs to the request numbered owner[id].
type checkingCopier struct {
	*memory.Provider
	owner map[string]int // written before the requests start
	bad   atomic.Int64
}

func (c *checkingCopier) check(ctx context.Context, id string) {
	if got, _ := ctx.Value(requestKey{}).(int); got != c.owner[id] || sessionkit.Now(ctx).IsZero() {
		c.bad.Add(1)
	}
}

func (c *checkingCopier) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	c.check(ctx, id)
	return c.Provider.Get(ctx, id)
}

func (c *checkingCopier) Update(ctx context.Context, id string, u sessionkit.Update) error {
	if !u.Create {
		c.check(ctx, id)
	}
	return c.Provider.Update(ctx, id, u)
}

// A Copier's requests share their state's context one after another, never
// at once: with requests on many goroutines, every provider call still
// sees its own request's context.
func TestCopierContextsDoNotCross(t *testing.T) {
	m := sessionkit.New(sessionkit.Config{})
	p := &checkingCopier{Provider: memory.New(memory.Config{}), owner: map[string]int{}}
	if err := m.UseProvider(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	const workers, requests = 8, 300
	ids := make([]string, workers)
	for w := range ids {
		ids[w] = serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("n", 0) }).cookieVal
		p.owner[ids[w]] = w + 1
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range requests {
				ctx := context.WithValue(context.Background(), requestKey{}, w+1)
				r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
				r.AddCookie(&http.Cookie{Name: m.Config().CookieName, Value: ids[w]})
				s, err := m.StartHTTP(httptest.NewRecorder(), r)
				if err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					n, _ := s.GetInt("n")
					s.Set("n", n+1)
				}
				if err := s.Save(ctx); err != nil {
					t.Error(err)
				}
				_ = s.Close()
			}
		}()
	}
	wg.Wait()
	if n := p.bad.Load(); n != 0 {
		t.Fatalf("%d provider calls saw another request's context", n)
	}
}

var nowSink time.Time

// BenchmarkNow is Now without a request time (the coarse clock), to read
// against BenchmarkTimeNow, the full reading it replaces, in the same run.
func BenchmarkNow(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		nowSink = sessionkit.Now(ctx)
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		nowSink = time.Now()
	}
}

// BenchmarkNowParallel checks that readers on several cores do not pass
// the coarse clock's cache line around.
func BenchmarkNowParallel(b *testing.B) {
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		var t time.Time
		for pb.Next() {
			t = sessionkit.Now(ctx)
		}
		_ = t
	})
}
