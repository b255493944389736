package compare

import (
	"crypto/rand"
	"fmt"
	"sync"

	"github.com/valyala/fasthttp"
)

// FixationResult tells whether a library adopts a session ID chosen by
// the client (session fixation).
type FixationResult struct {
	Lib string `json:"lib"`
	// AttackerID is the cookie sent: 32 characters of [A-Za-z0-9], a
	// well-formed ID for every library compared.
	AttackerID string `json:"attacker_id"`
	// ResponseCookie is the session cookie the response set ("" if none).
	ResponseCookie string `json:"response_cookie"`
	// StoredUnderAttackerID is true when a second request carrying the
	// attacker's cookie sees the value the first one set.
	StoredUnderAttackerID bool `json:"stored_under_attacker_id"`
	// Adopted is the verdict: the response cookie is the attacker's ID, or
	// the session was stored under it.
	Adopted bool   `json:"adopted"`
	Err     string `json:"error,omitempty"`
}

// open makes an instance of lib holding n preloaded sessions; the caller
// closes it.
func open(lib Lib, n int) (Instance, []string, error) {
	inst, err := lib.New()
	if err != nil {
		return nil, nil, err
	}
	ids, err := Preload(inst, n)
	if err != nil {
		inst.Close()
		return nil, nil, err
	}
	return inst, ids, nil
}

// catch, deferred, turns a panic of the check into *msg.
func catch(msg *string) {
	if r := recover(); r != nil {
		*msg = fmt.Sprint(r)
	}
}

// conn is one client connection to an instance of a library under check,
// over fasthttp or net/http: the checks below are written once, for both.
type conn interface {
	// serve sends a request of op with the session cookie id ("" for
	// none), calling afterStart (if not nil) once the library has loaded
	// the session, and returns op's number and the session ID the
	// response's cookie sets ("" if none).
	serve(id string, op Op, afterStart func()) (n int, setID string, err error)
}

// subject is a library under check: it opens a fresh instance, returning
// a way to make connections to it and its close.
type subject struct {
	name string
	open func() (newConn func() conn, close func(), err error)
}

// fastConn is a conn on a fasthttp library: one reused RequestCtx.
type fastConn struct {
	inst Instance
	ctx  *fasthttp.RequestCtx
}

func (c fastConn) serve(id string, op Op, afterStart func()) (int, string, error) {
	Prepare(c.ctx, id)
	n, err := c.inst.ServeAfterStart(c.ctx, op, afterStart)
	return n, ResponseCookie(c.ctx), err
}

func fastSubject(lib Lib) subject {
	return subject{lib.Name, func() (func() conn, func(), error) {
		inst, err := lib.New()
		if err != nil {
			return nil, nil, err
		}
		return func() conn { return fastConn{inst, NewCtx()} }, inst.Close, nil
	}}
}

// preloadVia creates n sessions through c, as Preload does.
func preloadVia(c conn, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		_, id, err := c.serve("", OpPreload, nil)
		if err != nil {
			return nil, err
		}
		if id == "" {
			return nil, fmt.Errorf("preload: no session cookie in the response")
		}
		ids[i] = id
	}
	return ids, nil
}

// CheckFixation sends a request with an unknown, attacker-chosen session
// ID that sets a value, and reports whether the library kept that ID.
func CheckFixation(lib Lib) FixationResult { return checkFixation(fastSubject(lib)) }

func checkFixation(sub subject) (res FixationResult) {
	res.Lib = sub.name
	res.AttackerID = randomID()
	newConn, closeInst, err := sub.open()
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer closeInst()
	c := newConn()
	if _, res.ResponseCookie, err = c.serve(res.AttackerID, W3, nil); err != nil {
		res.Err = err.Error()
		return res
	}
	has, _, err := c.serve(res.AttackerID, OpHasName, nil)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.StoredUnderAttackerID = has == 1
	res.Adopted = res.ResponseCookie == res.AttackerID || res.StoredUnderAttackerID
	return res
}

// UpdatesResult tells whether increments survive when requests with
// different cookies arrive on a few reused RequestCtxs, as requests on a
// few keep-alive connections do in fasthttp's server.
type UpdatesResult struct {
	Lib      string `json:"lib"`
	Sessions int    `json:"sessions"`
	Passes   int    `json:"passes"`
	// Wrong is the number of sessions whose counter is not Passes at the
	// end (missing sessions included).
	Wrong int `json:"wrong"`
	// NewCookies counts W2 responses that set a cookie other than the one
	// sent: the library lost the session and started a new one.
	NewCookies int    `json:"new_cookies"`
	Example    string `json:"example,omitempty"`
	Panic      string `json:"panic,omitempty"`
	Err        string `json:"error,omitempty"`
}

// OK reports whether every update was kept.
func (r UpdatesResult) OK() bool {
	return r.Wrong == 0 && r.NewCookies == 0 && r.Panic == "" && r.Err == ""
}

// checkConns is how many connections (reused RequestCtxs) CheckUpdates
// spreads its requests over, one request each in turn. With a number of
// sessions that is not a multiple of it, a session's requests arrive on a
// different connection from one pass to the next, as they would in a
// server.
const checkConns = 3

// CheckUpdates preloads sessions, runs passes rounds of W2 over all of
// them, the requests taking checkConns connections in turn, then reads
// every counter back.
func CheckUpdates(lib Lib, sessions, passes int) UpdatesResult {
	return checkUpdates(fastSubject(lib), sessions, passes)
}

func checkUpdates(sub subject, sessions, passes int) (res UpdatesResult) {
	res.Lib, res.Sessions, res.Passes = sub.name, sessions, passes
	defer catch(&res.Panic)
	newConn, closeInst, err := sub.open()
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer closeInst()
	var conns [checkConns]conn
	for i := range conns {
		conns[i] = newConn()
	}
	ids, err := preloadVia(conns[0], sessions)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	req := 0
	next := func() conn {
		req++
		return conns[req%checkConns]
	}
	for p := 0; p < passes; p++ {
		for _, id := range ids {
			_, set, err := next().serve(id, W2, nil)
			if err != nil {
				res.Err = err.Error()
				return res
			}
			if set != "" && set != id {
				res.NewCookies++
			}
		}
	}
	for _, id := range ids {
		n, _, err := next().serve(id, OpReadN, nil)
		if err != nil || n != passes {
			res.Wrong++
			if res.Example == "" {
				if err != nil {
					res.Example = fmt.Sprintf("session %s: %v", id, err)
				} else {
					res.Example = fmt.Sprintf("session %s: n = %d, want %d", id, n, passes)
				}
			}
		}
	}
	return res
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

// MergeResult tells whether two concurrent requests of one session that
// set different keys both persist.
type MergeResult struct {
	Lib      string `json:"lib"`
	Sessions int    `json:"sessions"`
	// Lost is the number of sessions that ended with one of the two keys
	// missing.
	Lost  int    `json:"lost"`
	Panic string `json:"panic,omitempty"`
	Err   string `json:"error,omitempty"`
}

// OK reports whether both keys persisted in every session.
func (r MergeResult) OK() bool { return r.Lost == 0 && r.Panic == "" && r.Err == "" }

// CheckMerge sends, for each of n sessions, two requests at once: one sets
// "a", the other "b", and neither does its work (or saves) before both
// have started their session. Then it counts the sessions that kept both.
func CheckMerge(lib Lib, n int) MergeResult { return checkMerge(fastSubject(lib), n) }

func checkMerge(sub subject, n int) (res MergeResult) {
	res.Lib, res.Sessions = sub.name, n
	defer catch(&res.Panic)
	newConn, closeInst, err := sub.open()
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer closeInst()
	conns := [2]conn{newConn(), newConn()}
	ids, err := preloadVia(conns[0], n)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	for _, id := range ids {
		var started sync.WaitGroup
		started.Add(2)
		barrier := func() {
			started.Done()
			started.Wait()
		}
		errs := make(chan error, 2)
		run := func(c conn, op Op) {
			// Reach the barrier even when the request fails before it,
			// or the other request would wait forever.
			var once sync.Once
			reach := func() { once.Do(barrier) }
			defer func() {
				if r := recover(); r != nil {
					reach()
					errs <- fmt.Errorf("panic: %v", r)
				}
			}()
			_, _, err := c.serve(id, op, reach)
			reach()
			errs <- err
		}
		go run(conns[0], OpSetA)
		go run(conns[1], OpSetB)
		for range 2 {
			if err := <-errs; err != nil {
				res.Err = err.Error()
				return res
			}
		}
		got, _, err := conns[0].serve(id, OpCountAB, nil)
		if err != nil {
			res.Err = err.Error()
			return res
		}
		if got != 2 {
			res.Lost++
		}
	}
	return res
}

// ParallelResult tells whether a library survives the parallel benchmark
// loop: a few goroutines, each with its own reused RequestCtx, running W1
// and W2 over the preloaded sessions.
type ParallelResult struct {
	Lib      string `json:"lib"`
	Requests int    `json:"requests"`
	Panic    string `json:"panic,omitempty"`
	Err      string `json:"error,omitempty"`
}

// OK reports whether every request succeeded.
func (r ParallelResult) OK() bool { return r.Panic == "" && r.Err == "" }

// CheckParallel runs W1 then W2, perG requests each, on goroutines
// goroutines over Preloaded sessions, and reports the first panic or
// error.
func CheckParallel(lib Lib, goroutines, perG int) (res ParallelResult) {
	res.Lib, res.Requests = lib.Name, 2*goroutines*perG
	inst, ids, err := open(lib, Preloaded)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer inst.Close()
	var mu sync.Mutex
	record := func(panicked bool, msg string) {
		mu.Lock()
		defer mu.Unlock()
		if res.Panic == "" && res.Err == "" {
			if panicked {
				res.Panic = msg
			} else {
				res.Err = msg
			}
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					record(true, fmt.Sprint(r))
				}
			}()
			ctx := NewCtx()
			k := g * 2503 % len(ids)
			for _, op := range []Op{W1, W2} {
				for i := 0; i < perG; i++ {
					Prepare(ctx, ids[k])
					k = (k + stride) % len(ids)
					if _, err := inst.Serve(ctx, op); err != nil {
						record(false, fmt.Sprintf("%v: %v", op, err))
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	return res
}
