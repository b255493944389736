package sessionkit_test

import (
	"fmt"
	"log"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/valyala/fasthttp"
)

// A handler that counts visits, driven here by two in-process requests:
// the second sends back the cookie the first received.
func Example() {
	session := sessionkit.New(sessionkit.DefaultConfig())
	if err := session.SetProvider("memory", &memory.Config{}); err != nil {
		log.Fatal(err)
	}
	defer session.Close()

	handler := session.Handler(func(ctx *fasthttp.RequestCtx) {
		store := sessionkit.FromContext(ctx)
		visits, _ := store.GetInt("visits")
		store.Set("visits", visits+1)
		fmt.Fprintf(ctx, "visit %d", visits+1)
	})

	cookie := ""
	for range 2 {
		var req fasthttp.Request
		if cookie != "" {
			req.Header.SetCookie("sessionid", cookie)
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		handler(&ctx)
		if c := ctx.Response.Header.PeekCookie("sessionid"); c != nil {
			var ck fasthttp.Cookie
			_ = ck.ParseBytes(c)
			cookie = string(ck.Value())
		}
		fmt.Println(string(ctx.Response.Body()))
	}
	// Output:
	// visit 1
	// visit 2
}
