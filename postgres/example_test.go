package postgres_test

import (
	"context"
	"database/sql"
	"log"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/postgres"
)

func Example() {
	session := sessionkit.New(sessionkit.Config{})
	err := session.SetProvider("postgres", &postgres.Config{
		DSN:   "postgres://app@db.internal/app?sslmode=verify-full",
		Table: "web.sessions",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
}

// Sharing the application's pool: the provider leaves it open on Close.
func ExampleNew() {
	db, err := sql.Open("postgres", "postgres://app@db.internal/app?sslmode=verify-full")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	p, err := postgres.New(context.Background(), postgres.Config{DB: db})
	if err != nil {
		log.Fatal(err)
	}
	session := sessionkit.New(sessionkit.Config{})
	if err := session.UseProvider(p); err != nil {
		log.Fatal(err)
	}
	defer session.Close()
}
