package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Storage layout, shared by every script below and by layout.go.
//
// A session is one string under Prefix+ID:
//
//	"S" | deadline: Unix ms, 15 decimal digits | token: 16 hex digits | values
//
// where values are packed as sessionkit.Packed (a version byte, the entry
// count, then each key and value with its length). Get is then one plain
// GET, the cheapest read Redis has, and its reply is the session as
// sessionkit reads it: the values are used in place, with no map and no
// copy. Redis expires the key itself (SET ... PXAT), a millisecond before
// the deadline, so that the key is gone when the deadline comes (see
// expireAt in layout.go).
//
// The token changes on every write. It lets a write detect that go-redis
// resent it after it had already applied (it then reports the success it
// was, instead of ErrExists or ErrNotFound, and does not apply twice), and
// lets the Cluster Rename detect a write that came between its steps.
//
// Writes that depend on what is stored are Lua scripts: each reads the
// session, merges, and writes the whole string back, atomically. The
// merge (keys the Update does not mention keep their stored values) is
// what keeps two concurrent requests that set different keys from losing
// each other's writes.
//
// Sessions written by earlier versions of this provider are hashes: one
// field per value named "." + key, a marker field "" holding the token,
// and a field "e" holding the deadline (older ones lack it; the key's
// expiry is then the deadline). Get reads them with a second command
// (HGETALL after GET's WRONGTYPE), and every script below reads them too
// (load) and writes them back in the string layout, so each such session
// is converted by its next write.
//
// With Config.LocalCache, every write and delete in the scripts below is
// also announced: PUBLISH on Prefix+"invalidate" of the new token (16
// characters; "----------------" for a deletion) followed by the key, in
// the same atomic step. Other processes drop their cached copy of the
// session on hearing a token that is not their copy's (localcache.go).
//
// Scripts return 0 for success or one of the codes below.
const (
	codeOK       = 0
	codeExists   = 1
	codeNotFound = 2
	codeCorrupt  = 3
	// codeStoredBase is the update script's success when it stored the
	// values merged from Update.Base, so the caller knows what Redis now
	// holds.
	codeStoredBase = 4
)

// luaLib defines what the scripts share:
//
//   - load(k) returns the session at k in the string layout, nil if k is
//     missing, or false if k holds something this provider did not write.
//     Only the header is checked; the values are checked by whoever reads
//     them. A legacy hash comes back converted, its marker as the token
//     (zero-padded or cut to 16 characters, as the Go side does).
//   - store(k, d, tok, values) writes a session: deadline d (15 digits),
//     token tok, packed values. The key expires at d-1 (at least 1), for
//     the reason expireAt in layout.go gives. It announces the write when
//     chan is set.
//   - drop(k) deletes a session and announces that too.
//
// Lua 5.1 numbers are doubles: exact up to 2^53, far beyond any length or
// deadline here.
const luaLib = `
local function varint(s, i)
	local x, m = 0, 1
	while m < 562949953421312 do
		local b = string.byte(s, i)
		if not b then return nil end
		i = i + 1
		if b < 128 then return x + b * m, i end
		x = x + (b - 128) * m
		m = m * 128
	end
	return nil
end

local function putvarint(t, n)
	while n >= 128 do
		t[#t + 1] = string.char(128 + n % 128)
		n = math.floor(n / 128)
	end
	t[#t + 1] = string.char(n)
end

local function legacy(k)
	local f = redis.call('HGETALL', k)
	local tok, dl, n, t = nil, nil, 0, {}
	for i = 1, #f, 2 do
		local name, v = f[i], f[i + 1]
		if name == '' then
			tok = v
		elseif name == 'e' then
			dl = v
		elseif string.sub(name, 1, 1) == '.' then
			local key = string.sub(name, 2)
			putvarint(t, #key)
			t[#t + 1] = key
			putvarint(t, #v)
			t[#t + 1] = v
			n = n + 1
		else
			return false
		end
	end
	if not tok then return false end
	if not dl then
		local e = redis.call('PEXPIRETIME', k)
		if e <= 0 then return false end
		dl = string.format('%d', e)
	end
	if #dl > 15 or not string.find(dl, '^%d+$') or tonumber(dl) <= 0 then return false end
	tok = string.sub(string.rep('0', 16) .. tok, -16)
	local h = {'S', string.rep('0', 15 - #dl), dl, tok, '\1'}
	putvarint(h, n)
	return table.concat(h) .. table.concat(t)
end

local function load(k)
	local v = redis.pcall('GET', k)
	if not v then return nil end
	if type(v) == 'table' then
		if redis.call('TYPE', k).ok == 'hash' then return legacy(k) end
		return false
	end
	if #v < 34 or string.byte(v, 1) ~= 83 or not string.find(string.sub(v, 2, 16), '^%d+$') then
		return false
	end
	return v
end

local function announce(k, tok)
	if chan then redis.call('PUBLISH', chan, tok .. k) end
end

local function store(k, d, tok, values)
	local at = math.max(tonumber(d) - 1, 1)
	redis.call('SET', k, 'S' .. d .. tok .. values, 'PXAT', string.format('%d', at))
	announce(k, tok)
end

local function drop(k)
	redis.call('DEL', k)
	announce(k, '` + deletedToken + `')
end
`

// updateSrc applies a sessionkit.Update to a live session (Create goes
// through SET NX instead; see Provider.create).
//
// ARGV[1] is the update's head followed by its Set entries (see
// appendUpdateHead): clear ("1"/"0"), the deadline (15 digits, all zeros
// keeping the stored one), the new token, the token of the session the
// request read (Update.Base; noToken if none), the number of Set entries
// (10 digits), then the Set entries encoded as in packed values (without
// the version byte and count). One argument rather than five costs Go
// four allocations and the script four strings. ARGV[2] is the packed
// values merged from the session read (empty without a Base), and the
// rest are the stored keys to drop: Set's keys and Delete's (none with
// clear).
//
// If the stored token is the one the request read, nothing was written
// since, and the values merged from the read are stored as they come; the
// script then returns codeStoredBase, so that the caller knows what is
// stored. Otherwise the merge copies the stored entries that are kept as they
// are, run by run, and puts the Set entries after them, as
// Update.AppendPacked does. It finds the keys to drop by length first, so
// an entry whose key cannot match costs no string.
const updateSrc = `
local k, h = KEYS[1], ARGV[1]
local v = load(k)
if v == nil then return 2 end
if v == false then return 3 end
local stored, tok = string.sub(v, 17, 32), string.sub(h, 17, 32)
if stored == tok then return 0 end
local dl = string.sub(h, 2, 16)
if dl == '000000000000000' then dl = string.sub(v, 2, 16) end
if ARGV[2] ~= '' and stored == string.sub(h, 33, 48) then
	store(k, dl, tok, ARGV[2])
	return 4
end
local n = tonumber(string.sub(h, 49, 58))
local values = string.sub(h, 59)
if string.byte(h, 1) ~= 49 then
	local byte, sub = string.byte, string.sub
	local lens = {}
	for j = 3, #ARGV do lens[#ARGV[j]] = true end
	if byte(v, 33) ~= 1 then return 3 end
	local c, i = varint(v, 34)
	if not c then return 3 end
	local t, run = {}, i
	for e = 1, c do
		local s, l = i, byte(v, i)
		if l and l < 128 then i = i + 1 else l, i = varint(v, i) end
		if not l then return 3 end
		local ks = i
		i = i + l
		local vl = byte(v, i)
		if vl and vl < 128 then i = i + 1 else vl, i = varint(v, i) end
		if not vl then return 3 end
		i = i + vl
		if i > #v + 1 then return 3 end
		local hit = false
		if lens[l] then
			local key = sub(v, ks, ks + l - 1)
			for j = 3, #ARGV do
				if ARGV[j] == key then
					hit = true
					break
				end
			end
		end
		if hit then
			if s > run then t[#t + 1] = sub(v, run, s - 1) end
			run = i
		else
			n = n + 1
		end
	end
	if i ~= #v + 1 then return 3 end
	if i > run then t[#t + 1] = sub(v, run, i - 1) end
	t[#t + 1] = values
	values = table.concat(t)
end
local head = {'\1'}
putvarint(head, n)
store(k, dl, tok, table.concat(head) .. values)
return 0
`

// touchSrc sets a live session's deadline. ARGV: deadline, token.
const touchSrc = `
local v = load(KEYS[1])
if v == nil then return 2 end
if v == false then return 3 end
store(KEYS[1], ARGV[1], ARGV[2], string.sub(v, 33))
return 0
`

// renameSrc moves KEYS[1] to KEYS[2] atomically, for servers where both
// keys live on one node. ARGV: deadline, token. The token check comes
// first so that a retried, already applied rename reports success.
const renameSrc = `
local o, n = KEYS[1], KEYS[2]
local nv = load(n)
if nv and string.sub(nv, 17, 32) == ARGV[2] then return 0 end
local v = load(o)
if v == nil then return 2 end
if v == false then return 3 end
if nv ~= nil then return 1 end
store(n, ARGV[1], ARGV[2], string.sub(v, 33))
drop(o)
return 0
`

// putSrc writes a Cluster Rename's copy to KEYS[1]. ARGV: deadline,
// token, mode, packed values. Mode "c" creates the copy, refusing any
// existing key; mode "r" replaces a copy this rename made (same token)
// with fresher values.
const putSrc = `
local k = KEYS[1]
local nv = load(k)
local mine = nv and string.sub(nv, 17, 32) == ARGV[2]
if ARGV[3] == 'c' then
	if mine then return 0 end
	if nv ~= nil then return 1 end
elseif not mine then
	return 1
end
store(k, ARGV[1], ARGV[2], ARGV[4])
return 0
`

// takeSrc is a Cluster Rename's last step on the old key: it deletes
// KEYS[1] and returns 0 if its token is still ARGV[1], the one read before
// the copy. If a write changed the session since, it returns the session
// in the string layout and deletes the key all the same,
// so the caller can bring the copy up to date: no write is lost and no
// retry loop can starve.
const takeSrc = `
local v = load(KEYS[1])
if v == nil then return 2 end
if v == false then return 3 end
drop(KEYS[1])
if string.sub(v, 17, 32) == ARGV[1] then return 0 end
return v
`

// undoSrc deletes KEYS[1] only if its token is ARGV[1]: it removes a
// Cluster Rename's copy when the rename fails.
const undoSrc = `
local v = load(KEYS[1])
if v and string.sub(v, 17, 32) == ARGV[1] then
	drop(KEYS[1])
	return 0
end
return 1
`

// delSrc deletes KEYS[1], announcing it: Delete's script with
// Config.LocalCache (a plain DEL otherwise).
const delSrc = `
drop(KEYS[1])
return 0
`

// scripts are the provider's scripts, built for one announcement channel
// ("" for none, and then del is nil).
type scripts struct {
	// update is the one script of the hot path: Update builds its
	// command itself (see hotScript).
	update                         *hotScript
	touch, rename, put, take, undo *goredis.Script
	del                            *goredis.Script
}

// hotScript is a script run by a command its caller builds: EVALSHA with
// one key, the hash and the source boxed once, so that a call allocates
// one argument slice where goredis.Script.Run allocates the caller's and
// its own.
type hotScript struct {
	*goredis.Script
	sha, src any
}

func newHotScript(src string) *hotScript {
	s := goredis.NewScript(src)
	return &hotScript{Script: s, sha: s.Hash(), src: src}
}

// scriptHead is the number of leading slots of a hotScript's arguments
// that run fills: the command, the script, the key count and the key.
const scriptHead = 4

// run runs s on key with the arguments args holds after its first
// scriptHead slots. Like goredis.Script.Run, it sends the source with
// EVAL when the server does not hold the script (after a SCRIPT FLUSH, or
// on a replica promoted since the script was loaded).
func (s *hotScript) run(ctx context.Context, c goredis.UniversalClient, key string, args []any) *goredis.Cmd {
	args[0], args[1], args[2], args[3] = "evalsha", s.sha, 1, key
	cmd := c.Do(ctx, args...)
	if err := cmd.Err(); err != nil && (errors.Is(err, goredis.ErrNoScript) || goredis.HasErrorPrefix(err, "NOSCRIPT")) {
		// A fresh slice: hooks of the client may still hold the first.
		retry := append([]any{"eval", s.src}, args[2:]...)
		cmd = c.Do(ctx, retry...)
	}
	return cmd
}

// plainScripts announce nothing: the provider's scripts without
// Config.LocalCache.
var plainScripts = newScripts("")

func newScripts(channel string) *scripts {
	head := "local chan = nil\n"
	if channel != "" {
		head = "local chan = " + luaString(channel) + "\n"
	}
	lib := head + luaLib
	s := &scripts{
		update: newHotScript(lib + updateSrc),
		touch:  goredis.NewScript(lib + touchSrc),
		rename: goredis.NewScript(lib + renameSrc),
		put:    goredis.NewScript(lib + putSrc),
		take:   goredis.NewScript(lib + takeSrc),
		undo:   goredis.NewScript(lib + undoSrc),
	}
	if channel != "" {
		// Without announcements Delete is a plain DEL.
		s.del = goredis.NewScript(lib + delSrc)
	}
	return s
}

// all lists the scripts, for loading them.
func (s *scripts) all() []*goredis.Script {
	all := []*goredis.Script{s.update.Script, s.touch, s.rename, s.put, s.take, s.undo}
	if s.del != nil {
		all = append(all, s.del)
	}
	return all
}

// luaString quotes s as a Lua string literal, every byte a decimal
// escape, so no prefix can end the literal early.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		b.WriteByte('\\')
		b.WriteString(strconv.Itoa(int(s[i])))
	}
	b.WriteByte('"')
	return b.String()
}
