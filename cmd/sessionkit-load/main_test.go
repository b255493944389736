package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/valyala/fasthttp"
)

// TestMain runs the command itself when the test re-executes its own
// binary with SESSIONKIT_LOAD_ARGS set: main calls os.Exit, so it runs in
// a child process.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("SESSIONKIT_LOAD_ARGS"); ok {
		os.Args = append([]string{"sessionkit-load"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Both servers serve every handler, answer every request, and store
// every W2 increment: a short run on loopback of each.
func TestRuns(t *testing.T) {
	for _, server := range []string{"", "-nethttp"} {
		t.Run("server="+server, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^$")
			cmd.Env = append(os.Environ(), "SESSIONKIT_LOAD_ARGS=-duration 300ms -warmup 100ms -rounds 1 -conns 4 -sessions 100 "+server)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			text := string(out)
			for _, want := range []string{"| 1 | bare |", "| 1 | W1 |", "| 1 | W2 |", "W2 check: the counters sum to"} {
				if !strings.Contains(text, want) {
					t.Fatalf("output lacks %q:\n%s", want, text)
				}
			}
			if strings.Contains(text, "LOST") {
				t.Fatalf("a run lost updates:\n%s", text)
			}
			// | round | handler | req/s | requests | errors |
			for _, line := range strings.Split(text, "\n") {
				f := strings.Fields(strings.ReplaceAll(line, "|", " "))
				if len(f) == 5 && f[0] == "1" && (f[3] == "0" || f[4] != "0") {
					t.Errorf("%s: %s requests answered, %s errors", f[1], f[3], f[4])
				}
			}
		})
	}
}

// Without Redis there is no keyed handler: a request for it is answered
// 404 by both servers, not a nil-pointer panic.
func TestKeyedWithoutRedis(t *testing.T) {
	m := sessionkit.New(sessionkit.Config{})
	if err := m.UseProvider(memory.New(memory.Config{})); err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/keyed")
	newHandler(m, nil, "p")(&ctx)
	if code := ctx.Response.StatusCode(); code != fasthttp.StatusNotFound {
		t.Errorf("fasthttp: /keyed without Redis answered %d, want 404", code)
	}

	rec := httptest.NewRecorder()
	newHTTPHandler(m, nil, "p").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/keyed", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("net/http: /keyed without Redis answered %d, want 404", rec.Code)
	}
}
