// Command basic is a fasthttp server with sessions on the memory provider.
//
//	go run ./_examples/basic
//
// then open the printed URL: every reload counts one more visit, /login
// renews the session ID, /logout ends the session.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()

	session := sessionkit.New(sessionkit.DefaultConfig())
	if err := session.SetProvider("memory", &memory.Config{}); err != nil {
		log.Fatal(err)
	}
	defer session.Close()

	handler := func(ctx *fasthttp.RequestCtx) {
		store, err := session.Start(ctx)
		if err != nil {
			ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
			return
		}
		defer func() {
			if err := store.Save(ctx); err != nil {
				log.Printf("save session: %v", err)
			}
		}()
		ctx.SetContentType("text/plain; charset=utf-8")
		switch string(ctx.Path()) {
		case "/login":
			// A new ID at login defeats session fixation.
			if err := store.Regenerate(ctx); err != nil {
				ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
				return
			}
			store.Set("user", "gopher")
			store.SetFlash("notice", "logged in")
			ctx.Redirect("/", fasthttp.StatusSeeOther)
		case "/logout":
			if err := store.Destroy(ctx); err != nil {
				ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
				return
			}
			ctx.Redirect("/", fasthttp.StatusSeeOther)
		default:
			visits, _ := store.GetInt("visits")
			visits++
			store.Set("visits", visits)
			user, _ := store.GetString("user")
			if notice, ok := store.GetFlash("notice").(string); ok {
				fmt.Fprintf(ctx, "(%s)\n", notice)
			}
			fmt.Fprintf(ctx, "visit %d, user %q, session %s\n/login to log in, /logout to end the session\n", visits, user, store.ID())
		}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sessionkit fasthttp example listening on http://%s/\n", ln.Addr())
	log.Fatal(fasthttp.Serve(ln, handler))
}
