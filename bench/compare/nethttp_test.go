package compare

import "testing"

// go test -run '^$' -bench HTTP -benchmem -cpu 2 runs every net/http
// library on every workload, serial and parallel.

func benchHTTPWorkload(b *testing.B, op Op) {
	for _, lib := range HTTPLibs() {
		b.Run(lib.Name+"/serial", BenchHTTP(lib, op, false))
		b.Run(lib.Name+"/parallel", BenchHTTP(lib, op, true))
	}
}

func BenchmarkHTTPW1ReadUnchanged(b *testing.B) { benchHTTPWorkload(b, W1) }
func BenchmarkHTTPW2Increment(b *testing.B)     { benchHTTPWorkload(b, W2) }
func BenchmarkHTTPW3NewSession(b *testing.B)    { benchHTTPWorkload(b, W3) }

func BenchmarkHTTPBaseline(b *testing.B) {
	b.Run("serial", BaselineHTTP(false))
	b.Run("parallel", BaselineHTTP(true))
}

// TestHTTPWorkloads checks that every net/http library really does the
// work: W1 finds the value, W2 increments, W3 issues a cookie.
func TestHTTPWorkloads(t *testing.T) {
	for _, lib := range HTTPLibs() {
		t.Run(lib.Name, func(t *testing.T) {
			inst, err := lib.New()
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close()
			cookies, err := PreloadHTTP(inst, 3)
			if err != nil {
				t.Fatal(err)
			}
			c := NewHTTPClient()
			if err := c.Do(inst.Handler(OpHasName, nil), cookies[0]); err != nil {
				t.Fatal(err)
			}
			if has, err := c.Number(); err != nil || has != 1 {
				t.Fatalf("preloaded session has no name: %d, %v", has, err)
			}
			for want := 1; want <= 3; want++ {
				if err := c.Do(inst.Handler(W2, nil), cookies[1]); err != nil {
					t.Fatal(err)
				}
				if err := c.Do(inst.Handler(OpReadN, nil), cookies[1]); err != nil {
					t.Fatal(err)
				}
				if n, err := c.Number(); err != nil || n != want {
					t.Fatalf("W2: n = %d, %v; want %d", n, err, want)
				}
			}
			if err := c.Do(inst.Handler(W3, nil), ""); err != nil {
				t.Fatal(err)
			}
			if c.SessionCookie() == "" {
				t.Fatal("W3 set no cookie")
			}
		})
	}
}

// TestHTTPChecks runs the correctness checks on the net/http libraries and
// logs what each does; only sessionkit is required to pass them.
func TestHTTPChecks(t *testing.T) {
	for _, lib := range HTTPLibs() {
		f := CheckFixationHTTP(lib)
		t.Logf("%s: fixation: adopted=%v response cookie=%q stored under attacker ID=%v err=%q",
			lib.Name, f.Adopted, f.ResponseCookie, f.StoredUnderAttackerID, f.Err)
		u := CheckUpdatesHTTP(lib, 1000, 3)
		t.Logf("%s: updates: ok=%v wrong=%d/%d new cookies=%d panic=%q err=%q example=%q",
			lib.Name, u.OK(), u.Wrong, u.Sessions, u.NewCookies, u.Panic, u.Err, u.Example)
		mg := CheckMergeHTTP(lib, 200)
		t.Logf("%s: concurrent different keys: ok=%v lost=%d/%d panic=%q err=%q",
			lib.Name, mg.OK(), mg.Lost, mg.Sessions, mg.Panic, mg.Err)
		if lib.Name == "sessionkit" && (f.Adopted || f.Err != "" || !u.OK() || !mg.OK()) {
			t.Errorf("sessionkit failed a check: fixation %+v, updates %+v, merge %+v", f, u, mg)
		}
	}
}
