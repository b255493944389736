package file_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/file"
	"github.com/sessionkit/sessionkit/providertest"
)

var bg = context.Background()

func open(t testing.TB, cfg file.Config) *file.Provider {
	t.Helper()
	p, err := file.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

var vals = providertest.Values

func create(t testing.TB, p sessionkit.Provider, id string, v map[string][]byte) {
	t.Helper()
	providertest.Create(t, p, id, v, providertest.Later())
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		return open(t, file.Config{Dir: t.TempDir()})
	})
}

// TestConformanceOptions runs the suite with every option away from its
// default.
func TestConformanceOptions(t *testing.T) {
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		return open(t, file.Config{Dir: t.TempDir(), Levels: 3, FileMode: 0o640, Sync: true})
	})
}

func TestConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  file.Config
	}{
		{"no Dir", file.Config{}},
		{"negative Levels", file.Config{Dir: t.TempDir(), Levels: -1}},
		{"too many Levels", file.Config{Dir: t.TempDir(), Levels: file.MaxLevels + 1}},
		{"owner cannot write", file.Config{Dir: t.TempDir(), FileMode: 0o400}},
		{"not permission bits", file.Config{Dir: t.TempDir(), FileMode: fs.ModeDir | 0o700}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := file.New(c.cfg)
			if !errors.Is(err, sessionkit.ErrInvalidConfig) {
				t.Fatalf("New = %v, %v; want an error wrapping ErrInvalidConfig", p, err)
			}
			t.Log(err)
		})
	}
}

func TestRegistry(t *testing.T) {
	m := sessionkit.New(sessionkit.Config{})
	defer m.Close()
	if err := m.SetProvider(file.Name, nil); !errors.Is(err, sessionkit.ErrInvalidConfig) {
		t.Fatalf("SetProvider without a Dir = %v, want ErrInvalidConfig", err)
	}
	if err := m.SetProvider(file.Name, &file.Config{Dir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if n, err := m.Count(bg); err != nil || n != 0 {
		t.Fatalf("Count = %d, %v", n, err)
	}
}

func TestModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := filepath.Join(t.TempDir(), "sessions")
	p := open(t, file.Config{Dir: dir, FileMode: 0o640})
	create(t, p, sessionkit.NewID(), vals("a", "1"))
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o640)
		if d.IsDir() {
			want = 0o750
		}
		if got := fi.Mode().Perm(); got&^want != 0 {
			t.Errorf("%s has mode %v, want at most %v", path, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tree lists every path under root, relative to it.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestInvalidIDs checks that no malformed ID reaches the file system: every
// call fails with ErrInvalidID and nothing is created, inside Dir or out.
func TestInvalidIDs(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b", "sessions")
	p := open(t, file.Config{Dir: dir})
	before := tree(t, base)
	good := sessionkit.NewID()
	ids := []string{
		"", "a", "ab", "../../x", "../../../../../../../../tmp/evil-session-x", "/etc/passwd",
		"..", ".", "/", `..\..\x`, "aaaaaaaaaaaaaaaa/../../../etc", "aaaaaaaaaaaaaaaa\x00bbbb",
		"aaaaaaaaaaaaaaa.", "aaaaaaaaaaaaaaaa%2e%2e%2f", "ünïcödéünïcödéünïcödé",
		strings.Repeat("x", sessionkit.MaxIDLength+1), strings.Repeat("../", 1000), strings.Repeat("y", 1<<20),
	}
	for _, id := range ids {
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, sessionkit.ErrInvalidID) {
				t.Errorf("%s(%.30q) = %v, want ErrInvalidID", op, id, err)
			}
		}
		_, err := p.Get(bg, id)
		check("Get", err)
		check("Update", p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: providertest.Later()}))
		check("Update", p.Update(bg, id, sessionkit.Update{Set: vals("a", "1")}))
		check("Touch", p.Touch(bg, id, providertest.Later()))
		check("Delete", p.Delete(bg, id))
		check("Rename from", p.Rename(bg, id, good, providertest.Later()))
		check("Rename to", p.Rename(bg, good, id, providertest.Later()))
	}
	if after := tree(t, base); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("invalid IDs changed the file system:\nbefore %q\nafter  %q", before, after)
	}
	if _, err := os.Stat("/tmp/evil-session-x"); err == nil {
		t.Fatal("a file escaped to /tmp")
	}
}

// TestLongAndCaseIDs checks IDs longer than a file name may be, and IDs
// that differ only in case.
func TestLongAndCaseIDs(t *testing.T) {
	p := open(t, file.Config{Dir: t.TempDir()})
	long := strings.Repeat("L", sessionkit.MaxIDLength)
	create(t, p, long, vals("who", "long"))
	lower, upper := "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	create(t, p, lower, vals("who", "lower"))
	create(t, p, upper, vals("who", "upper"))
	for id, want := range map[string]string{long: "long", lower: "lower", upper: "upper"} {
		r, err := p.Get(bg, id)
		if err != nil || string(r.Map()["who"]) != want {
			t.Fatalf("Get(%.20s…) = %q, %v; want %q", id, r.Map()["who"], err, want)
		}
	}
	long2 := strings.Repeat("M", sessionkit.MaxIDLength)
	if err := p.Rename(bg, long, long2, providertest.Later()); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	if err := p.Range(bg, func(id string, _ sessionkit.Record) bool { ids[id] = true; return true }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || !ids[long2] || !ids[lower] || !ids[upper] {
		t.Fatalf("Range found %d IDs, want the renamed long one and both cases", len(ids))
	}
}

// TestRestart writes with one provider, closes it, and reads back with a
// new one on the same Dir, as after a restart of the process.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	p1, err := file.New(file.Config{Dir: dir, Levels: 2})
	if err != nil {
		t.Fatal(err)
	}
	id, gone := sessionkit.NewID(), sessionkit.NewID()
	exp := time.Now().Add(time.Hour).Round(0)
	v := map[string][]byte{"user": []byte("ada"), "\x00c": {1, 2, 3}, "empty": {}}
	if err := p1.Update(bg, id, sessionkit.Update{Create: true, Set: v, Expires: exp}); err != nil {
		t.Fatal(err)
	}
	create(t, p1, gone, vals("a", "1"))
	if err := p1.Delete(bg, gone); err != nil {
		t.Fatal(err)
	}
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p1.Get(bg, id); !errors.Is(err, sessionkit.ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}

	p2 := open(t, file.Config{Dir: dir, Levels: 2})
	r, err := p2.Get(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Map()) != len(v) || string(r.Map()["user"]) != "ada" || string(r.Map()["\x00c"]) != "\x01\x02\x03" {
		t.Fatalf("values after restart = %q", r.Map())
	}
	if !r.Expires.Equal(exp) {
		t.Fatalf("Expires after restart = %v, want %v", r.Expires, exp)
	}
	if _, err := p2.Get(bg, gone); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("a deleted session after restart: %v", err)
	}
	if n, err := p2.Count(bg); err != nil || n != 1 {
		t.Fatalf("Count after restart = %d, %v; want 1", n, err)
	}
}

func TestLayoutMismatch(t *testing.T) {
	dir := t.TempDir()
	open(t, file.Config{Dir: dir, Levels: 1})
	_, err := file.New(file.Config{Dir: dir, Levels: 2})
	if !errors.Is(err, sessionkit.ErrInvalidConfig) {
		t.Fatalf("New with other Levels = %v, want ErrInvalidConfig", err)
	}
	t.Log(err)
}

func TestForeignDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := file.New(file.Config{Dir: dir})
	if !errors.Is(err, sessionkit.ErrInvalidConfig) {
		t.Fatalf("New on a foreign non-empty directory = %v, want ErrInvalidConfig", err)
	}
	t.Log(err)
	if got := tree(t, dir); strings.Join(got, ",") != ".,notes.txt" {
		t.Fatalf("New changed a foreign directory: %q", got)
	}
}

// TestSharedDir runs concurrent Updates of one session through two
// providers on one Dir. Each has its own in-process locks, so only the
// file locks keep them from losing each other's writes, as between two
// processes.
func TestSharedDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no file locks here: a Dir is not shared")
	}
	dir := t.TempDir()
	ps := []*file.Provider{open(t, file.Config{Dir: dir}), open(t, file.Config{Dir: dir})}
	id := sessionkit.NewID()
	create(t, ps[0], id, vals("base", "0"))
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprintf("k%02d", i)
			if err := ps[i%2].Update(bg, id, sessionkit.Update{Set: vals(k, k)}); err != nil {
				t.Errorf("Update: %v", err)
			}
		}()
	}
	wg.Wait()
	r, err := ps[1].Get(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Map()) != n+1 {
		t.Fatalf("got %d values, want %d: writes were lost", len(r.Map()), n+1)
	}
}

const helperEnv = "SESSIONKIT_FILE_TEST_HELPER"

// TestHelperProcess is not a test: TestMultiProcess runs the test binary
// again with it, as a separate process updating a shared session.
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		return
	}
	var dir, id, name string
	var n int
	if _, err := fmt.Sscanf(spec, "%s %s %s %d", &dir, &id, &name, &n); err != nil {
		t.Fatal(err)
	}
	p, err := file.New(file.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range n {
		if err := p.Update(bg, id, sessionkit.Update{Set: vals(fmt.Sprintf("%s-%03d", name, i), "x")}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMultiProcess updates one session from several processes at once:
// no update may be lost.
func TestMultiProcess(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no file locks here: a Dir is not shared")
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	p := open(t, file.Config{Dir: dir})
	id := sessionkit.NewID()
	create(t, p, id, vals("base", "0"))
	const procs, n = 3, 150
	var wg sync.WaitGroup
	for w := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s proc%d %d", helperEnv, dir, id, w, n))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("helper process %d: %v\n%s", w, err, out)
			}
		}()
	}
	// This process writes too, through its own provider.
	for i := range n {
		if err := p.Update(bg, id, sessionkit.Update{Set: vals(fmt.Sprintf("self-%03d", i), "x")}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	r, err := p.Get(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + (procs+1)*n; len(r.Map()) != want {
		t.Fatalf("got %d values, want %d: writes from some process were lost", len(r.Map()), want)
	}
}

// TestRangeAndContext checks that Range, GC and Count stop when their
// context ends.
func TestRangeAndContext(t *testing.T) {
	p := open(t, file.Config{Dir: t.TempDir()})
	for range 5 {
		create(t, p, sessionkit.NewID(), vals("a", "1"))
	}
	ctx, cancel := context.WithCancel(bg)
	calls := 0
	err := p.Range(ctx, func(string, sessionkit.Record) bool {
		calls++
		if calls == 2 {
			cancel()
		}
		return true
	})
	if !errors.Is(err, context.Canceled) || calls != 2 {
		t.Fatalf("Range canceled after 2 calls = %v after %d calls", err, calls)
	}
	if err := p.GC(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("GC with a canceled context = %v", err)
	}
	if _, err := p.Count(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Count with a canceled context = %v", err)
	}
}

func BenchmarkProvider(b *testing.B) {
	providertest.BenchProvider(b, open(b, file.Config{Dir: b.TempDir()}))
}

func BenchmarkManager(b *testing.B) {
	providertest.BenchManager(b, open(b, file.Config{Dir: b.TempDir()}))
}

// TestSharedStore runs providertest.RunShared on pairs of providers over
// one directory, as processes of one host (or of hosts sharing a file
// system) would use it.
func TestSharedStore(t *testing.T) {
	providertest.RunShared(t, func(t *testing.T) (sessionkit.Provider, sessionkit.Provider) {
		cfg := file.Config{Dir: t.TempDir()}
		return open(t, cfg), open(t, cfg)
	})
}
