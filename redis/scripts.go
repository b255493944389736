package redis

import goredis "github.com/redis/go-redis/v9"

// Storage layout, shared by every script below.
//
// A session is one hash. Each value is the field "." + key, so no key a
// caller picks, the empty one included, can collide with the marker: the
// field "" whose value is a write token. The marker keeps a session whose
// values were all deleted alive (Redis drops an empty hash) and changes on
// every Update, which lets a write detect that go-redis retried it after
// it had already applied and lets the cluster Rename detect a concurrent
// write. A hash without the marker was not written by this provider and
// reads as corrupt.
//
// The field "e" holds the deadline, in Unix milliseconds, and every script
// that sets the key's expiry (PEXPIREAT) writes it in the same step. It
// lets Get read a session with one plain HGETALL, which costs the server
// less than a script; Redis still deletes the key by its expiry. Hashes
// written before the field existed lack it, and Get then asks for
// PEXPIRETIME as well; their next write adds it.
//
// Scripts return 0 for success or one of the codes below; deadlines travel
// as Unix milliseconds, "0" meaning "keep the current one".
const (
	codeOK       = 0
	codeExists   = 1
	codeNotFound = 2
	codeCorrupt  = 3
)

// luaChunk defines flush, which the scripts below call every 1000 values
// so that no single HSET or HDEL gets more: Lua's unpack fails beyond about
// 8000.
const luaChunk = `
local function flush(cmd, k, t)
	if #t > 0 then redis.call(cmd, k, unpack(t)) end
	return {}
end
`

// deadlineField is the field that holds the deadline (see above).
const deadlineField = "e"

// getScript returns nil for a missing session, otherwise HGETALL's flat
// field/value list followed by the PEXPIRETIME deadline. The Cluster
// Rename reads with it, as it needs the key's real expiry whatever the
// fields say. PEXPIRETIME comes first because it doubles as the existence
// check and fails loudly on a server older than Redis 7; HGETALL raises
// WRONGTYPE on a non-hash key.
var getScript = goredis.NewScript(`
local e = redis.call('PEXPIRETIME', KEYS[1])
if e == -2 then return false end
local r = redis.call('HGETALL', KEYS[1])
r[#r + 1] = e
return r
`)

// updateScript applies a sessionkit.Update.
//
// ARGV: create ("1"/"0"), clear ("1"/"0"), deadline ("0" keeps), token,
// number of deleted keys, the deleted keys, then key/value pairs to set.
//
// HGET of the marker is the first command so that a non-hash key raises
// WRONGTYPE before anything is written (scripts do not roll back).
var updateScript = goredis.NewScript(luaChunk + `
local k = KEYS[1]
local tok = redis.call('HGET', k, '')
if tok == ARGV[4] then return 0 end
local live = tok ~= false
if not live and redis.call('HLEN', k) > 0 then return 3 end
if ARGV[1] == '1' then
	if live then return 1 end
elseif not live then
	return 2
end
local dl = ARGV[3]
local nd = tonumber(ARGV[5])
if ARGV[2] == '1' then
	if live then
		if dl == '0' then
			local e = redis.call('PEXPIRETIME', k)
			if e > 0 then dl = string.format('%d', e) end
		end
		redis.call('DEL', k)
	end
else
	local t = {}
	for i = 6, 5 + nd do
		t[#t + 1] = '.' .. ARGV[i]
		if #t >= 1000 then t = flush('HDEL', k, t) end
	end
	flush('HDEL', k, t)
end
local t = {'', ARGV[4]}
if dl ~= '0' then
	t[3] = 'e'
	t[4] = dl
end
for i = 6 + nd, #ARGV, 2 do
	t[#t + 1] = '.' .. ARGV[i]
	t[#t + 1] = ARGV[i + 1]
	if #t >= 1000 then t = flush('HSET', k, t) end
end
flush('HSET', k, t)
if dl ~= '0' then redis.call('PEXPIREAT', k, dl) end
return 0
`)

// touchScript sets a live session's deadline. ARGV: deadline.
var touchScript = goredis.NewScript(`
if not redis.call('HGET', KEYS[1], '') then
	if redis.call('HLEN', KEYS[1]) > 0 then return 3 end
	return 2
end
redis.call('HSET', KEYS[1], 'e', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 0
`)

// renameScript moves KEYS[1] to KEYS[2] atomically, for servers where both
// keys live on one node. ARGV: deadline, token. The token check comes
// first so that a retried, already applied rename reports success.
var renameScript = goredis.NewScript(`
local o, n = KEYS[1], KEYS[2]
local nt = redis.call('HGET', n, '')
if nt == ARGV[2] then return 0 end
if not redis.call('HGET', o, '') then
	if redis.call('HLEN', o) > 0 then return 3 end
	return 2
end
if nt or redis.call('HLEN', n) > 0 then return 1 end
redis.call('RENAME', o, n)
redis.call('HSET', n, '', ARGV[2], 'e', ARGV[1])
redis.call('PEXPIREAT', n, ARGV[1])
return 0
`)

// putScript writes a Cluster Rename's copy to KEYS[1] from raw fields read
// from the old key. ARGV: deadline, token, mode, then raw field/value
// pairs (marker and deadline field excluded). Mode "c" creates the copy, refusing a live
// target; mode "r" replaces a copy this rename made (same token) with
// fresher fields.
var putScript = goredis.NewScript(luaChunk + `
local k = KEYS[1]
local nt = redis.call('HGET', k, '')
if ARGV[3] == 'c' then
	if nt == ARGV[2] then return 0 end
	if nt or redis.call('HLEN', k) > 0 then return 1 end
else
	if nt ~= ARGV[2] then return 1 end
	redis.call('DEL', k)
end
local t = {'', ARGV[2], 'e', ARGV[1]}
for i = 4, #ARGV do
	t[#t + 1] = ARGV[i]
	if #t >= 1000 then t = flush('HSET', k, t) end
end
flush('HSET', k, t)
redis.call('PEXPIREAT', k, ARGV[1])
return 0
`)

// takeScript is a Cluster Rename's last step on the old key: it deletes
// KEYS[1] and returns 0 if the marker still holds the token ARGV[1] read
// before the copy. If an Update changed the session since, it returns
// what getScript would and deletes the key all the same, so the caller
// can bring the copy up to date: no write is lost and no retry loop can
// starve.
var takeScript = goredis.NewScript(`
local t = redis.call('HGET', KEYS[1], '')
if t == ARGV[1] then
	redis.call('DEL', KEYS[1])
	return 0
end
if not t then
	if redis.call('HLEN', KEYS[1]) > 0 then return 3 end
	return 2
end
local r = redis.call('HGETALL', KEYS[1])
r[#r + 1] = redis.call('PEXPIRETIME', KEYS[1])
redis.call('DEL', KEYS[1])
return r
`)

// dropScript deletes KEYS[1] only if its marker holds the token ARGV[1]:
// it removes a Cluster Rename's copy when the rename fails.
var dropScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], '') == ARGV[1] then
	redis.call('DEL', KEYS[1])
	return 0
end
return 1
`)

var allScripts = []*goredis.Script{getScript, updateScript, touchScript, renameScript, putScript, takeScript, dropScript}
