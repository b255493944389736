package sessionkit

import (
	"context"
	"time"

	"github.com/valyala/fasthttp"
)

// Now returns the current time for work done on behalf of ctx. When ctx is
// a *fasthttp.RequestCtx served by fasthttp, that is the time the request
// started, which fasthttp reads once per request anyway; otherwise it is
// time.Now(). Reading the clock costs around 100ns on some virtual
// machines, several times over per request, so the manager and the memory
// provider use Now for expiry decisions: a request's start time is fresh
// enough for deadlines measured in minutes.
func Now(ctx context.Context) time.Time {
	if rc, ok := ctx.(*fasthttp.RequestCtx); ok {
		if t := rc.Time(); !t.IsZero() {
			return t
		}
	}
	return time.Now()
}
