"""The Lua scripts: each backend operation is one script, atomic on the session's slot.

Write scripts take the session's keys in :meth:`SessionKeys.writes` order
(``d m h l b e r``), plus the store index as an eighth key on a single server (on a Cluster the
index lives on another slot and the client updates it after the script). Their first four
arguments are the same: the fence (``"<epoch> <owner>"``, or empty outside a lease), the
write's id (empty when it has none), the session ttl in milliseconds (``0``: none) and the
session id (the index member). Every write script checks everything it needs *before* its
first write, so a refused write changes nothing (Redis has no rollback), and answers with a
string that starts with a status: ``OK``, ``LOST`` (the fence is stale), ``DUP`` (this
write id was applied already), ``CHANGED`` (the session moved since the client looked),
``FULL`` (a fork target holds items), then, after a space, what goes with it (the write's
time, or a fork target's item count): one string is the cheapest reply for the client to
read. A write id is checked first, so a write retried after a dropped connection that had in
fact been applied answers ``DUP`` and is not applied twice (the ids of a session's latest 64
writes at least are kept).

The scripts declare Redis 7 flags (see :data:`SCRIPTS`), so a store needs Redis 7 or newer.

The window script is :func:`threadline.sessions._window.window_size` in Lua: the conformance
suite checks that both choose the same items.
"""

from __future__ import annotations

__all__ = ["SCRIPTS"]

_WRITE_HELPERS = r"""
local function fenced()
  return ARGV[1] == '' or redis.call('GET', KEYS[4]) == ARGV[1]
end
local function seen()
  return ARGV[2] ~= '' and redis.call('LPOS', KEYS[5], ARGV[2]) ~= false
end
local function push(key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    redis.call('RPUSH', key, unpack(ARGV, i, j))
    i = j + 1
  end
end
local function expire_all(ttl)
  for _, key in ipairs({KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[6], KEYS[7]}) do
    redis.call('PEXPIRE', key, ttl)
  end
end
local function remember()
  -- the latest 64 to 80 write ids: trimmed back to 64 once 80 are held
  if redis.call('LPUSH', KEYS[5], ARGV[2]) > 80 then redis.call('LTRIM', KEYS[5], 0, 63) end
end
local function touch()
  local t = redis.call('TIME')
  local now = t[1] .. string.format('%06d', tonumber(t[2]))
  if redis.call('HINCRBY', KEYS[3], 'v', 1) == 1 then
    redis.call('HSET', KEYS[3], 'c', now, 'u', now)  -- a new session (v counts every write)
  else
    redis.call('HSET', KEYS[3], 'u', now)
  end
  if ARGV[2] ~= '' then remember() end
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then
    expire_all(ttl)
  end
  if KEYS[8] then
    redis.call('ZADD', KEYS[8], 'GT', now, ARGV[4])
  end
  return now
end
-- a retried write that had landed (DUP): the session's updated time, ttl and index entry are
-- set again as a write would, nothing else changes (its items are there once)
local function retouch()
  if redis.call('EXISTS', KEYS[3]) == 0 then return '' end
  local t = redis.call('TIME')
  local now = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('HSET', KEYS[3], 'u', now)
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then expire_all(ttl) end
  if KEYS[8] then redis.call('ZADD', KEYS[8], 'GT', now, ARGV[4]) end
  return now
end
-- record writes from ARGV[first]: a count, then (op key, payload) pairs; an op key is
-- '+key' (set) or '-key' (delete; its payload is empty)
local function write_records(first)
  local n = tonumber(ARGV[first] or '0')
  for i = first + 1, first + 2 * n, 2 do
    local key = string.sub(ARGV[i], 2)
    if string.sub(ARGV[i], 1, 1) == '+' then
      redis.call('HSET', KEYS[7], key, ARGV[i + 1])
    else
      redis.call('HDEL', KEYS[7], key)
    end
  end
end
"""

# ARGV[5] = n, then n payloads, then n window facts, then record writes (see write_records).
_APPEND = r"""
if seen() then return 'DUP ' .. retouch() end
if not fenced() then return 'LOST' end
local n = tonumber(ARGV[5])
push(KEYS[1], 6, 5 + n)
push(KEYS[2], 6 + n, 5 + 2 * n)
write_records(6 + 2 * n)
return 'OK ' .. touch()
"""

# ARGV[5..] = record writes. Creates the session (when a record is set) without touching an
# existing session's updated time.
_PUT_RECORDS = r"""
if seen() then return 'DUP ' end
if not fenced() then return 'LOST' end
write_records(5)
local created = ''
if redis.call('EXISTS', KEYS[3]) == 0 and redis.call('HLEN', KEYS[7]) > 0 then
  created = touch()
else
  if ARGV[2] ~= '' then remember() end
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then expire_all(ttl) end
end
return 'OK ' .. created
"""

# Same arguments as append: every item is replaced.
_REPLACE = r"""
if seen() then return 'DUP ' .. retouch() end
if not fenced() then return 'LOST' end
local n = tonumber(ARGV[5])
redis.call('DEL', KEYS[1], KEYS[2])
push(KEYS[1], 6, 5 + n)
push(KEYS[2], 6 + n, 5 + 2 * n)
return 'OK ' .. touch()
"""

_CLEAR = r"""
if seen() then return 'DUP ' .. retouch() end
if not fenced() then return 'LOST' end
if redis.call('EXISTS', KEYS[3]) == 0 then return 'OK ' end
redis.call('DEL', KEYS[1], KEYS[2])
return 'OK ' .. touch()
"""

# ARGV[5] = the write version the client saw, ARGV[6] = how many items to keep.
_TRIM = r"""
if seen() then return 'DUP ' .. retouch() end
if not fenced() then return 'LOST' end
if (redis.call('HGET', KEYS[3], 'v') or '0') ~= ARGV[5] then return 'CHANGED' end
local keep = tonumber(ARGV[6])
if keep == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
else
  redis.call('LTRIM', KEYS[1], 0, keep - 1)
  redis.call('LTRIM', KEYS[2], 0, keep - 1)
end
return 'OK ' .. touch()
"""

# Like append, into a session that must hold no items (ARGV[5] = n may be 0: a check only).
_FORK_INTO = r"""
if seen() then return 'DUP ' .. retouch() end
local held = redis.call('LLEN', KEYS[1])
if held > 0 then return 'FULL ' .. held end
local n = tonumber(ARGV[5])
if n == 0 then return 'OK ' end
push(KEYS[1], 6, 5 + n)
push(KEYS[2], 6 + n, 5 + 2 * n)
return 'OK ' .. touch()
"""

# KEYS d m h b r x [index]; ARGV[1] = session id, ARGV[2] = the delete's id. -> 1 when this
# delete removed the session (now, or on an earlier attempt whose answer was lost), else 0.
# The lease and epoch keys stay, so the fencing of a later holder still counts up.
_DELETE = r"""
if redis.call('GET', KEYS[6]) == ARGV[2] then return 1 end
local existed = redis.call('EXISTS', KEYS[3])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
if KEYS[7] then redis.call('ZREM', KEYS[7], ARGV[1]) end
if existed == 1 then redis.call('SET', KEYS[6], ARGV[2], 'PX', 600000) end
return existed
"""

# Readers answer their payloads as a list, or, when their last argument (a separator) is not
# empty, as one string: the payloads joined by it. One string is far cheaper for the client to
# read than many; the client asks for it only when payloads are JSON text (it then decodes the
# whole string at once, see codec.decode_joined). ``read`` and ``window`` answer
# {count, first position, payloads} as a list, or one string: the payloads, then
# "<count> <first position>", all joined by the separator.
_PAYLOADS = r"""
local function payloads(rows, sep)
  if sep == '' then return rows end
  return table.concat(rows, sep)
end
local function answer(n, first, rows, sep)
  if sep == '' then return {n, first, rows} end
  rows[#rows + 1] = n .. ' ' .. first
  return table.concat(rows, sep)
end
"""

# KEYS d; ARGV[1] = limit (0: all), ARGV[2] = separator.
_READ = r"""
local n = redis.call('LLEN', KEYS[1])
local limit = tonumber(ARGV[1])
if n == 0 then return answer(0, 0, {}, ARGV[2]) end
if limit == 0 or limit >= n then
  return answer(n, 0, redis.call('LRANGE', KEYS[1], 0, -1), ARGV[2])
end
return answer(n, n - limit, redis.call('LRANGE', KEYS[1], -limit, -1), ARGV[2])
"""

# KEYS d m; -> {count, payloads, window facts}: a snapshot for a fork.
_SNAPSHOT = r"""
return {redis.call('LLEN', KEYS[1]), redis.call('LRANGE', KEYS[1], 0, -1),
        redis.call('LRANGE', KEYS[2], 0, -1)}
"""

# How many of the newest ``available`` items (of ``n``) make the window (KEYS[2] = m); a bound of
# 0 is no bound. _window.window_size in Lua: collect newest first, then the safe start. The
# first read of m takes max_items + 1 entries (enough to see the cut), else 32, doubling after.
_CHOOSE = r"""
local function choose(n, available, max_items, max_tokens)
  local kinds, ids = {}, {}
  local taken, total, cut, seen_rows = 0, 0, false, 0
  local chunk = 32
  if max_items > 0 then chunk = math.min(max_items + 1, 1024) end
  while seen_rows < available and not cut do
    local first = -math.min(seen_rows + chunk, available)
    local rows = redis.call('LRANGE', KEYS[2], first, -(seen_rows + 1))
    for i = #rows, 1, -1 do
      local row = rows[i]
      if max_items > 0 and taken >= max_items then cut = true; break end
      local colon = 0
      if max_tokens > 0 then  -- (the tokens are parsed only when a token bound needs them)
        colon = string.find(row, ':', 2, true)
        local tokens = tonumber(string.sub(row, 2, colon - 1))
        if total + tokens > max_tokens then cut = true; break end
        total = total + tokens
      end
      taken = taken + 1
      local kind = string.byte(row, 1) - 48
      kinds[taken] = kind
      if kind >= 2 then
        if colon == 0 then colon = string.find(row, ':', 2, true) end
        ids[taken] = string.sub(row, colon + 1)
      end
    end
    seen_rows = seen_rows + #rows
    chunk = math.min(chunk * 2, 1024)
  end
  local start = 1
  if cut then
    local kind, id = {}, {}
    for i = 1, taken do kind[i] = kinds[taken - i + 1]; id[i] = ids[taken - i + 1] end
    while true do
      for i = start, taken do
        if kind[i] == 1 then start = i; break end
      end
      local calls = {}
      for i = start, taken do
        if kind[i] == 2 then calls[id[i]] = true end
      end
      local orphan = -1
      for i = taken, start, -1 do
        if kind[i] == 3 and not calls[id[i]] then orphan = i; break end
      end
      if orphan < 0 then break end
      start = orphan + 1
    end
  end
  return math.max(taken - start + 1, 0)
end
-- the window for these bounds (0: no bound) as readers answer it
local function window(max_items, max_tokens, sep)
  local n = redis.call('LLEN', KEYS[2])
  if n == 0 then return answer(0, 0, {}, sep) end
  if max_items == 0 and max_tokens == 0 then
    return answer(n, 0, redis.call('LRANGE', KEYS[1], 0, -1), sep)
  end
  local size = choose(n, n, max_items, max_tokens)
  if size == 0 then return answer(n, n, {}, sep) end
  return answer(n, n - size, redis.call('LRANGE', KEYS[1], -size, -1), sep)
end
"""

# KEYS d m; ARGV[1] = max items, ARGV[2] = max tokens (0: no bound), ARGV[3] = separator.
_WINDOW = r"""
return window(tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
"""

# KEYS d m r; ARGV[1] = record key, ARGV[2..4] as the window's. -> {record} when the session
# holds that record (the window then depends on it: the client reads it next), else the plain
# window as ``window`` answers it.
_WINDOW_RECORD = r"""
local record = redis.call('HGET', KEYS[3], ARGV[1])
if record then return {record} end
return window(tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
"""

# KEYS d m; ARGV[1] = start, ARGV[2] = max items, ARGV[3] = max tokens (0: no bound, -1: no
# items), ARGV[4] = separator.
# -> {count, tail tokens, first position, payloads, anchor payload or false}
_WINDOW_SINCE = r"""
local n = redis.call('LLEN', KEYS[2])
local start = tonumber(ARGV[1])
local max_items = tonumber(ARGV[2])
local max_tokens = tonumber(ARGV[3])
if start > n then return {n, 0, n, payloads({}, ARGV[4]), false} end
local available = n - start
local tail_tokens = 0
if available > 0 then
  for _, row in ipairs(redis.call('LRANGE', KEYS[2], -available, -1)) do
    local colon = string.find(row, ':', 2, true)
    tail_tokens = tail_tokens + tonumber(string.sub(row, 2, colon - 1))
  end
end
local size = available
if max_items < 0 or max_tokens < 0 then
  size = 0
elseif (max_items > 0 or max_tokens > 0) and available > 0 then
  size = choose(n, available, max_items, max_tokens)
end
local anchor = false
if start > 0 then anchor = redis.call('LINDEX', KEYS[1], -(available + 1)) end
local rows = {}
if size > 0 then rows = redis.call('LRANGE', KEYS[1], -size, -1) end
return {n, tail_tokens, n - size, payloads(rows, ARGV[4]), anchor}
"""

# KEYS d h l; ARGV[1] = fence. -> {'OK', count, version, newest payload} or {'LOST'}
_PEEK = r"""
if ARGV[1] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[1] then return {'LOST'} end
local n = redis.call('LLEN', KEYS[1])
local version = redis.call('HGET', KEYS[2], 'v') or '0'
if n == 0 then return {'OK', 0, version} end
return {'OK', n, version, redis.call('LINDEX', KEYS[1], -1)}
"""

# KEYS d m h l; ARGV[1] = fence.
# -> {'OK', count, version, position of the newest user message or -1, its payloads..}
_PEEK_TURN = r"""
if ARGV[1] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[1] then return {'LOST'} end
local n = redis.call('LLEN', KEYS[2])
local version = redis.call('HGET', KEYS[3], 'v') or '0'
local seen_rows, chunk = 0, 32
while seen_rows < n do
  local first = -math.min(seen_rows + chunk, n)
  local rows = redis.call('LRANGE', KEYS[2], first, -(seen_rows + 1))
  for i = #rows, 1, -1 do
    if string.sub(rows[i], 1, 1) == '1' then
      local position = n - seen_rows - (#rows - i) - 1
      return {'OK', n, version, position, redis.call('LRANGE', KEYS[1], position, -1)}
    end
  end
  seen_rows = seen_rows + #rows
  chunk = math.min(chunk * 2, 1024)
end
return {'OK', n, version, -1}
"""

# KEYS h d -> {created, updated, count}
_INFO = r"""
local times = redis.call('HMGET', KEYS[1], 'c', 'u')
return {times[1], times[2], redis.call('LLEN', KEYS[2])}
"""

# KEYS l e; ARGV[1] = owner, ARGV[2] = lease ttl ms, ARGV[3] = session ttl ms (0: none)
# -> {1, epoch} or {0, "<epoch> <owner>", ms left}
_ACQUIRE = r"""
local held = redis.call('GET', KEYS[1])
if held then
  local space = string.find(held, ' ', 1, true)
  if string.sub(held, space + 1) ~= ARGV[1] then
    return {0, held, redis.call('PTTL', KEYS[1])}
  end
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], epoch .. ' ' .. ARGV[1], 'PX', ARGV[2])
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], math.max(ttl, tonumber(ARGV[2]))) end
return {1, epoch}
"""

# KEYS l; ARGV[1] = fence, ARGV[2] = lease ttl ms
_RENEW = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

_RELEASE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

_GROWS = "#!lua\n"
_FREES = "#!lua flags=allow-oom\n"
_READS = "#!lua flags=no-writes\n"

SCRIPTS: dict[str, str] = {
    "append": _GROWS + _WRITE_HELPERS + _APPEND,
    "put_records": _GROWS + _WRITE_HELPERS + _PUT_RECORDS,
    "replace": _GROWS + _WRITE_HELPERS + _REPLACE,
    "fork_into": _GROWS + _WRITE_HELPERS + _FORK_INTO,
    "clear": _FREES + _WRITE_HELPERS + _CLEAR,
    "trim": _FREES + _WRITE_HELPERS + _TRIM,
    "delete": _FREES + _DELETE,
    "acquire": _FREES + _ACQUIRE,
    "renew": _FREES + _RENEW,
    "release": _FREES + _RELEASE,
    "read": _READS + _PAYLOADS + _READ,
    "snapshot": _READS + _SNAPSHOT,
    "window": _READS + _PAYLOADS + _CHOOSE + _WINDOW,
    "window_record": _READS + _PAYLOADS + _CHOOSE + _WINDOW_RECORD,
    "window_since": _READS + _PAYLOADS + _CHOOSE + _WINDOW_SINCE,
    "peek": _READS + _PEEK,
    "peek_turn": _READS + _PEEK_TURN,
    "info": _READS + _INFO,
}
"""Script sources by name. Each declares its flags (Redis 7): a script that adds data is refused
whole, before it starts, when the server is out of memory (``maxmemory``); one that only
removes data or keeps the lease (``allow-oom``) still runs then; readers declare ``no-writes``."""
