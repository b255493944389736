package providertest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/sessionkit/sessionkit/providertest"
)

// instance is one process's view of a store that several share: here one
// memory provider, which the test closes, standing for the server.
type instance struct{ sessionkit.Provider }

func (instance) Close() error { return nil }

// staleCache is an instance that keeps every session it read and never
// learns of other instances' writes: what RunShared exists to catch.
type staleCache struct {
	instance
	mu     sync.Mutex
	copies map[string]sessionkit.Record
}

func (c *staleCache) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.copies[id]; ok {
		return r, nil
	}
	r, err := c.Provider.Get(ctx, id)
	if err == nil {
		c.copies[id] = r
	}
	return r, err
}

// sharedMemory returns two instances over one memory provider; with
// stale, the first keeps stale copies.
func sharedMemory(stale bool) providertest.NewShared {
	return func(t *testing.T) (sessionkit.Provider, sessionkit.Provider) {
		store := memory.New(memory.Config{})
		t.Cleanup(func() { _ = store.Close() })
		var a sessionkit.Provider = instance{store}
		if stale {
			a = &staleCache{instance: instance{store}, copies: map[string]sessionkit.Record{}}
		}
		return a, instance{store}
	}
}

// TestRunShared: instances that read the store each time pass.
func TestRunShared(t *testing.T) {
	providertest.RunShared(t, sharedMemory(false))
}

// TestRunSharedCatchesStaleCopies runs RunShared on an instance whose
// copies never learn of the other's writes, in a child process (a failing
// test cannot be run inside a passing one), and requires it to fail, on
// each case that reads through that instance after the other wrote.
func TestRunSharedCatchesStaleCopies(t *testing.T) {
	if os.Getenv("PROVIDERTEST_STALE") == "1" {
		providertest.RunShared(t, sharedMemory(true))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestRunSharedCatchesStaleCopies$", "-test.v")
	cmd.Env = append(os.Environ(), "PROVIDERTEST_STALE=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("RunShared passed an instance with stale copies:\n%s", out)
	}
	for _, name := range []string{"SharedSeesUpdate", "SharedSeesTouch", "SharedSeesDelete", "SharedSeesRename", "SharedConcurrentMerge"} {
		if !strings.Contains(string(out), "--- FAIL: TestRunSharedCatchesStaleCopies/"+name+" ") {
			t.Errorf("%s did not fail on stale copies:\n%s", name, out)
		}
	}
}
