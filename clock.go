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
//   - Otherwise it is the current time to within a millisecond or so,
//     read as cheaply as possible (see wallNow).
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

// wallNow returns the current time to within a millisecond or so, read
// from a coarse clock (see coarseClock) while requests keep coming, and
// from time.Now when the coarse clock has stopped.
//
// Under a virtual machine's clock (kvm-clock, Hyper-V's) a full reading
// takes 40-100 ns, though the processor overlaps part of it with the memory
// provider's cache misses (an in-memory read-only request ran about 4%
// faster without it); the coarse clock costs two atomic loads. Sessions live
// for minutes and their deadlines are stored to the nanosecond only because
// the format allows it: a reading a millisecond old judges them as well as a
// fresh one. A fasthttp server does not come here at all (it gives the
// request's own start time).
//
// The result carries no monotonic reading, like a time from time.Unix:
// it is compared with stored deadlines, which carry none either, and
// arithmetic on it then takes only the wall clock's branch.
func wallNow() time.Time {
	switch coarse.state.Load() {
	case clockUsed:
		return time.Unix(0, coarse.nanos.Load())
	case clockRunning:
		// Lost to the ticker stopping the clock, this leaves it stopped;
		// the time read below is a tick old at most.
		coarse.state.CompareAndSwap(clockRunning, clockUsed)
		return time.Unix(0, coarse.nanos.Load())
	}
	return coarse.start()
}

// coarseTick is the coarse clock's period.
const coarseTick = time.Millisecond

// The coarse clock's states. Only the ticker moves it down from
// clockUsed, and only a reader up from clockStopped or clockRunning.
const (
	clockStopped  = iota // no ticker: readers read the clock themselves
	clockStarting        // a reader is starting the ticker
	clockRunning         // ticking, and nobody has read it since the last tick
	clockUsed            // ticking, and read since the last tick
)

// coarseClock is a wall clock in Unix nanoseconds that a goroutine renews
// every coarseTick while it is read, and that stops, goroutine and all,
// after a tick in which nobody read it: an idle process is not woken a
// thousand times a second, and its tests see no goroutine left behind
// once their requests are done.
//
// A reader loads the state, then the time; every reader after the first
// in a tick only loads, so cores do not pass the cache line around at
// every request. The time a reader gets is at most one tick old plus
// however late the scheduler runs the ticker: a millisecond or two as a
// rule, more on a machine so overloaded that requests wait that long too.
type coarseClock struct {
	state atomic.Uint32
	nanos atomic.Int64
}

var coarse coarseClock

// start reads the clock and, unless another reader is doing it, starts
// the ticker. The time is stored before the state says the clock runs, so
// no reader sees the stale time of a clock that had stopped.
func (c *coarseClock) start() time.Time {
	t := time.Now().Round(0)
	if c.state.CompareAndSwap(clockStopped, clockStarting) {
		c.nanos.Store(t.UnixNano())
		c.state.Store(clockUsed)
		go c.tick()
	}
	return t
}

// tick renews the time every coarseTick until a tick passes unread.
func (c *coarseClock) tick() {
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	for range t.C {
		c.nanos.Store(time.Now().UnixNano())
		if !c.state.CompareAndSwap(clockUsed, clockRunning) &&
			c.state.CompareAndSwap(clockRunning, clockStopped) {
			return
		}
	}
}

// clockCtx is the context the manager hands to providers: the request's
// own context plus the time the manager read for it (see Now). It lives
// in the Store's handle, so wrapping costs no allocation, and, like the
// handle, is never reused: a provider that keeps it sees it unchanged.
type clockCtx struct {
	context.Context
	now time.Time
}
