package sessionkit

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Now returns the current time for work done on behalf of ctx, reading the
// clock as rarely as possible: reading it costs 50-100ns on some virtual
// machines, which is a sizeable part of an in-memory request.
//
//   - Inside a provider call made by the manager, it is the instant the
//     manager already read for this request, so the manager and the
//     provider judge expiry by the same clock reading.
//   - For a *fasthttp.RequestCtx served by fasthttp, it is the time the
//     request started, which fasthttp reads once per request anyway.
//   - Otherwise it is the current time, read as cheaply as possible (see
//     wallNow).
//
// A request's start time is fresh enough for deadlines measured in minutes.
func Now(ctx context.Context) time.Time {
	switch c := ctx.(type) {
	case *clockCtx:
		return c.now
	case *fasthttp.RequestCtx:
		if t := c.Time(); !t.IsZero() {
			return t
		}
	}
	return wallNow()
}

// clockBase is the last full reading of the clock (see wallNow).
var clockBase atomic.Pointer[clockReading]

// clockReading is a full reading of the clock: t, with its monotonic
// reading, and its wall clock in Unix nanoseconds.
type clockReading struct {
	t    time.Time
	wall int64
}

// wallNow returns the current time. time.Now reads two clocks, the wall
// clock and the monotonic one; wallNow reads only the monotonic clock and
// adds what passed since the last full reading, which it renews every
// second, so a step of the system clock shows within a second. That
// halves the cost of the reading on machines where clocks are slow.
//
// The result carries no monotonic reading, like a time from time.Unix:
// it is compared with stored deadlines, which carry none either, and
// arithmetic on it then takes only the wall clock's branch.
func wallNow() time.Time {
	if b := clockBase.Load(); b != nil {
		if d := time.Since(b.t); d >= 0 && d < time.Second {
			return time.Unix(0, b.wall+int64(d))
		}
	}
	t := time.Now()
	clockBase.Store(&clockReading{t: t, wall: t.UnixNano()})
	return t.Round(0)
}

// clockCtx is the context the manager hands to providers: the request's
// own context plus the time the manager read for it (see Now). It lives
// in the Store's handle, so wrapping costs no allocation, and, like the
// handle, is never reused: a provider that keeps it sees it unchanged.
type clockCtx struct {
	context.Context
	now time.Time
}
