//go:build unix

package memcache_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memcache"
	"github.com/sessionkit/sessionkit/providertest"
)

// startMemcached runs a private memcached on addr and returns it; the
// test ends it at cleanup if it still runs.
func startMemcached(t *testing.T, bin, addr string) *exec.Cmd {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"-l", host, "-p", port, "-U", "0", "-m", "16"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses root without it
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting memcached: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("memcached on %s did not start: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStopped waits until every thread of pid is stopped: SIGSTOP reaches
// threads running on another CPU a little later, and a request answered in
// between would make the test see a live server.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tasks, err := os.ReadDir(dir)
		if err != nil {
			return // no /proc: nothing better to wait on
		}
		stopped := true
		for _, task := range tasks {
			stat, err := os.ReadFile(dir + "/" + task.Name() + "/stat")
			// The state follows the command name's closing parenthesis.
			if i := strings.LastIndexByte(string(stat), ')'); err != nil || i < 0 || i+2 >= len(stat) || stat[i+2] != 'T' {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("memcached (pid %d) did not stop", pid)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServerRestart kills the provider's memcached, checks that calls fail
// cleanly within the timeout, then restarts memcached on the same port and
// checks that the same provider works again.
func TestServerRestart(t *testing.T) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		providertest.ServerUnavailable(t, "the memcached binary (Debian package memcached)", err)
	}
	addr := freeAddr(t)
	srv := startMemcached(t, bin, addr)
	const timeout = 300 * time.Millisecond
	p, err := memcache.New(memcache.Config{Servers: []string{addr}, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	id := sessionkit.NewID()
	create(t, p, id, vals("a", "1"))
	if _, err := p.Get(bg, id); err != nil {
		t.Fatal(err)
	}

	bounded := func(op string, f func() error) {
		t.Helper()
		start := time.Now()
		err := f()
		if err == nil || errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatalf("%s with memcached failing = %v, want a server error", op, err)
		}
		if d := time.Since(start); d > 4*timeout {
			t.Fatalf("%s with memcached failing took %v (timeout %v)", op, d, timeout)
		}
		t.Logf("%s with memcached failing: %v", op, err)
	}
	// A hung server: connections open, nothing answers. Calls must give
	// up after about the timeout.
	if err := srv.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, srv.Process.Pid)
	for range 2 {
		bounded("Get", func() error { _, err := p.Get(bg, id); return err })
		bounded("Update", func() error { return p.Update(bg, id, sessionkit.Update{Set: vals("b", "2")}) })
	}
	if err := srv.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if r, err := p.Get(bg, id); err != nil || string(r.Map()["a"]) != "1" {
		t.Fatalf("Get after the server resumed = %v, %v", r.Map(), err)
	}

	// A dead server: connections refused.
	if err := srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = srv.Wait()
	for range 3 { // the first call may hit a pooled connection, later ones dial
		bounded("Get", func() error { _, err := p.Get(bg, id); return err })
		bounded("Update", func() error { return p.Update(bg, id, sessionkit.Update{Set: vals("b", "2")}) })
		bounded("Delete", func() error { return p.Delete(bg, id) })
		bounded("Rename", func() error { return p.Rename(bg, id, sessionkit.NewID(), providertest.Later()) })
	}

	startMemcached(t, bin, addr)
	// The new server is empty: the old session is gone, and new ones work
	// at once, through the same provider.
	if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Get after the restart = %v, want ErrNotFound", err)
	}
	id2 := sessionkit.NewID()
	create(t, p, id2, vals("c", "3"))
	if r, err := p.Get(bg, id2); err != nil || string(r.Map()["c"]) != "3" {
		t.Fatalf("Get after the restart = %v, %v", r.Map(), err)
	}
}
