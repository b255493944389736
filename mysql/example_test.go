package mysql_test

import (
	"context"
	"database/sql"
	"log"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/mysql"
)

func Example() {
	session := sessionkit.New(sessionkit.Config{})
	err := session.SetProvider("mysql", &mysql.Config{
		DSN:          "app:secret@tcp(db.internal:3306)/app",
		MaxOpenConns: 50,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
}

// Sharing the application's pool: the provider leaves it open on Close.
func ExampleNew() {
	db, err := sql.Open("mysql", "app:secret@tcp(db.internal:3306)/app")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	p, err := mysql.New(context.Background(), mysql.Config{DB: db})
	if err != nil {
		log.Fatal(err)
	}
	session := sessionkit.New(sessionkit.Config{})
	if err := session.UseProvider(p); err != nil {
		log.Fatal(err)
	}
	defer session.Close()
}
