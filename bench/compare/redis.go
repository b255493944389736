package compare

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	fsredis "github.com/fasthttp/session/v2/providers/redis"
	gsredis "github.com/kataras/go-sessions/v3/sessiondb/redis"
	gsservice "github.com/kataras/go-sessions/v3/sessiondb/redis/service"
	goredis "github.com/redis/go-redis/v9"
	skredis "github.com/sessionkit/sessionkit/redis"
)

// RoundTrips is what one library costs in Redis round trips per request.
type RoundTrips struct {
	Lib    string `json:"lib"`
	Module string `json:"module"`
	// Requests is the number of requests each workload ran.
	Requests int `json:"requests"`
	// PerRequest holds, per workload, the client-to-server messages the
	// counting proxy saw per request: each is one round trip (a pipeline
	// or a single command).
	PerRequest map[string]float64 `json:"per_request"`
	// Commands and Pipelines hold, per workload, what a go-redis hook on
	// the client counted per request, for the libraries whose client can
	// be given one (only sessionkit, through Config.Client).
	Commands  map[string]float64 `json:"commands,omitempty"`
	Pipelines map[string]float64 `json:"pipelines,omitempty"`
	// Dials is the number of connections the library opened while the
	// workloads ran (after preloading).
	Dials int64  `json:"dials"`
	Note  string `json:"note,omitempty"`
	Err   string `json:"error,omitempty"`
}

// redisLib opens a library on Redis at addr under a key prefix; hook is
// attached to the client when the library lets one be.
type redisLib struct {
	name, module, note string
	open               func(addr, prefix string, hook goredis.Hook) (Instance, func(), error)
}

func redisLibs() []redisLib {
	return []redisLib{
		{
			name:   "sessionkit",
			module: "github.com/sessionkit/sessionkit/redis",
			note:   "go-redis client passed in Config.Client, hook counts commands and pipelines",
			open:   openSessionkit(false),
		},
		{
			name:   "sessionkit-localcache",
			module: "github.com/sessionkit/sessionkit/redis",
			note:   "Config.LocalCache on; otherwise as above",
			open:   openSessionkit(true),
		},
		{
			name:   "fasthttp-session",
			module: fasthttpSessionModule + " providers/redis",
			note:   "builds its own go-redis client: counted at the proxy only",
			open: func(addr, prefix string, _ goredis.Hook) (Instance, func(), error) {
				p, err := fsredis.New(fsredis.Config{Addr: addr, KeyPrefix: prefix})
				if err != nil {
					return nil, nil, err
				}
				inst, err := newFasthttpSession(p)
				if err != nil {
					return nil, nil, err
				}
				return inst, inst.Close, nil
			},
		},
		{
			name:   "go-sessions",
			module: goSessionsModule + " sessiondb/redis",
			note:   "redigo pool (MaxIdle 8; it PINGs every borrowed connection): counted at the proxy only",
			open: func(addr, prefix string, _ goredis.Hook) (Instance, func(), error) {
				// New calls log.Fatal when Redis is unreachable; the
				// caller has checked that it answers.
				db := gsredis.New(gsservice.Config{
					Network:     "tcp",
					Addr:        addr,
					Prefix:      prefix,
					MaxIdle:     8,
					IdleTimeout: 5 * time.Minute,
				})
				inst := newGoSessions(db)
				return inst, func() { inst.Close(); _ = db.Close() }, nil
			},
		},
	}
}

// openSessionkit opens sessionkit's redis provider through a go-redis
// client of its own that carries the counting hook.
func openSessionkit(localCache bool) func(addr, prefix string, hook goredis.Hook) (Instance, func(), error) {
	return func(addr, prefix string, hook goredis.Hook) (Instance, func(), error) {
		client := goredis.NewClient(&goredis.Options{Addr: addr})
		client.AddHook(hook)
		p, err := skredis.New(context.Background(), skredis.Config{Client: client, Prefix: prefix, LocalCache: localCache})
		if err != nil {
			_ = client.Close()
			return nil, nil, err
		}
		inst, err := newSessionkit(p)
		if err != nil {
			_ = client.Close()
			return nil, nil, err
		}
		return inst, func() { inst.Close(); _ = client.Close() }, nil
	}
}

// MeasureRoundTrips runs each workload n times, serially, for every
// library's Redis storage, through a counting proxy in front of Redis at
// addr, and returns the round trips per request. It removes the keys it
// created.
func MeasureRoundTrips(addr string, n int) ([]RoundTrips, error) {
	ctx := context.Background()
	admin := goredis.NewClient(&goredis.Options{Addr: addr})
	defer admin.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := admin.Ping(pingCtx).Err()
	cancel()
	if err != nil {
		return nil, fmt.Errorf("redis at %s: %w", addr, err)
	}
	proxy, err := newCountingProxy(addr)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()

	var out []RoundTrips
	for _, rl := range redisLibs() {
		prefix := fmt.Sprintf("sessionkit-bench:%s:%s:", rl.name, randomID()[:8])
		res := measureLib(rl, proxy, prefix, n)
		if err := deleteKeys(ctx, admin, prefix); err != nil && res.Err == "" {
			res.Err = "cleanup: " + err.Error()
		}
		out = append(out, res)
	}
	return out, nil
}

func measureLib(rl redisLib, proxy *countingProxy, prefix string, n int) (res RoundTrips) {
	res = RoundTrips{Lib: rl.name, Module: rl.module, Note: rl.note, Requests: n,
		PerRequest: map[string]float64{}}
	defer func() {
		if r := recover(); r != nil {
			res.Err = fmt.Sprint("panic: ", r)
		}
	}()
	hook := &countingHook{}
	inst, closeFn, err := rl.open(proxy.Addr(), prefix, hook)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer closeFn()
	ids, err := Preload(inst, n)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	dials := proxy.conns.Load()
	ctx := NewCtx()
	for _, op := range Workloads {
		msgs, cmds, pipes := proxy.msgs.Load(), hook.cmds.Load(), hook.pipes.Load()
		for i := 0; i < n; i++ {
			c := ""
			if op.WithCookie() {
				c = ids[i]
			}
			Prepare(ctx, c)
			if _, err := inst.Serve(ctx, op); err != nil {
				res.Err = fmt.Sprintf("%v: %v", op, err)
				return res
			}
		}
		// Let the proxy finish counting what was sent.
		proxy.settle()
		res.PerRequest[op.String()] = float64(proxy.msgs.Load()-msgs) / float64(n)
		if c := hook.cmds.Load() - cmds; c > 0 {
			if res.Commands == nil {
				res.Commands, res.Pipelines = map[string]float64{}, map[string]float64{}
			}
			res.Commands[op.String()] = float64(c) / float64(n)
			res.Pipelines[op.String()] = float64(hook.pipes.Load()-pipes) / float64(n)
		}
	}
	res.Dials = proxy.conns.Load() - dials
	return res
}

func deleteKeys(ctx context.Context, c *goredis.Client, prefix string) error {
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	for len(keys) > 0 {
		k := min(len(keys), 500)
		if err := c.Del(ctx, keys[:k]...).Err(); err != nil {
			return err
		}
		keys = keys[k:]
	}
	return nil
}

// countingHook counts the commands and pipelines a go-redis client sends.
// A pipeline (also a MULTI/EXEC transaction) is one round trip; each
// command outside one is one round trip.
type countingHook struct {
	cmds, pipes atomic.Int64
}

func (h *countingHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *countingHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.cmds.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.pipes.Add(1)
		h.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// countingProxy forwards TCP connections on a loopback port to Redis and
// counts what clients send. Every client here writes a request (a command
// or a whole pipeline) in one write and then waits for the reply, so each
// read from the client side is one round trip.
type countingProxy struct {
	ln       net.Listener
	upstream string
	msgs     atomic.Int64 // client-to-server reads
	conns    atomic.Int64 // connections accepted
	mu       sync.Mutex
	open     map[net.Conn]struct{}
}

func newCountingProxy(upstream string) (*countingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{ln: ln, upstream: upstream, open: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

func (p *countingProxy) Addr() string { return p.ln.Addr().String() }

func (p *countingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.track(c, up)
		go p.pipe(up, c, &p.msgs)
		go p.pipe(c, up, nil)
	}
}

func (p *countingProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	for _, c := range cs {
		p.open[c] = struct{}{}
	}
	p.mu.Unlock()
}

// pipe copies src to dst, counting reads in counter if it is not nil.
func (p *countingProxy) pipe(dst, src net.Conn, counter *atomic.Int64) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if counter != nil {
				counter.Add(1)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// settle gives the proxy's goroutines a moment to count the last reads.
// Every request has had its reply by the time the client returns, so the
// request was read long before; this only orders the counter's load.
func (p *countingProxy) settle() { time.Sleep(10 * time.Millisecond) }

func (p *countingProxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.open {
		_ = c.Close()
	}
	p.mu.Unlock()
}
