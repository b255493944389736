package compare

// The correctness checks of checks.go, through the net/http libraries.

// httpConn is a conn on a net/http library: one reused request and
// ResponseWriter.
type httpConn struct {
	inst HTTPInstance
	c    *HTTPClient
}

func (c httpConn) serve(id string, op Op, afterStart func()) (int, string, error) {
	cookie := ""
	if id != "" {
		cookie = CookieHeader(id)
	}
	if err := c.c.Do(c.inst.Handler(op, afterStart), cookie); err != nil {
		return 0, "", err
	}
	n := 0
	if len(c.c.w.body) > 0 { // the ops that read a number write it
		var err error
		if n, err = c.c.Number(); err != nil {
			return 0, "", err
		}
	}
	return n, c.c.SessionCookie(), nil
}

func httpSubject(lib HTTPLib) subject {
	return subject{lib.Name, func() (func() conn, func(), error) {
		inst, err := lib.New()
		if err != nil {
			return nil, nil, err
		}
		return func() conn { return httpConn{inst, NewHTTPClient()} }, inst.Close, nil
	}}
}

// CheckFixationHTTP is CheckFixation for a net/http library.
func CheckFixationHTTP(lib HTTPLib) FixationResult { return checkFixation(httpSubject(lib)) }

// CheckUpdatesHTTP is CheckUpdates for a net/http library.
func CheckUpdatesHTTP(lib HTTPLib, sessions, passes int) UpdatesResult {
	return checkUpdates(httpSubject(lib), sessions, passes)
}

// CheckMergeHTTP is CheckMerge for a net/http library.
func CheckMergeHTTP(lib HTTPLib, n int) MergeResult { return checkMerge(httpSubject(lib), n) }
