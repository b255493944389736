// Package compare runs sessionkit's benchmark workloads against sessionkit
// and against other fasthttp session libraries, each used as an ordinary
// module dependency, so that the numbers come from one binary, one Go
// version and one fasthttp version.
//
// The workloads are those of the main module's bench_test.go:
//
//	W1: valid cookie, read one string, save unchanged
//	W2: valid cookie, increment an int, save
//	W3: no cookie, set one value, save (a new session)
//
// Every library handles a request the same way: the request is reset on a
// reused *fasthttp.RequestCtx (as fasthttp's server does), the session is
// started from the cookie, the work is done, and the session is saved the
// way the library asks for it.
package compare

import (
	"fmt"

	"github.com/valyala/fasthttp"
)

// CookieName is the session cookie name every library is configured with.
const CookieName = "sessionid"

// Preloaded is the number of sessions created before W1 and W2 run.
const Preloaded = 10000

// Op is what one request does with its session.
type Op int

// The workloads, and the helper requests the checks need.
const (
	W1 Op = iota // valid cookie, read one string, save unchanged
	W2           // valid cookie, increment an int, save
	W3           // no cookie, set one value, save (new session)

	OpPreload // no cookie: set "name" and "n" = 0, save
	OpReadN   // return "n", or an error if it is missing
	OpHasName // return 1 if "name" is set, else 0
	OpSetA    // set "a"
	OpSetB    // set "b"
	OpCountAB // return how many of "a" and "b" are set
)

// Workloads are the measured operations, in table order.
var Workloads = []Op{W1, W2, W3}

func (o Op) String() string {
	switch o {
	case W1:
		return "W1"
	case W2:
		return "W2"
	case W3:
		return "W3"
	case OpPreload:
		return "preload"
	case OpReadN:
		return "read-n"
	case OpHasName:
		return "has-name"
	case OpSetA:
		return "set-a"
	case OpSetB:
		return "set-b"
	case OpCountAB:
		return "count-ab"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Describe is the one-line meaning of a workload.
func (o Op) Describe() string {
	switch o {
	case W1:
		return "valid cookie, read one string, save unchanged"
	case W2:
		return "valid cookie, increment an int, save"
	case W3:
		return "no cookie, set one value, save (new session)"
	}
	return o.String()
}

// WithCookie reports whether the op's request carries a session cookie.
func (o Op) WithCookie() bool { return o != W3 && o != OpPreload }

// Instance is one library set up with its storage, ready to serve.
type Instance interface {
	// Serve runs one request on ctx, whose request the caller has
	// prepared: start the session, do op, save. For W2 and OpReadN it
	// returns the value of "n" (after the increment for W2); for
	// OpHasName 1 or 0.
	Serve(ctx *fasthttp.RequestCtx, op Op) (int, error)
	// ServeAfterStart is Serve calling afterStart once the session is
	// started, before op's work.
	ServeAfterStart(ctx *fasthttp.RequestCtx, op Op, afterStart func()) (int, error)
	// Close releases the instance's sessions and background work.
	Close()
}

// Lib is a library under comparison.
type Lib struct {
	// Name is short and has no slash, for benchmark names.
	Name string
	// Module is the module path and version measured.
	Module string
	// Setup says how the library is configured, for the report.
	Setup string
	// New opens a fresh instance on the memory storage.
	New func() (Instance, error)
	// Benchmarked is false for variants that only take part in the
	// correctness checks.
	Benchmarked bool
	// Issues notes problems found while measuring, for the report.
	Issues string
}

// Libs returns every library, sessionkit first.
func Libs() []Lib {
	return []Lib{sessionkitLib(), fasthttpSessionLib(), fasthttpSessionUnpatchedLib(), goSessionsLib()}
}

// BenchLibs returns the libraries that are benchmarked, sessionkit first.
func BenchLibs() []Lib {
	var out []Lib
	for _, l := range Libs() {
		if l.Benchmarked {
			out = append(out, l)
		}
	}
	return out
}

// Prepare resets ctx for a new request, as fasthttp's server does between
// requests on a connection, and sets the session cookie if cookie is not
// empty.
func Prepare(ctx *fasthttp.RequestCtx, cookie string) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.ResetUserValues()
	if cookie != "" {
		ctx.Request.Header.SetCookie(CookieName, cookie)
	}
}

// NewCtx returns a RequestCtx for driving handlers in-process.
func NewCtx() *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	return &ctx
}

// ResponseCookie returns the value of the session cookie the response
// sets, or "" if it sets none.
func ResponseCookie(ctx *fasthttp.RequestCtx) string {
	raw := ctx.Response.Header.PeekCookie(CookieName)
	if len(raw) == 0 {
		return ""
	}
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	if err := c.ParseBytes(raw); err != nil {
		return ""
	}
	return string(c.Value())
}

// Preload creates n sessions holding "name" and "n" = 0 and returns their
// cookie values.
func Preload(inst Instance, n int) ([]string, error) {
	ctx := NewCtx()
	ids := make([]string, n)
	for i := range ids {
		Prepare(ctx, "")
		if _, err := inst.Serve(ctx, OpPreload); err != nil {
			return nil, err
		}
		ids[i] = ResponseCookie(ctx)
		if ids[i] == "" {
			return nil, fmt.Errorf("preload: no session cookie in the response")
		}
	}
	return ids, nil
}

// toInt converts what a library returns for a stored int.
func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case int32:
		return int(n), true
	case uint64:
		return int(n), true
	case float64:
		return int(n), true
	}
	return 0, false
}
