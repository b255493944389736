// Command nethttp is a net/http server with sessions on the memory
// provider, using the Middleware.
//
//	go run ./_examples/nethttp
//
// then open the printed URL.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"

	"github.com/sessionkit/sessionkit"
	_ "github.com/sessionkit/sessionkit/memory" // registers the "memory" provider
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "address to listen on")
	flag.Parse()

	session := sessionkit.New(sessionkit.DefaultConfig())
	if err := session.SetProvider("memory", nil); err != nil {
		log.Fatal(err)
	}
	defer session.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		store := sessionkit.FromContext(r.Context())
		visits, _ := store.GetInt("visits")
		visits++
		// Set before writing the body: the middleware saves the session
		// (and sends a new session's cookie) when the header goes out.
		store.Set("visits", visits)
		if notice, ok := store.GetFlash("notice").(string); ok {
			fmt.Fprintf(w, "(%s)\n", notice)
		}
		user, _ := store.GetString("user")
		fmt.Fprintf(w, "visit %d, user %q\n/login to log in, /logout to end the session\n", visits, user)
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		store := sessionkit.FromContext(r.Context())
		if err := store.Regenerate(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		store.Set("user", "gopher")
		store.SetFlash("notice", "logged in")
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessionkit.FromContext(r.Context()).Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sessionkit net/http example listening on http://%s/\n", ln.Addr())
	log.Fatal(http.Serve(ln, session.Middleware(mux)))
}
