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

// CheckFixation sends a request with an unknown, attacker-chosen session
// ID that sets a value, and reports whether the library kept that ID.
func CheckFixation(lib Lib) (res FixationResult) {
	res.Lib = lib.Name
	res.AttackerID = randomID()
	inst, err := lib.New()
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer inst.Close()
	ctx := NewCtx()
	Prepare(ctx, res.AttackerID)
	if _, err := inst.Serve(ctx, W3); err != nil {
		res.Err = err.Error()
		return res
	}
	res.ResponseCookie = ResponseCookie(ctx)
	Prepare(ctx, res.AttackerID)
	has, err := inst.Serve(ctx, OpHasName)
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
// them, the requests taking checkConns reused RequestCtxs in turn, then
// reads every counter back.
func CheckUpdates(lib Lib, sessions, passes int) (res UpdatesResult) {
	res.Lib, res.Sessions, res.Passes = lib.Name, sessions, passes
	defer catch(&res.Panic)
	inst, ids, err := open(lib, sessions)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer inst.Close()
	var ctxs [checkConns]*fasthttp.RequestCtx
	for i := range ctxs {
		ctxs[i] = NewCtx()
	}
	req := 0
	next := func() *fasthttp.RequestCtx {
		req++
		return ctxs[req%checkConns]
	}
	for p := 0; p < passes; p++ {
		for _, id := range ids {
			ctx := next()
			Prepare(ctx, id)
			if _, err := inst.Serve(ctx, W2); err != nil {
				res.Err = err.Error()
				return res
			}
			if c := ResponseCookie(ctx); c != "" && c != id {
				res.NewCookies++
			}
		}
	}
	for _, id := range ids {
		ctx := next()
		Prepare(ctx, id)
		n, err := inst.Serve(ctx, OpReadN)
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
func CheckMerge(lib Lib, n int) (res MergeResult) {
	res.Lib, res.Sessions = lib.Name, n
	defer catch(&res.Panic)
	inst, ids, err := open(lib, n)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer inst.Close()
	ctxA, ctxB := NewCtx(), NewCtx()
	for _, id := range ids {
		var started sync.WaitGroup
		started.Add(2)
		barrier := func() {
			started.Done()
			started.Wait()
		}
		errs := make(chan error, 2)
		run := func(ctx *fasthttp.RequestCtx, op Op) {
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
			Prepare(ctx, id)
			_, err := inst.ServeAfterStart(ctx, op, reach)
			reach()
			errs <- err
		}
		go run(ctxA, OpSetA)
		go run(ctxB, OpSetB)
		for range 2 {
			if err := <-errs; err != nil {
				res.Err = err.Error()
				return res
			}
		}
		Prepare(ctxA, id)
		got, err := inst.Serve(ctxA, OpCountAB)
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
