// Command sessionkit-load measures what sessions cost a real fasthttp
// server end to end. It starts a server on a random loopback port with
// three handlers:
//
//	bare  no session: answer "ok"
//	W1    valid cookie, read one string, save unchanged
//	W2    valid cookie, increment an int, save
//
// preloads sessions on the memory provider, and drives each handler in
// turn (bare, W1, W2, bare, W1, W2, ...) with a load generator on
// fasthttp's HostClient for a fixed duration, then prints requests per
// second, their medians over the rounds and the ratios W1/bare and
// W2/bare. Every request carries a session cookie, the bare ones too, so
// the handlers differ only in what they do.
//
// With -redis ADDR the sessions live on that Redis server instead, and the
// bare handler does one plain go-redis GET per request: the yardstick for
// a session layer that must itself talk to Redis once per request. bare
// reads one key, always the same, which Redis answers from its hottest
// memory; a fourth handler, keyed, reads a key of its own per session
// (named after the request's cookie) holding as many bytes as a session,
// so that it reads the same amount of Redis's memory as W1 does, and the
// tool prints the ratios to it too. Its keys are removed at the end.
//
// With -nethttp the server is net/http's instead, and W1 and W2 go
// through Session.Middleware: the same load generator, sessions and
// checks, for the net/http side's cost end to end.
//
// It talks to 127.0.0.1 only (and to the -redis server), and stops by
// itself after rounds × 3 × duration (plus a short warm-up), or earlier
// when a run reaches -max-requests.
//
//	go run ./cmd/sessionkit-load -duration 5s -conns 32 -rounds 3
//	go run ./cmd/sessionkit-load -redis 127.0.0.1:6379
//	go run ./cmd/sessionkit-load -nethttp
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	skredis "github.com/sessionkit/sessionkit/redis"
	"github.com/valyala/fasthttp"
)

const cookieName = "sessionid"

var handlers = []string{"bare", "W1", "W2"}

// keyedValue is what each of keyed's keys holds: as many bytes as a
// preloaded session's hash (its fields and values).
var keyedValue = string(make([]byte, 64))

func main() {
	duration := flag.Duration("duration", 5*time.Second, "length of each run")
	conns := flag.Int("conns", 32, "concurrent connections (one client goroutine each)")
	rounds := flag.Int("rounds", 3, "rounds of bare, W1, W2")
	sessions := flag.Int("sessions", 10000, "preloaded sessions, used round-robin")
	warmup := flag.Duration("warmup", time.Second, "unmeasured run of each handler before the rounds (0 skips)")
	maxRequests := flag.Int64("max-requests", 50_000_000, "stop a run after this many requests")
	redisAddr := flag.String("redis", "", "keep sessions on this Redis server; bare then does one plain GET")
	localCache := flag.Bool("local-cache", false, "with -redis, turn on the redis provider's LocalCache")
	only := flag.String("only", "", "run only this handler in the rounds (bare, W1 or W2), e.g. to profile it")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the rounds (client and server both) to this file")
	netHTTP := flag.Bool("nethttp", false, "serve with net/http, W1 and W2 through Session.Middleware, instead of fasthttp")
	flag.Parse()
	if *duration <= 0 || *conns <= 0 || *rounds <= 0 || *sessions <= 0 || *maxRequests <= 0 {
		fail(errors.New("-duration, -conns, -rounds, -sessions and -max-requests must be positive"))
	}
	if *duration > 5*time.Minute {
		fail(errors.New("-duration is capped at 5m"))
	}

	m := sessionkit.New(sessionkit.Config{CookieName: cookieName})
	var rdb *redis.Client
	var prefix string
	if *redisAddr != "" {
		rdb = redis.NewClient(&redis.Options{Addr: *redisAddr, PoolSize: *conns})
		defer rdb.Close()
		prefix = "sessionkit-load:" + sessionkit.NewID()[:8] + ":"
		p, err := skredis.New(context.Background(), skredis.Config{Client: rdb, Prefix: prefix, LocalCache: *localCache})
		if err != nil {
			fail(err)
		}
		if err := m.UseProvider(p); err != nil {
			fail(err)
		}
		if err := rdb.Set(context.Background(), prefix+"plain", "ok", time.Hour).Err(); err != nil {
			fail(err)
		}
		defer cleanRedis(rdb, prefix)
	} else if err := m.UseProvider(memory.New(memory.Config{})); err != nil {
		fail(err)
	}
	defer m.Close()
	handler := newHandler(m, rdb, prefix)

	ids, err := preload(handler, *sessions)
	if err != nil {
		fail(err)
	}
	if rdb != nil {
		if err := preloadKeyed(rdb, prefix, ids); err != nil {
			fail(err)
		}
		handlers = []string{"bare", "keyed", "W1", "W2"}
	}
	if *only != "" && !slices.Contains(handlers, *only) {
		fail(fmt.Errorf("-only %q: not one of %v", *only, handlers))
	}

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	// Sessions are preloaded, and their counters summed, through the
	// fasthttp handler in process either way: one manager serves both.
	var shutdown func() error
	served := make(chan error, 1)
	if *netHTTP {
		srv := &http.Server{Handler: newHTTPHandler(m, rdb, prefix), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				served <- err
				return
			}
			served <- nil
		}()
		shutdown = func() error { return srv.Shutdown(context.Background()) }
	} else {
		srv := &fasthttp.Server{Handler: handler, Name: "sessionkit-load"}
		go func() { served <- srv.Serve(ln) }()
		shutdown = srv.Shutdown
	}
	addr := ln.Addr().String()

	client := &fasthttp.HostClient{
		Addr:         addr,
		MaxConns:     *conns,
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		// No retries: a W2 request the server handled but whose answer
		// was lost must count as an error, not be sent again.
		MaxIdemponentCallAttempts: 1,
	}
	store := "memory provider; bare answers at once"
	if rdb != nil {
		store = "redis provider at " + *redisAddr + "; bare does one plain GET"
		if *localCache {
			store = "redis provider with LocalCache at " + *redisAddr + "; bare does one plain GET"
		}
	}
	server := "fasthttp"
	if *netHTTP {
		server = "net/http, W1 and W2 through Session.Middleware"
	}
	fmt.Printf("server http://%s (%s), %d connections, %s per run, %d rounds, %d sessions, %s, GOMAXPROCS=%d, %s\n\n",
		addr, server, *conns, *duration, *rounds, len(ids), store, runtime.GOMAXPROCS(0), runtime.Version())

	// w2OK counts the W2 requests answered 200, each of which added one
	// to a counter; w2Errs those that failed, which may or may not have.
	var w2OK, w2Errs int64
	if *warmup > 0 {
		for _, h := range handlers {
			res := load(client, h, ids, *conns, *warmup, *maxRequests)
			if h == "W2" {
				w2OK += res.ok
				w2Errs += res.errs
			}
		}
	}

	if *only != "" {
		handlers = []string{*only}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer f.Close()
	}
	rps := map[string][]float64{}
	fmt.Println("| round | handler | req/s | requests | errors |")
	fmt.Println("|--:|---|--:|--:|--:|")
	for r := 1; r <= *rounds; r++ {
		for _, h := range handlers {
			res := load(client, h, ids, *conns, *duration, *maxRequests)
			rps[h] = append(rps[h], res.rps())
			if h == "W2" {
				w2OK += res.ok
				w2Errs += res.errs
			}
			fmt.Printf("| %d | %s | %.0f | %d | %d |\n", r, h, res.rps(), res.ok, res.errs)
		}
	}

	pprof.StopCPUProfile()
	if err := shutdown(); err != nil {
		fail(err)
	}
	if err := <-served; err != nil {
		fail(err)
	}

	fmt.Println()
	_, keyed := rps["keyed"]
	if keyed {
		fmt.Println("| handler | median req/s | ratio to bare (median of per-round ratios) | ratio to keyed |")
		fmt.Println("|---|--:|--:|--:|")
	} else {
		fmt.Println("| handler | median req/s | ratio to bare (median of per-round ratios) |")
		fmt.Println("|---|--:|--:|")
	}
	for _, h := range handlers {
		fmt.Printf("| %s | %.0f | %.3f |", h, median(rps[h]), medianRatio(rps[h], rps["bare"]))
		if keyed {
			fmt.Printf(" %.3f |", medianRatio(rps[h], rps["keyed"]))
		}
		fmt.Println()
	}

	// Every W2 request answered 200 incremented one counter: the sum of
	// the counters tells whether any increment was lost.
	sum, err := sumCounters(handler, ids)
	if err != nil {
		fail(err)
	}
	fmt.Printf("\nW2 check: the counters sum to %d; W2 requests answered 200 (warm-up included): %d, failed: %d\n", sum, w2OK, w2Errs)
	switch {
	case sum < w2OK:
		fmt.Println("LOST UPDATES: fewer increments stored than acknowledged")
		os.Exit(1)
	case sum > w2OK+w2Errs:
		fmt.Println("MORE increments stored than requests sent")
		os.Exit(1)
	case sum > w2OK:
		fmt.Println("(the extra increments are failed requests the server handled after the client gave up on them)")
	}
}

type result struct {
	ok, errs int64
	elapsed  time.Duration
}

func (r result) rps() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// load drives path h with conns goroutines for d, or until max requests.
func load(client *fasthttp.HostClient, h string, ids []string, conns int, d time.Duration, max int64) result {
	var ok, errs, sent atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < conns; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + client.Addr + "/" + h)
			// Goroutine g uses the sessions g, g+conns, g+2·conns, ...: no
			// two requests for one session are ever in flight at once, so
			// every increment of W2 must be stored (two concurrent
			// increments of one key would both read the same value: a
			// session is not a counter service).
			k := g % len(ids)
			for time.Now().Before(deadline) && sent.Add(1) <= max {
				req.Header.SetCookie(cookieName, ids[k])
				if k += conns; k >= len(ids) {
					k = g % len(ids)
				}
				if err := client.Do(req, resp); err != nil || resp.StatusCode() != fasthttp.StatusOK {
					errs.Add(1)
					continue
				}
				ok.Add(1)
			}
		}(g)
	}
	wg.Wait()
	return result{ok: ok.Load(), errs: errs.Load(), elapsed: time.Since(start)}
}

// cleanRedis removes the run's keys. Errors are reported, not fatal.
func cleanRedis(rdb *redis.Client, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		if err := rdb.Del(ctx, keys[:n]...).Err(); err != nil {
			fmt.Fprintln(os.Stderr, "sessionkit-load: cleanup:", err)
			return
		}
		keys = keys[n:]
	}
	if err := iter.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "sessionkit-load: cleanup:", err)
	}
}

// newHandler serves the workloads on m. With rdb, bare reads the key
// prefix+"plain" and keyed the key of the request's cookie (see
// preloadKeyed).
func newHandler(m *sessionkit.Session, rdb *redis.Client, prefix string) fasthttp.RequestHandler {
	plainKey := prefix + "plain"
	return func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/bare":
			if rdb != nil {
				if err := rdb.Get(ctx, plainKey).Err(); err != nil {
					ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
					return
				}
			}
		case "/keyed":
			if rdb == nil { // keyed runs only with -redis
				ctx.Error("not found", fasthttp.StatusNotFound)
				return
			}
			if err := rdb.Get(ctx, keyedKey(prefix, string(ctx.Request.Header.Cookie(cookieName)))).Err(); err != nil {
				ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
				return
			}
		case "/W1":
			if !serveSession(m, ctx, func(s *sessionkit.Store) (int, error) {
				_, _ = s.GetString("name")
				return 0, nil
			}) {
				return
			}
		case "/W2":
			if !serveSession(m, ctx, func(s *sessionkit.Store) (int, error) {
				n, err := s.GetInt("n")
				if err != nil {
					// A lost session would restart the count: fail loudly.
					return fasthttp.StatusInternalServerError, err
				}
				s.Set("n", n+1)
				return 0, nil
			}) {
				return
			}
		case "/preload":
			if !serveSession(m, ctx, func(s *sessionkit.Store) (int, error) {
				s.Set("name", "sessionkit")
				s.Set("n", 0)
				return 0, nil
			}) {
				return
			}
		case "/n":
			var n int
			if serveSession(m, ctx, func(s *sessionkit.Store) (code int, err error) {
				n, err = s.GetInt("n")
				return fasthttp.StatusNotFound, err
			}) {
				ctx.SetBodyString(fmt.Sprint(n))
			}
			return
		default:
			ctx.Error("not found", fasthttp.StatusNotFound)
			return
		}
		ctx.SetBodyString("ok")
	}
}

// newHTTPHandler is newHandler for net/http: bare and keyed as there,
// W1 and W2 through m's Middleware, which starts the session and saves it.
func newHTTPHandler(m *sessionkit.Session, rdb *redis.Client, prefix string) http.Handler {
	plainKey := prefix + "plain"
	work := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := m.FromContext(r.Context())
		switch r.URL.Path {
		case "/W1":
			_, _ = s.GetString("name")
		case "/W2":
			n, err := s.GetInt("n")
			if err != nil {
				// A lost session would restart the count: fail loudly.
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			s.Set("n", n+1)
		}
		_, _ = io.WriteString(w, "ok")
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bare":
			if rdb != nil {
				if err := rdb.Get(r.Context(), plainKey).Err(); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
			}
			_, _ = io.WriteString(w, "ok")
		case "/keyed":
			if rdb == nil { // keyed runs only with -redis
				http.NotFound(w, r)
				return
			}
			c, err := r.Cookie(cookieName)
			if err == nil {
				err = rdb.Get(r.Context(), keyedKey(prefix, c.Value)).Err()
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, "ok")
		case "/W1", "/W2":
			work.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// serveSession starts the request's session, runs work on it and saves
// it. A failure answers with an error, with work's status code for work's
// own error and 500 otherwise, and serveSession reports false.
func serveSession(m *sessionkit.Session, ctx *fasthttp.RequestCtx, work func(*sessionkit.Store) (int, error)) bool {
	s, err := m.Start(ctx)
	if err == nil {
		code, werr := work(s)
		if werr != nil {
			ctx.Error(werr.Error(), code)
			return false
		}
		err = s.Save(ctx)
	}
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
		return false
	}
	return true
}

// serveInProcess runs one request through handler without the network.
func serveInProcess(handler fasthttp.RequestHandler, path, cookie string) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	ctx.Request.SetRequestURI(path)
	if cookie != "" {
		ctx.Request.Header.SetCookie(cookieName, cookie)
	}
	handler(&ctx)
	return &ctx
}

// preload creates n sessions holding "name" and "n" = 0.
func preload(handler fasthttp.RequestHandler, n int) ([]string, error) {
	ids := make([]string, n)
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	for i := range ids {
		ctx := serveInProcess(handler, "/preload", "")
		if ctx.Response.StatusCode() != fasthttp.StatusOK {
			return nil, fmt.Errorf("preload: %s", ctx.Response.Body())
		}
		if err := c.ParseBytes(ctx.Response.Header.PeekCookie(cookieName)); err != nil {
			return nil, fmt.Errorf("preload: %w", err)
		}
		ids[i] = string(c.Value())
		if ids[i] == "" {
			return nil, errors.New("preload: no session cookie")
		}
	}
	return ids, nil
}

// keyedKey is the key keyed reads for the session id.
func keyedKey(prefix, id string) string { return prefix + "plain:" + id }

// preloadKeyed writes keyed's key for every session.
func preloadKeyed(rdb *redis.Client, prefix string, ids []string) error {
	ctx := context.Background()
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, id := range ids[:n] {
				p.Set(ctx, keyedKey(prefix, id), keyedValue, time.Hour)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("preload keyed: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

// sumCounters reads every session's counter.
func sumCounters(handler fasthttp.RequestHandler, ids []string) (int64, error) {
	var sum int64
	for _, id := range ids {
		ctx := serveInProcess(handler, "/n", id)
		if ctx.Response.StatusCode() != fasthttp.StatusOK {
			return 0, fmt.Errorf("session %s: %s", id, ctx.Response.Body())
		}
		var n int64
		if _, err := fmt.Sscan(string(ctx.Response.Body()), &n); err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// medianRatio is the median over the rounds of a[i] / b[i].
func medianRatio(a, b []float64) float64 {
	ratios := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		ratios = append(ratios, a[i]/b[i])
	}
	return median(ratios)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sessionkit-load:", err)
	os.Exit(1)
}
