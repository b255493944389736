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

// A manager whose redis provider keeps a local cache: a request whose
// session this process read or wrote recently costs no round trip when
// it only reads, and one when it writes. Every process sharing the
// sessions must set LocalCache. The provider is built with New and handed
// over with UseProvider, so that its CacheStats can be watched.
func Example_localCache() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := redis.New(ctx, redis.Config{
		Addrs:            []string{"127.0.0.1:6379"},
		LocalCache:       true,
		LocalCacheSize:   200_000,          // sessions kept; default 100,000
		LocalCacheMaxAge: 30 * time.Second, // bounds how long an unannounced change goes unseen
	})
	if err != nil {
		log.Fatal(err)
	}
	m := sessionkit.New(sessionkit.DefaultConfig())
	defer m.Close() // closes p too
	if err := m.UseProvider(p); err != nil {
		log.Fatal(err)
	}
	// ... serve requests with m.Start and Store.Save; now and then:
	st := p.CacheStats()
	log.Printf("session cache: %d hits, %d misses, %d held", st.Hits, st.Misses, st.Entries)
}
