// Package providertest is the conformance suite for sessionkit providers,
// in the spirit of testing/fstest: any Provider, sessionkit's own or a
// third party's, runs it from an ordinary test.
//
//	func TestConformance(t *testing.T) {
//		providertest.Run(t, func(t *testing.T) sessionkit.Provider {
//			p, err := myprovider.New(myprovider.Config{Prefix: providertest.UniquePrefix(t)})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return p
//		})
//	}
//
// newProvider is called once per subtest and must return a provider with a
// namespace of its own (a fresh key prefix, table or directory): subtests
// run in parallel and Count must see only its own sessions. Run closes
// each provider when its subtest ends.
//
// What is checked: a missing ID reads as ErrNotFound; a Record from Get
// never changes afterwards and Update.Set is not kept; values round-trip
// byte for byte (binary keys and values, empty values, 256 KiB values);
// overwrite, delete and clear; sessions saved through a sessionkit manager
// read back (which checks a sessionkit.MethodReader's promise: the manager
// gives it Updates whose Set is nil), and a seeded random mix of requests
// through a manager, some overlapping, reads and leaves each session as a
// model of the manager's promise says (every change saved, none lost, none
// applied twice, and no destroyed or regenerated ID ever found again); a
// sessionkit.Copier keeps none of the memory it was handed; Create refuses
// a live ID with ErrExists and an Update without Create refuses a missing
// one with ErrNotFound (no resurrection after Delete, Rename or expiry);
// expiry is honoured on read even before GC; Touch (or an Update with only
// Expires) extends a session; Rename moves the data and kills the old ID;
// Count, Range and GC if the provider has them (GC removes expired sessions
// only; Range's fn may delete the session it is given); Update.Base is a
// hint only (a stale, empty or made-up Base gives what no Base gives, with
// and without a new deadline); concurrent Updates of different keys all
// persist; a canceled context makes every method fail with an error
// wrapping context.Canceled; and Close makes later calls fail without
// panicking.
//
// RunShared checks what Run cannot: two instances of a provider over one
// store, as processes of a fleet, each seeing the other's writes. A
// provider whose store can be shared runs both.
//
// A sessionkit.ClientSide provider (sessions sealed into the cookie) runs
// the cases that apply without server state instead: round trips (of
// Records holding their values as a map, packed, or none), binary
// safety, the cookie size limit, tampering, name binding, expiry, junk
// input and Close.
//
// Timing: expiry tests use deadlines about 2 seconds out, so providers
// that store whole seconds (memcached) pass; allow about 10 seconds per
// run.
package providertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/sessionkit/sessionkit"
)

// NewProvider returns a fresh provider with its own namespace.
type NewProvider func(t *testing.T) sessionkit.Provider

// UniquePrefix returns a short string unique to this test run and test,
// made of [a-z0-9_] only, for providers to namespace keys or tables.
func UniquePrefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "skt_" + strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(base64.RawURLEncoding.EncodeToString(b[:])))
}

// ID returns a fresh, valid session ID.
func ID() string { return sessionkit.NewID() }

// expiryUnit is the shortest deadline the suite relies on; providers with
// one-second storage precision round within it.
const expiryUnit = 2 * time.Second

// Later returns a deadline an hour from now, further away than any test
// runs: for sessions a test needs alive.
func Later() time.Time { return time.Now().Add(time.Hour) }

// Run runs the conformance suite against the providers newProvider makes.
func Run(t *testing.T, newProvider NewProvider) {
	t.Helper()
	open := func(t *testing.T) sessionkit.Provider {
		t.Helper()
		p := newProvider(t)
		if p == nil {
			t.Fatal("newProvider returned nil")
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	probe := newProvider(t)
	_, clientSide := probe.(sessionkit.ClientSide)
	_ = probe.Close()
	if clientSide {
		runClientSide(t, open)
		return
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, p sessionkit.Provider)
	}{
		{"GetMissing", testGetMissing},
		{"RoundTrip", testRoundTrip},
		{"BinarySafe", testBinarySafe},
		{"LargeValue", testLargeValue},
		{"IDLengths", testIDLengths},
		{"Overwrite", testOverwrite},
		{"SetMapNotKept", testSetMapNotKept},
		{"ThroughManager", testThroughManager},
		{"RandomRequests", testRandomRequests},
		{"CopierKeepsNothing", testCopierKeepsNothing},
		{"GetIsASnapshot", testGetIsASnapshot},
		{"DeleteKeys", testDeleteKeys},
		{"Clear", testClear},
		{"CreateExisting", testCreateExisting},
		{"UpdateMissing", testUpdateMissing},
		{"DeleteSession", testDeleteSession},
		{"NoResurrectionAfterDelete", testNoResurrectionAfterDelete},
		{"Expiry", testExpiry},
		{"ExpiredCanBeCreatedAgain", testExpiredRecreate},
		{"FarFutureDeadline", testFarFutureDeadline},
		{"Touch", testTouch},
		{"Rename", testRename},
		{"RenameMissing", testRenameMissing},
		{"RenameOntoLive", testRenameOntoLive},
		{"RenameUnderConcurrentUpdates", testRenameUnderConcurrentUpdates},
		{"RenameNeverNeither", testRenameNeverNeither},
		{"ConcurrentRenames", testConcurrentRenames},
		{"BaseIsAHint", testBaseIsAHint},
		{"ConcurrentMerge", testConcurrentMerge},
		{"ConcurrentSameKey", testConcurrentSameKey},
		{"ConcurrentDeleteAndUpdate", testConcurrentDeleteAndUpdate},
		{"Count", testCount},
		{"Range", testRange},
		{"GC", testGC},
		{"ContextCanceled", testContextCanceled},
		{"Close", testClose},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, open(t))
		})
	}
}

var bg = context.Background()

// Create stores a new session with values and the given deadline, and
// fails the test on error.
func Create(t testing.TB, p sessionkit.Provider, id string, values map[string][]byte, expires time.Time) {
	t.Helper()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: values, Expires: expires}); err != nil {
		t.Fatalf("Update(Create) of %s: %v", id, err)
	}
}

func mustGet(t *testing.T, p sessionkit.Provider, id string) sessionkit.Record {
	t.Helper()
	r, err := p.Get(bg, id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

func wantMissing(t *testing.T, p sessionkit.Provider, id, why string) {
	t.Helper()
	r, err := p.Get(bg, id)
	if !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("%s: Get(%s) = %v, %v; want an error wrapping ErrNotFound", why, id, r.Map(), err)
	}
}

func wantValues(t *testing.T, r sessionkit.Record, want map[string][]byte) {
	t.Helper()
	got := map[string][]byte{}
	for k, v := range r.All() {
		if _, dup := got[k]; dup {
			t.Fatalf("key %q listed twice", k)
		}
		got[k] = v
		if l, ok := r.Lookup(k); !ok || !bytes.Equal(l, v) {
			t.Fatalf("key %q: All gives %q but Lookup %q, %v", k, v, l, ok)
		}
	}
	if n := r.Len(); n != len(got) {
		t.Fatalf("Len() = %d, but All lists %d values", n, len(got))
	}
	if len(got) != len(want) {
		t.Fatalf("got %d values %q, want %d %q", len(got), got, len(want), want)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("key %q missing; got %q", k, got)
		}
		if !bytes.Equal(g, w) {
			t.Fatalf("key %q = %q, want %q", k, g, w)
		}
	}
}

// Values builds a session's values from key, value pairs of strings.
func Values(kv ...string) map[string][]byte {
	m := make(map[string][]byte, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = []byte(kv[i+1])
	}
	return m
}

func testGetMissing(t *testing.T, p sessionkit.Provider) {
	wantMissing(t, p, ID(), "a never-stored ID")
}

// A deadline past what Unix nanoseconds hold (the year 2262) is a live
// session, not one that wrapped into the past: the manager sets such
// deadlines for a very long UpdateExpiration. Providers may cap it.
func testFarFutureDeadline(t *testing.T, p sessionkit.Provider) {
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	check := func(why, id string) {
		t.Helper()
		r := mustGet(t, p, id)
		if r.Expires.Before(time.Now().Add(24 * time.Hour)) {
			t.Fatalf("%s: Expires %v, want a far deadline", why, r.Expires)
		}
	}
	id := ID()
	Create(t, p, id, Values("a", "1"), far)
	check("after Create", id)
	other := ID()
	Create(t, p, other, Values("a", "1"), Later())
	if err := p.Update(bg, other, sessionkit.Update{Set: Values("b", "2"), Expires: far}); err != nil {
		t.Fatal(err)
	}
	check("after Update", other)
	renamed := ID()
	if err := p.Rename(bg, other, renamed, far); err != nil {
		t.Fatal(err)
	}
	check("after Rename", renamed)
}

func testRoundTrip(t *testing.T, p sessionkit.Provider) {
	id := ID()
	exp := Later()
	Create(t, p, id, Values("a", "1", "b", "two"), exp)
	r := mustGet(t, p, id)
	wantValues(t, r, Values("a", "1", "b", "two"))
	if d := r.Expires.Sub(exp); d < -time.Second || d > time.Second {
		t.Fatalf("Expires = %v, want %v within a second", r.Expires, exp)
	}
}

func testBinarySafe(t *testing.T, p sessionkit.Provider) {
	id := ID()
	v := map[string][]byte{
		"\x00c":            {0x00, 0xff, 0x10},
		"empty":            {},
		"ünïcödé key ✓":    []byte("value with\nnewline and \x00 NUL"),
		"spaces and:colon": {0xde, 0xad, 0xbe, 0xef},
	}
	Create(t, p, id, v, Later())
	wantValues(t, mustGet(t, p, id), v)
}

func testLargeValue(t *testing.T, p sessionkit.Provider) {
	id := ID()
	big := make([]byte, 256<<10)
	_, _ = rand.Read(big)
	Create(t, p, id, map[string][]byte{"big": big}, Later())
	wantValues(t, mustGet(t, p, id), map[string][]byte{"big": big})
}

func testOverwrite(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("a", "1", "b", "2"), Later())
	if err := p.Update(bg, id, sessionkit.Update{Set: Values("a", "changed")}); err != nil {
		t.Fatal(err)
	}
	wantValues(t, mustGet(t, p, id), Values("a", "changed", "b", "2"))
}

// testSetMapNotKept: the manager reuses Update.Set once Update returns, so
// a provider must have copied what it needs out of the map by then.
func testSetMapNotKept(t *testing.T, p sessionkit.Provider) {
	id := ID()
	set := Values("a", "1", "b", "2")
	Create(t, p, id, set, Later())
	clear(set)
	set["evil"] = []byte("x")
	wantValues(t, mustGet(t, p, id), Values("a", "1", "b", "2"))
	set = Values("c", "3")
	del := []string{"a"}
	if err := p.Update(bg, id, sessionkit.Update{Set: set, Delete: del}); err != nil {
		t.Fatal(err)
	}
	set["c"], del[0] = []byte("changed"), "b"
	wantValues(t, mustGet(t, p, id), Values("b", "2", "c", "3"))
}

// testCopierKeepsNothing: a sessionkit.Copier is handed the ids and the
// values in buffers that the manager overwrites for its next request, as
// this test does after every call: the stored session must not change
// with them.
func testCopierKeepsNothing(t *testing.T, p sessionkit.Provider) {
	if _, ok := p.(sessionkit.Copier); !ok {
		t.Skip("provider is not a sessionkit.Copier")
	}
	want := ID()
	idBuf := []byte(want)
	id := unsafe.String(&idBuf[0], len(idBuf))
	buf := make([]byte, 4)
	// reuse gives the provider the buffers again, as the manager's next
	// save would: id back in place, vals written over the old ones.
	reuse := func(vals string) (a, b []byte) {
		copy(idBuf, want)
		copy(buf, vals)
		return buf[0:2:2], buf[2:4:4]
	}
	// scribble is the manager's next request writing over both.
	scribble := func() {
		copy(idBuf, ID())
		copy(buf, "!!!!")
	}
	a, _ := reuse("v1xx")
	Create(t, p, id, map[string][]byte{"a": a}, Later())
	scribble()
	wantValues(t, mustGet(t, p, want), Values("a", "v1"))

	a, b := reuse("v2v3")
	if err := p.Update(bg, id, sessionkit.Update{Set: map[string][]byte{"a": a, "b": b}}); err != nil {
		t.Fatal(err)
	}
	scribble()
	wantValues(t, mustGet(t, p, want), Values("a", "v2", "b", "v3"))

	ext := Later().Add(time.Hour)
	reuse("")
	if err := extend(p, id, ext); err != nil {
		t.Fatal(err)
	}
	scribble()
	r := mustGet(t, p, want)
	wantValues(t, r, Values("a", "v2", "b", "v3"))
	if r.Expires.Sub(ext).Abs() > time.Second {
		t.Fatalf("Expires after Touch = %v, want %v", r.Expires, ext)
	}

	reuse("")
	wantValues(t, mustGet(t, p, id), Values("a", "v2", "b", "v3"))
	scribble()
	wantValues(t, mustGet(t, p, want), Values("a", "v2", "b", "v3"))

	wantNew := ID()
	newBuf := []byte(wantNew)
	newID := unsafe.String(&newBuf[0], len(newBuf))
	reuse("")
	if err := p.Rename(bg, id, newID, ext); err != nil {
		t.Fatal(err)
	}
	scribble()
	copy(newBuf, ID())
	wantMissing(t, p, want, "after Rename with both IDs in reused buffers")
	wantValues(t, mustGet(t, p, wantNew), Values("a", "v2", "b", "v3"))

	copy(newBuf, wantNew)
	if err := p.Delete(bg, newID); err != nil {
		t.Fatal(err)
	}
	copy(newBuf, ID())
	wantMissing(t, p, wantNew, "after Delete with its ID in a reused buffer")
}

// testGetIsASnapshot: the manager reads strings straight out of a
// Record's bytes, so what Get returned must not change when the session
// is written afterwards.
func testGetIsASnapshot(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("a", "1", "b", "2"), Later())
	before := mustGet(t, p, id)
	if err := p.Update(bg, id, sessionkit.Update{Set: Values("a", "changed", "c", "3"), Delete: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Update(bg, id, sessionkit.Update{Clear: true, Set: Values("z", "9")}); err != nil {
		t.Fatal(err)
	}
	wantValues(t, before, Values("a", "1", "b", "2"))
}

func testDeleteKeys(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("a", "1", "b", "2", "c", "3"), Later())
	if err := p.Update(bg, id, sessionkit.Update{Delete: []string{"a", "nope"}, Set: Values("d", "4")}); err != nil {
		t.Fatal(err)
	}
	wantValues(t, mustGet(t, p, id), Values("b", "2", "c", "3", "d", "4"))
}

func testClear(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("a", "1", "b", "2"), Later())
	if err := p.Update(bg, id, sessionkit.Update{Clear: true, Set: Values("c", "3")}); err != nil {
		t.Fatal(err)
	}
	wantValues(t, mustGet(t, p, id), Values("c", "3"))
}

// testIDLengths uses IDs of every valid length class: the shortest, the
// default, longer, and the longest a client may send (a cookie of
// MaxIDLength characters reaches Get as it is). Each must be missing
// before it is stored, then round-trip, be listed by Range under its own
// ID, rename to an ID of another length, and delete.
func testIDLengths(t *testing.T, p sessionkit.Provider) {
	long := strings.Repeat(ID(), sessionkit.MaxIDLength/sessionkit.DefaultIDLength+1)
	lengths := []int{sessionkit.MinIDLength, sessionkit.DefaultIDLength, sessionkit.DefaultIDLength + 1, 200, sessionkit.MaxIDLength - 1, sessionkit.MaxIDLength}
	ids := map[string]string{}
	for _, n := range lengths {
		id := long[len(long)-n:]
		wantMissing(t, p, id, fmt.Sprintf("a never-stored %d-byte ID", n))
		Create(t, p, id, Values("n", strconv.Itoa(n)), Later())
		wantValues(t, mustGet(t, p, id), Values("n", strconv.Itoa(n)))
		ids[id] = strconv.Itoa(n)
	}
	if rg, ok := p.(sessionkit.Ranger); ok {
		if got := rangeValues(t, rg, ids, "n"); !maps.Equal(got, ids) {
			t.Fatalf("Range listed %v, want %v", got, ids)
		}
	}
	for i, n := range lengths {
		id := long[len(long)-n:]
		to := lengths[(i+1)%len(lengths)]
		newID := strings.ToUpper(long[:to])
		if err := p.Rename(bg, id, newID, Later()); err != nil {
			t.Fatalf("Rename from a %d-byte ID to a %d-byte one: %v", n, to, err)
		}
		wantMissing(t, p, id, fmt.Sprintf("a %d-byte ID after Rename", n))
		wantValues(t, mustGet(t, p, newID), Values("n", strconv.Itoa(n)))
		if err := p.Delete(bg, newID); err != nil {
			t.Fatal(err)
		}
		wantMissing(t, p, newID, fmt.Sprintf("a %d-byte ID after Delete", to))
	}
}

func testCreateExisting(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("a", "1"), Later())
	err := p.Update(bg, id, sessionkit.Update{Create: true, Set: Values("a", "other"), Expires: Later()})
	if !errors.Is(err, sessionkit.ErrExists) {
		t.Fatalf("Update(Create) of a live ID = %v, want ErrExists", err)
	}
	wantValues(t, mustGet(t, p, id), Values("a", "1"))
}

func testUpdateMissing(t *testing.T, p sessionkit.Provider) {
	id := ID()
	err := p.Update(bg, id, sessionkit.Update{Set: Values("a", "1"), Expires: Later()})
	if !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Update without Create of a missing ID = %v, want ErrNotFound", err)
	}
	wantMissing(t, p, id, "after a refused Update")
}

func testDeleteSession(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("a", "1"), Later())
	if err := p.Delete(bg, id); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, p, id, "after Delete")
	if err := p.Delete(bg, id); err != nil {
		t.Fatalf("Delete of a missing session = %v, want nil", err)
	}
	if err := p.Delete(bg, ID()); err != nil {
		t.Fatalf("Delete of a never-stored session = %v, want nil", err)
	}
}

func testNoResurrectionAfterDelete(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("a", "1"), Later())
	if err := p.Delete(bg, id); err != nil {
		t.Fatal(err)
	}
	if err := p.Update(bg, id, sessionkit.Update{Set: Values("b", "2"), Expires: Later()}); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Update after Delete = %v, want ErrNotFound", err)
	}
	if err := p.Update(bg, id, sessionkit.Update{Expires: Later()}); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("expiry-only Update after Delete = %v, want ErrNotFound", err)
	}
	if tc, ok := p.(sessionkit.Toucher); ok {
		if err := tc.Touch(bg, id, Later()); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatalf("Touch after Delete = %v, want ErrNotFound", err)
		}
	}
	wantMissing(t, p, id, "after updates of a deleted session")
}

func testExpiry(t *testing.T, p sessionkit.Provider) {
	short, long := ID(), ID()
	Create(t, p, short, Values("a", "1"), time.Now().Add(expiryUnit))
	Create(t, p, long, Values("a", "1"), Later())
	mustGet(t, p, short)
	time.Sleep(expiryUnit + 1500*time.Millisecond)
	wantMissing(t, p, short, "after its deadline, before any GC")
	if err := p.Update(bg, short, sessionkit.Update{Set: Values("b", "2"), Expires: Later()}); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Update of an expired session = %v, want ErrNotFound", err)
	}
	wantMissing(t, p, short, "after an Update of an expired session")
	mustGet(t, p, long)
}

func testExpiredRecreate(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("old", "1"), time.Now().Add(expiryUnit))
	time.Sleep(expiryUnit + 1500*time.Millisecond)
	// An expired session is gone: creating the ID again must work and
	// must not bring the old values back.
	Create(t, p, id, Values("new", "2"), Later())
	wantValues(t, mustGet(t, p, id), Values("new", "2"))
}

// testBaseIsAHint: Update.Base may let a provider skip its read, but only
// while the stored session is still Base. A Base that is stale (another
// write, a touch, a delete came in between), empty, or made up under a
// revision that is not the stored one must give exactly what the Update
// gives without one; the Base that is current must give the same too. Every step runs with and without a new
// deadline in the Update (the manager always sends one).
func testBaseIsAHint(t *testing.T, p sessionkit.Provider) {
	for _, withDeadline := range []bool{false, true} {
		t.Run(fmt.Sprintf("deadline=%v", withDeadline), func(t *testing.T) {
			baseIsAHint(t, p, withDeadline)
		})
	}
}

func baseIsAHint(t *testing.T, p sessionkit.Provider, withDeadline bool) {
	deadline := Later().Add(30 * time.Minute).Truncate(time.Second)
	update := func(id string, u sessionkit.Update) error {
		if withDeadline {
			u.Expires = deadline
		}
		return p.Update(bg, id, u)
	}
	id := ID()
	Create(t, p, id, Values("a", "1", "b", "2"), Later())
	read := mustGet(t, p, id)
	// Another request writes b after this one read the session: a write
	// made against the stale read must keep it.
	if err := p.Update(bg, id, sessionkit.Update{Set: Values("b", "3")}); err != nil {
		t.Fatal(err)
	}
	// A revision, where a provider keeps one, changes with every write,
	// a touch included: Base.Rev is only as good as that.
	if r := mustGet(t, p, id); read.Rev != 0 && r.Rev == read.Rev {
		t.Fatalf("Rev %d unchanged by an Update", r.Rev)
	}
	before := mustGet(t, p, id)
	if err := extend(p, id, before.Expires.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, p, id); before.Rev != 0 && r.Rev == before.Rev {
		t.Fatalf("Rev %d unchanged by a Touch", r.Rev)
	}
	if err := update(id, sessionkit.Update{Set: Values("a", "9"), Base: read}); err != nil {
		t.Fatal(err)
	}
	wantValues(t, mustGet(t, p, id), Values("a", "9", "b", "3"))

	// The current Base, with a delete.
	if err := update(id, sessionkit.Update{Delete: []string{"a"}, Set: Values("c", "4"), Base: mustGet(t, p, id)}); err != nil {
		t.Fatal(err)
	}
	wantValues(t, mustGet(t, p, id), Values("b", "3", "c", "4"))

	// A made-up Base adds nothing of its own, with no revision, one that
	// is not the stored one, or a stale one. (With the current revision,
	// a provider may trust Base's values: the manager passes Base as Get
	// returned it.)
	for _, rev := range []uint64{0, ^uint64(0), read.Rev} {
		forged := sessionkit.Record{Packed: sessionkit.Pack(Values("x", "forged", "b", "3")), Expires: Later(), Rev: rev}
		if err := update(id, sessionkit.Update{Set: Values("d", "5"), Base: forged}); err != nil {
			t.Fatal(err)
		}
		wantValues(t, mustGet(t, p, id), Values("b", "3", "c", "4", "d", "5"))
	}

	// A touch after the read: an Update that keeps the deadline keeps the
	// touched one, not the one that was read.
	read = mustGet(t, p, id)
	touched := read.Expires.Add(time.Hour)
	if err := extend(p, id, touched); err != nil {
		t.Fatal(err)
	}
	if err := update(id, sessionkit.Update{Set: Values("e", "6"), Base: read}); err != nil {
		t.Fatal(err)
	}
	r := mustGet(t, p, id)
	wantValues(t, r, Values("b", "3", "c", "4", "d", "5", "e", "6"))
	want := touched
	if withDeadline {
		want = deadline
	}
	if r.Expires.Sub(want).Abs() > time.Second {
		t.Fatalf("an Update made against a read from before a touch: Expires %v, want %v", r.Expires, want)
	}

	// Clear against a stale Base.
	if err := p.Update(bg, id, sessionkit.Update{Set: Values("f", "7")}); err != nil {
		t.Fatal(err)
	}
	if err := update(id, sessionkit.Update{Clear: true, Set: Values("g", "8"), Base: read}); err != nil {
		t.Fatal(err)
	}
	wantValues(t, mustGet(t, p, id), Values("g", "8"))

	// A Base read before the session was deleted brings nothing back.
	read = mustGet(t, p, id)
	if err := p.Delete(bg, id); err != nil {
		t.Fatal(err)
	}
	if err := update(id, sessionkit.Update{Set: Values("h", "9"), Base: read}); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Update of a deleted session with a Base read before the delete = %v, want ErrNotFound", err)
	}
	wantMissing(t, p, id, "after an Update with a stale Base of a deleted session")
}

// extend moves a session's deadline the way the manager does: with Touch
// if the provider has it, else with an Update that carries only Expires.
func extend(p sessionkit.Provider, id string, expires time.Time) error {
	if tc, ok := p.(sessionkit.Toucher); ok {
		return tc.Touch(bg, id, expires)
	}
	return p.Update(bg, id, sessionkit.Update{Expires: expires})
}

func testTouch(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("a", "1"), time.Now().Add(expiryUnit))
	ext := time.Now().Add(time.Hour)
	if err := extend(p, id, ext); err != nil {
		t.Fatal(err)
	}
	time.Sleep(expiryUnit + 1500*time.Millisecond)
	r := mustGet(t, p, id)
	wantValues(t, r, Values("a", "1"))
	if d := r.Expires.Sub(ext); d < -time.Second || d > time.Second {
		t.Fatalf("Expires after touch = %v, want %v", r.Expires, ext)
	}
	// An Update without Expires keeps the deadline.
	if err := p.Update(bg, id, sessionkit.Update{Set: Values("b", "2")}); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, p, id); r.Expires.Sub(ext).Abs() > time.Second {
		t.Fatalf("Update without Expires changed the deadline to %v, want %v", r.Expires, ext)
	}
}

func testRename(t *testing.T, p sessionkit.Provider) {
	oldID, newID := ID(), ID()
	Create(t, p, oldID, Values("a", "1", "b", "2"), Later())
	exp := time.Now().Add(2 * time.Hour)
	if err := p.Rename(bg, oldID, newID, exp); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, p, oldID, "the old ID after Rename")
	r := mustGet(t, p, newID)
	wantValues(t, r, Values("a", "1", "b", "2"))
	if r.Expires.Sub(exp).Abs() > time.Second {
		t.Fatalf("Expires after Rename = %v, want %v", r.Expires, exp)
	}
	if err := p.Update(bg, oldID, sessionkit.Update{Set: Values("c", "3"), Expires: Later()}); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Update of the old ID after Rename = %v, want ErrNotFound", err)
	}
	wantMissing(t, p, oldID, "the old ID after a late Update")
}

func testRenameMissing(t *testing.T, p sessionkit.Provider) {
	oldID, newID := ID(), ID()
	if err := p.Rename(bg, oldID, newID, Later()); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Rename of a missing ID = %v, want ErrNotFound", err)
	}
	wantMissing(t, p, newID, "the target of a failed Rename")
}

func testRenameOntoLive(t *testing.T, p sessionkit.Provider) {
	a, b := ID(), ID()
	Create(t, p, a, Values("who", "a"), Later())
	Create(t, p, b, Values("who", "b"), Later())
	if err := p.Rename(bg, a, b, Later()); !errors.Is(err, sessionkit.ErrExists) {
		t.Fatalf("Rename onto a live ID = %v, want ErrExists", err)
	}
	wantValues(t, mustGet(t, p, a), Values("who", "a"))
	wantValues(t, mustGet(t, p, b), Values("who", "b"))
}

// testRenameUnderConcurrentUpdates renames a session while other
// goroutines keep updating it under the old ID: every Update that
// succeeded must be in the renamed session, each key holding the last
// value written to it (a rename that copies a stale snapshot over a newer
// write fails), and the Updates after the rename must fail with
// ErrNotFound.
func testRenameUnderConcurrentUpdates(t *testing.T, p sessionkit.Provider) {
	const workers = 4
	for round := range 10 {
		oldID, newID := ID(), ID()
		Create(t, p, oldID, Values("base", "0"), Later())
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			done []string
		)
		last := make([]int, workers) // the last i each worker wrote, -1 for none
		stop := make(chan struct{})
		for w := range workers {
			last[w] = -1
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					// Each write adds a key of its own and overwrites the
					// worker's counter.
					k := fmt.Sprintf("w%d-%d", w, i)
					err := p.Update(bg, oldID, sessionkit.Update{Set: Values(k, "1", fmt.Sprintf("w%d", w), fmt.Sprint(i))})
					if errors.Is(err, sessionkit.ErrNotFound) {
						return
					}
					if err != nil {
						t.Errorf("Update: %v", err)
						return
					}
					mu.Lock()
					done = append(done, k)
					mu.Unlock()
					last[w] = i
				}
			})
		}
		time.Sleep(2 * time.Millisecond)
		err := p.Rename(bg, oldID, newID, Later())
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("round %d: Rename: %v", round, err)
		}
		got := mustGet(t, p, newID)
		for _, k := range done {
			if _, ok := got.Lookup(k); !ok {
				t.Fatalf("round %d: Update of %s succeeded on the old ID but is missing after Rename", round, k)
			}
		}
		for w, i := range last {
			if v, _ := got.Lookup(fmt.Sprintf("w%d", w)); i >= 0 && string(v) != fmt.Sprint(i) {
				t.Fatalf("round %d: worker %d's last successful write (%d) is lost: the renamed session holds %q", round, w, i, v)
			}
		}
		wantMissing(t, p, oldID, "the old ID after Rename")
	}
}

// testRenameNeverNeither reads the old ID, then the new one, while Rename
// runs: a reader may see both, but never neither, so a request racing a
// login's Regenerate never finds itself without a session.
func testRenameNeverNeither(t *testing.T, p sessionkit.Provider) {
	for round := range 20 {
		oldID, newID := ID(), ID()
		Create(t, p, oldID, Values("a", "1"), Later())
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				_, e1 := p.Get(bg, oldID)
				_, e2 := p.Get(bg, newID)
				if e1 != nil && e2 != nil {
					t.Errorf("round %d: neither ID readable during Rename: %v / %v", round, e1, e2)
					return
				}
				select {
				case <-done:
					return
				default:
				}
			}
		})
		time.Sleep(time.Millisecond)
		err := p.Rename(bg, oldID, newID, Later())
		time.Sleep(time.Millisecond)
		close(done)
		wg.Wait()
		if err != nil {
			t.Fatalf("round %d: Rename: %v", round, err)
		}
	}
}

// RenameBurst creates and renames sessions from workers goroutines at
// once, rounds each, as a burst of logins does (every login regenerates
// its session's ID), spreading the goroutines over ps, which share one
// store. The sessions share nothing, so no Create or Rename may fail: a
// provider whose renames lock more than their own rows (InnoDB's gap
// locks), or whose transactions cannot wait for one another, fails here.
// The conformance suites run a small burst; a provider's own tests can
// run a larger one, with a pool to match.
func RenameBurst(t testing.TB, workers, rounds int, ps ...sessionkit.Provider) {
	t.Helper()
	errs := make(chan error, 2*workers*rounds)
	var wg sync.WaitGroup
	for w := range workers {
		p := ps[w%len(ps)]
		wg.Go(func() {
			for range rounds {
				id, exp := ID(), Later()
				if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: Values("a", "1"), Expires: exp}); err != nil {
					errs <- fmt.Errorf("create: %w", err)
					continue
				}
				if err := p.Rename(bg, id, ID(), exp); err != nil {
					errs <- fmt.Errorf("rename: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 3 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d creations and renames of sessions that share nothing failed", n, 2*workers*rounds)
	}
}

func testConcurrentRenames(t *testing.T, p sessionkit.Provider) { RenameBurst(t, 8, 25, p) }

func testConcurrentMerge(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("base", "0"), Later())
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprintf("k%02d", i)
			errs <- p.Update(bg, id, sessionkit.Update{Set: Values(k, k)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Update: %v", err)
		}
	}
	want := Values("base", "0")
	for i := range n {
		k := fmt.Sprintf("k%02d", i)
		want[k] = []byte(k)
	}
	wantValues(t, mustGet(t, p, id), want)
}

func testConcurrentSameKey(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("k", "start"), Later())
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Update(bg, id, sessionkit.Update{Set: Values("k", fmt.Sprintf("w%02d", i))}); err != nil {
				t.Errorf("concurrent Update: %v", err)
			}
		}()
	}
	wg.Wait()
	k, _ := mustGet(t, p, id).Lookup("k")
	got := string(k)
	if len(got) != 3 || got[0] != 'w' {
		t.Fatalf("after concurrent writes of one key, value = %q; want one writer's value whole", got)
	}
}

// testConcurrentDeleteAndUpdate races Delete against Updates: once Delete
// has returned, no Update may have recreated the session.
func testConcurrentDeleteAndUpdate(t *testing.T, p sessionkit.Provider) {
	for round := range 10 {
		id := ID()
		Create(t, p, id, Values("a", "1"), Later())
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					err := p.Update(bg, id, sessionkit.Update{Set: Values(fmt.Sprintf("w%d", w), fmt.Sprint(i))})
					if errors.Is(err, sessionkit.ErrNotFound) {
						return
					}
					if err != nil {
						t.Errorf("Update: %v", err)
						return
					}
				}
			}()
		}
		time.Sleep(5 * time.Millisecond)
		if err := p.Delete(bg, id); err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
		wantMissing(t, p, id, fmt.Sprintf("round %d: after Delete raced with Updates", round))
	}
}

func testCount(t *testing.T, p sessionkit.Provider) {
	c, ok := p.(sessionkit.Counter)
	if !ok {
		t.Skip("provider is not a sessionkit.Counter")
	}
	n0, err := c.Count(bg)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{ID(), ID(), ID()}
	for _, id := range ids {
		Create(t, p, id, Values("a", "1"), Later())
	}
	if n, err := c.Count(bg); err != nil || n != n0+3 {
		t.Fatalf("Count after 3 creates = %d, %v; want %d", n, err, n0+3)
	}
	if err := p.Delete(bg, ids[0]); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Count(bg); err != nil || n != n0+2 {
		t.Fatalf("Count after a delete = %d, %v; want %d", n, err, n0+2)
	}
}

// rangeValues walks rg and returns, for each session it lists whose ID is
// a key of mine, the value stored under key.
func rangeValues(t *testing.T, rg sessionkit.Ranger, mine map[string]string, key string) map[string]string {
	t.Helper()
	got := map[string]string{}
	if err := rg.Range(bg, func(id string, r sessionkit.Record) bool {
		if _, ok := mine[id]; ok {
			v, _ := r.Lookup(key)
			got[id] = string(v)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func testRange(t *testing.T, p sessionkit.Provider) {
	rg, ok := p.(sessionkit.Ranger)
	if !ok {
		t.Skip("provider is not a sessionkit.Ranger")
	}
	want := map[string]string{ID(): "x", ID(): "y"}
	for id, v := range want {
		Create(t, p, id, Values("v", v), Later())
	}
	got := rangeValues(t, rg, want, "v")
	for id, v := range want {
		if got[id] != v {
			t.Fatalf("Range gave %q for %s, want %q (all: %v)", got[id], id, v, got)
		}
	}
	calls := 0
	if err := rg.Range(bg, func(string, sessionkit.Record) bool { calls++; return false }); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("Range went on after fn returned false: %d calls", calls)
	}
	// fn may call the provider: ending every session of one user, say,
	// deletes sessions as Range finds them.
	done := make(chan error, 1)
	go func() {
		done <- rg.Range(bg, func(id string, _ sessionkit.Record) bool {
			if _, mine := want[id]; mine {
				if err := p.Delete(bg, id); err != nil {
					t.Errorf("Delete(%s) inside Range: %v", id, err)
				}
			}
			return true
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Range whose fn deletes the session it is given did not return within 10 s: does Range hold a lock Delete needs?")
	}
	for id := range want {
		if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatalf("Get(%s) after a Delete inside Range: %v, want ErrNotFound", id, err)
		}
	}
}

func testGC(t *testing.T, p sessionkit.Provider) {
	gc, ok := p.(sessionkit.GarbageCollector)
	if !ok {
		t.Skip("provider is not a sessionkit.GarbageCollector (its storage expires data itself)")
	}
	short1, short2, long := ID(), ID(), ID()
	Create(t, p, short1, Values("a", "1"), time.Now().Add(expiryUnit))
	Create(t, p, short2, Values("a", "1"), time.Now().Add(expiryUnit))
	Create(t, p, long, Values("a", "1"), Later())
	if err := gc.GC(bg); err != nil {
		t.Fatal(err)
	}
	mustGet(t, p, short1) // not yet expired: GC must keep it
	time.Sleep(expiryUnit + 1500*time.Millisecond)
	if err := gc.GC(bg); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, p, short1, "after GC")
	wantMissing(t, p, short2, "after GC")
	wantValues(t, mustGet(t, p, long), Values("a", "1"))
	if c, ok := p.(sessionkit.Counter); ok {
		if n, err := c.Count(bg); err != nil || n != 1 {
			t.Fatalf("Count after GC = %d, %v; want 1", n, err)
		}
	}
}

func testContextCanceled(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("a", "1"), Later())
	ctx, cancel := context.WithCancel(bg)
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s with a canceled context = %v, want an error wrapping context.Canceled", op, err)
		}
	}
	_, err := p.Get(ctx, id)
	check("Get", err)
	check("Update", p.Update(ctx, id, sessionkit.Update{Set: Values("a", "changed")}))
	check("Delete", p.Delete(ctx, id))
	check("Rename", p.Rename(ctx, id, ID(), Later()))
	if tc, ok := p.(sessionkit.Toucher); ok {
		check("Touch", tc.Touch(ctx, id, Later()))
	}
	if c, ok := p.(sessionkit.Counter); ok {
		_, err := c.Count(ctx)
		check("Count", err)
	}
	// A canceled call must not have half-applied anything.
	wantValues(t, mustGet(t, p, id), Values("a", "1"))
}

func testClose(t *testing.T, p sessionkit.Provider) {
	id := ID()
	Create(t, p, id, Values("a", "1"), Later())
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := p.Get(bg, id); err == nil {
		t.Fatal("Get after Close succeeded; want an error")
	}
	if err := p.Update(bg, ID(), sessionkit.Update{Create: true, Set: Values("a", "1"), Expires: Later()}); err == nil {
		t.Fatal("Update after Close succeeded; want an error")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
