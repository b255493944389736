package sqlite3_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/sqlite3"
)

func Example() {
	dir, err := os.MkdirTemp("", "sessions")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	session := sessionkit.New(sessionkit.Config{})
	err = session.SetProvider("sqlite3", &sqlite3.Config{Path: filepath.Join(dir, "sessions.db")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer session.Close()
	fmt.Println("sessions stored in sessions.db")
	// Output: sessions stored in sessions.db
}

// A provider built by hand, for example to share it or to use its
// Count and GC directly.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "sessions")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	p, err := sqlite3.New(ctx, sqlite3.Config{Path: filepath.Join(dir, "sessions.db"), Table: "web_sessions"})
	if err != nil {
		fmt.Println(err)
		return
	}
	session := sessionkit.New(sessionkit.Config{})
	if err := session.UseProvider(p); err != nil {
		fmt.Println(err)
		return
	}
	defer session.Close()
	n, err := p.Count(ctx)
	fmt.Println(n, err)
	// Output: 0 <nil>
}
