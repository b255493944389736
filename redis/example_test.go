package redis_test

import (
	"context"
	"log"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/redis"
)

// A provider for a three-node Redis Cluster, used directly. An
// application normally hands the Config to its session manager's
// SetProvider("redis", cfg) instead.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := redis.New(ctx, redis.Config{
		Addrs:    []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"},
		Username: "sessions",
		Password: "secret",
		Prefix:   "myapp:sess:",
		PoolSize: 50,
	})
	if err != nil {
		log.Fatal(err) // names the servers it could not reach
	}
	defer p.Close()

	id := sessionkit.NewID()
	err = p.Update(ctx, id, sessionkit.Update{
		Create:  true,
		Set:     map[string][]byte{"user": []byte("42")},
		Expires: time.Now().Add(30 * time.Minute),
	})
	if err != nil {
		log.Fatal(err)
	}
}
