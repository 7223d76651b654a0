#!lua name=allocation_engine
--[[
Redis FUNCTIONS of the Redis inventory store (inventory.py). functions.py loads this library
with FUNCTION LOAD REPLACE, and again when Redis lost it. Each function is one atomic operation;
every key it touches shares one hash tag, so each also runs unchanged on Redis Cluster.

The functions take every key name from KEYS and never build or parse one: keys.py builds them all.
Functions that need the node id (to write it into views) get it as ARGV[1]. Key layout (N = node
id, S = sku, R = reservation id, K = adjustment key):
  inv:{N}:pos      hash  S -> "on_hand:reserved:safety_stock:snapshot_version"   (the authority)
  inv:{N}:holds    hash  R -> JSON {"l": {S: units}, "e": expires_ms or 0 (0 = pinned)}
  inv:{N}:exp      zset  R scored by expires_ms, for holds not yet pinned
  inv:{N}:seq      counter, bumped by every change at the node
  inv:{N}:applied  zset  K scored by the time it was applied (kept for the retention ARGV)
  view:{S}         hash  N -> "on_hand:reserved:safety_stock:seq"   (planning view, per sku)

Every change at a node also goes to the per-sku views, stamped with the node's seq; a state is
written into a view only if its seq is newer than the one there, so a late or repeated write never
rolls a view back. On a single Redis the store passes the view keys of the skus a call names as
extra KEYS and the node function writes them itself, in the same atomic step. Node functions
return the state of what they touched as a flat list {seq, S1, view1, S2, view2, ...}; the store
writes with ae_view_merge what the function could not (everything on Redis Cluster, where view
keys live in other slots; skus freed by expired holds; ae_snapshot leaves out what it wrote).
]]

-- Fields read or written per HMGET/HSET call (Lua's unpack has a limit of about 8,000 values).
local BATCH = 1000

local function unpack_pos(value)
  if not value then
    return 0, 0, 0, 0
  end
  local on_hand, reserved, safety, version = string.match(value, '^(-?%d+):(-?%d+):(-?%d+):(-?%d+)$')
  return tonumber(on_hand), tonumber(reserved), tonumber(safety), tonumber(version)
end

local function pack(a, b, c, d)
  return string.format('%d:%d:%d:%d', a, b, c, d)
end

local function available(on_hand, reserved, safety)
  return math.max(0, on_hand - reserved - safety)
end

-- Adds `sign * units` to reserved (and, when shipping, takes the units off on_hand too).
local function change_reserved(pos, lines, sign, ship)
  for sku, units in pairs(lines) do
    local on_hand, reserved, safety, version = unpack_pos(redis.call('HGET', pos, sku))
    reserved = reserved + sign * units
    if ship then
      on_hand = math.max(0, on_hand - units)
    end
    redis.call('HSET', pos, sku, pack(on_hand, reserved, safety, version))
  end
end

-- Removes hold R from the node; returns its lines, or nil when it is not there.
local function drop(keys, rid, ship)
  local pos, holds, exp = keys[1], keys[2], keys[3]
  local raw = redis.call('HGET', holds, rid)
  if not raw then
    return nil
  end
  local hold = cjson.decode(raw)
  change_reserved(pos, hold.l, -1, ship)
  redis.call('HDEL', holds, rid)
  redis.call('ZREM', exp, rid)
  return hold.l
end

-- Drops every hold whose expiry has passed: expired holds stop counting at once.
local function sweep(keys, now_ms, touched)
  local expired = redis.call('ZRANGEBYSCORE', keys[3], '-inf', now_ms)
  for _, rid in ipairs(expired) do
    local lines = drop(keys, rid, false)
    if lines then
      for sku in pairs(lines) do
        touched[sku] = true
      end
    end
  end
end

-- Writes a node's state of one sku into the sku's view unless a newer state is there.
local function view_write(view, node, value)
  local old = redis.call('HGET', view, node)
  if not old or tonumber(string.match(value, ':(%d+)$')) > tonumber(string.match(old, ':(%d+)$')) then
    redis.call('HSET', view, node, value)
    return 1
  end
  return 0
end

-- View keys passed after the node's own keys, one per sku in the order `skus` lists them.
local function inline_views(keys, first, skus)
  local views = {}
  if #keys >= first then
    for k, sku in ipairs(skus) do
      views[sku] = keys[first + k - 1]
    end
  end
  return views
end

-- The reply every node function ends with: {seq, S1, view1, ...} for the touched skus that
-- the node holds a position of; those with a view key in `inline` are written to it here too,
-- under the node id `node`.
local function view_reply(keys, touched, head, inline, node)
  local seq = redis.call('INCR', keys[4])
  local reply = head or {}
  table.insert(reply, seq)
  for sku in pairs(touched) do
    local raw = redis.call('HGET', keys[1], sku)
    if raw then
      local on_hand, reserved, safety = unpack_pos(raw)
      local value = pack(on_hand, reserved, safety, seq)
      if inline and inline[sku] then
        view_write(inline[sku], node, value)
      end
      table.insert(reply, sku)
      table.insert(reply, value)
    end
  end
  return reply
end

--[[ ae_hold: take a hold if every line is available.
KEYS: pos, holds, exp, seq of one node, then optionally the view key of each sku in ARGV order
ARGV: node id, reservation id, now_ms, expires_ms (0 = never), then sku, units pairs
Returns {held (1 or 0), seq, S1, view1, ...}; an existing hold of the same id counts as held. ]]
local function ae_hold(keys, args)
  local node, rid, now_ms, expires_ms = args[1], args[2], tonumber(args[3]), tonumber(args[4])
  local touched, lines, skus, fits = {}, {}, {}, expires_ms == 0 or expires_ms > now_ms
  sweep(keys, now_ms, touched)
  for i = 5, #args, 2 do
    local sku, units = args[i], tonumber(args[i + 1])
    lines[sku] = units
    touched[sku] = true
    table.insert(skus, sku)
  end
  local inline = inline_views(keys, 5, skus)
  if redis.call('HEXISTS', keys[2], rid) == 1 then
    return view_reply(keys, touched, {1}, inline, node)
  end
  for sku, units in pairs(lines) do
    local raw = redis.call('HGET', keys[1], sku)
    local on_hand, reserved, safety = unpack_pos(raw)
    if not raw or available(on_hand, reserved, safety) < units then
      fits = false
    end
  end
  if not fits then
    return view_reply(keys, touched, {0}, inline, node)
  end
  change_reserved(keys[1], lines, 1, false)
  redis.call('HSET', keys[2], rid, cjson.encode({l = lines, e = expires_ms}))
  if expires_ms > 0 then
    redis.call('ZADD', keys[3], expires_ms, rid)
  end
  return view_reply(keys, touched, {1}, inline, node)
end

--[[ ae_release / ae_fulfil: give a hold back, or ship it (units leave on_hand and reserved).
KEYS: pos, holds, exp, seq of one node
ARGV: reservation id
Returns {seq, S1, view1, ...}; a hold that is not there changes nothing. ]]
local function drop_reply(keys, rid, ship)
  local touched = {}
  local lines = drop(keys, rid, ship)
  for sku in pairs(lines or {}) do
    touched[sku] = true
  end
  return view_reply(keys, touched)
end

local function ae_release(keys, args)
  return drop_reply(keys, args[1], false)
end

local function ae_fulfil(keys, args)
  return drop_reply(keys, args[1], true)
end

--[[ ae_pin: make an unexpired hold permanent (commit).
KEYS: pos, holds, exp, seq of one node
ARGV: reservation id, now_ms
Returns {pinned (1 or 0), seq, S1, view1, ...}. ]]
local function ae_pin(keys, args)
  local rid, now_ms, touched = args[1], tonumber(args[2]), {}
  sweep(keys, now_ms, touched)
  local raw = redis.call('HGET', keys[2], rid)
  if not raw then
    return view_reply(keys, touched, {0})
  end
  local hold = cjson.decode(raw)
  hold.e = 0
  redis.call('HSET', keys[2], rid, cjson.encode(hold))
  redis.call('ZREM', keys[3], rid)
  return view_reply(keys, touched, {1})
end

--[[ ae_snapshot: set on_hand (and safety stock) where this version is not older than the one
that set the position; holds are left alone.
KEYS: pos, holds, exp, seq of one node, then optionally the view key of each record's sku
ARGV: node id, version, then one string of records "sku US on_hand US safety_stock" ('' = keep) joined
      by RS (US = \31, RS = \30: one argument instead of three per position)
Returns {applied, skipped, seq, S1, view1, ...}. ]]
local function ae_snapshot(keys, args)
  local node, version, applied, skipped = args[1], tonumber(args[2]), 0, 0
  local seq = redis.call('INCR', keys[4])
  local reply = {0, 0, seq}
  local records = {}
  for sku, on_hand, safety in string.gmatch(args[3], '([^\30\31]+)\31([^\30\31]*)\31([^\30\31]*)') do
    table.insert(records, {sku, tonumber(on_hand), safety})
  end
  for first = 1, #records, BATCH do
    local last = math.min(#records, first + BATCH - 1)
    local skus = {}
    for k = first, last do
      table.insert(skus, records[k][1])
    end
    local old = redis.call('HMGET', keys[1], unpack(skus))
    local writes = {}
    for k = first, last do
      local sku, new_on_hand, new_safety = records[k][1], records[k][2], records[k][3]
      local _, reserved, safety, old_version = unpack_pos(old[k - first + 1])
      if old_version > version then
        skipped = skipped + 1
      else
        if new_safety ~= '' then
          safety = tonumber(new_safety)
        end
        table.insert(writes, sku)
        table.insert(writes, pack(new_on_hand, reserved, safety, version))
        local value = pack(new_on_hand, reserved, safety, seq)
        if keys[4 + k] then
          view_write(keys[4 + k], node, value)
        else
          table.insert(reply, sku)
          table.insert(reply, value)
        end
        applied = applied + 1
      end
    end
    if #writes > 0 then
      redis.call('HSET', keys[1], unpack(writes))
    end
  end
  reply[1], reply[2] = applied, skipped
  return reply
end

--[[ ae_adjust: add on_hand deltas once per key (on_hand stops at 0).
KEYS: pos, holds, exp, seq, applied of one node, then optionally the view key of each sku
ARGV: node id, key, now_ms, keep_ms (how long applied keys are remembered), then sku, delta,
      safety_stock ('' = keep) triples
Returns {number of clamped skus, the clamped skus, seq, S1, view1, ...}. ]]
local function ae_adjust(keys, args)
  local node, key, now_ms, keep_ms = args[1], args[2], tonumber(args[3]), tonumber(args[4])
  local touched, clamped, skus = {}, {}, {}
  for i = 5, #args, 3 do
    touched[args[i]] = true
    table.insert(skus, args[i])
  end
  local inline = inline_views(keys, 6, skus)
  if redis.call('ZSCORE', keys[5], key) then
    return view_reply(keys, touched, {0}, inline, node)
  end
  redis.call('ZADD', keys[5], now_ms, key)
  redis.call('ZREMRANGEBYSCORE', keys[5], '-inf', now_ms - keep_ms)
  for i = 5, #args, 3 do
    local sku, delta = args[i], tonumber(args[i + 1])
    local on_hand, reserved, safety, version = unpack_pos(redis.call('HGET', keys[1], sku))
    if on_hand + delta < 0 then
      table.insert(clamped, sku)
    end
    if args[i + 2] ~= '' then
      safety = tonumber(args[i + 2])
    end
    redis.call('HSET', keys[1], sku, pack(math.max(0, on_hand + delta), reserved, safety, version))
  end
  local head = {#clamped}
  for _, sku in ipairs(clamped) do
    table.insert(head, sku)
  end
  return view_reply(keys, touched, head, inline, node)
end

--[[ ae_view_merge: write node states into per-sku views unless a newer state is there.
KEYS: view keys
ARGV: one string of records "key index US node id US view value" joined by RS
Returns the number of fields written. ]]
local function ae_view_merge(keys, args)
  local written = 0
  for index, node, value in string.gmatch(args[1], '([^\30\31]+)\31([^\30\31]+)\31([^\30\31]+)') do
    written = written + view_write(keys[tonumber(index)], node, value)
  end
  return written
end

--[[ ae_snapshot_version: admit a snapshot version unless a newer one was admitted before.
KEYS: {meta}:snapshot_version
ARGV: version
Returns the current version; larger than the argument means refused. ]]
local function ae_snapshot_version(keys, args)
  local version = tonumber(args[1])
  local current = tonumber(redis.call('GET', keys[1]) or '0')
  if version < current then
    return current
  end
  redis.call('SET', keys[1], version)
  return version
end

--[[ ae_upsert_nodes: add or replace nodes by id.
KEYS: {meta}:nodes, {meta}:nodes_version
ARGV: id, JSON pairs
Returns the new network version. ]]
local function ae_upsert_nodes(keys, args)
  for i = 1, #args, 2 do
    redis.call('HSET', keys[1], args[i], args[i + 1])
  end
  return redis.call('INCR', keys[2])
end

--[[ ae_put_rules: publish a rule set.
KEYS: {meta}:rules, {meta}:rules_revision
ARGV: TOML text, expected revision ('' = any)
Returns the new revision, or minus the current revision when the expected one is stale. ]]
local function ae_put_rules(keys, args)
  local current = tonumber(redis.call('GET', keys[2]) or '0')
  if args[2] ~= '' and tonumber(args[2]) ~= current then
    return -current
  end
  redis.call('SET', keys[1], args[1])
  return redis.call('INCR', keys[2])
end

--[[ ae_replace_reservation: compare-and-set a reservation record on its state and attempt.
KEYS: res:{R}
ARGV: expected state, expected attempt, new record JSON, seconds to keep it (0 = forever)
Returns 1 when replaced, 0 when the record was not as expected. ]]
local function ae_replace_reservation(keys, args)
  local raw = redis.call('GET', keys[1])
  if not raw then
    return 0
  end
  local current = cjson.decode(raw)
  if current.state ~= args[1] or tonumber(current.attempt) ~= tonumber(args[2]) then
    return 0
  end
  redis.call('SET', keys[1], args[3])
  if tonumber(args[4]) > 0 then
    redis.call('EXPIRE', keys[1], tonumber(args[4]))
  end
  return 1
end

--[[ ae_claim_key: claim an idempotency key for a request fingerprint.
KEYS: idem:{key}
ARGV: fingerprint, seconds to keep the key
Returns {1} when newly claimed, {0, result or ''} when seen with the same fingerprint, and {-1}
when the key was used with another fingerprint. ]]
local function ae_claim_key(keys, args)
  local seen = redis.call('HGET', keys[1], 'fingerprint')
  if not seen then
    redis.call('HSET', keys[1], 'fingerprint', args[1])
    redis.call('EXPIRE', keys[1], tonumber(args[2]))
    return {1}
  end
  if seen ~= args[1] then
    return {-1}
  end
  local result = redis.call('HGET', keys[1], 'result')
  if not result then
    return {0}
  end
  return {0, result}
end

redis.register_function('ae_hold', ae_hold)
redis.register_function('ae_release', ae_release)
redis.register_function('ae_fulfil', ae_fulfil)
redis.register_function('ae_pin', ae_pin)
redis.register_function('ae_snapshot', ae_snapshot)
redis.register_function('ae_adjust', ae_adjust)
redis.register_function('ae_view_merge', ae_view_merge)
redis.register_function('ae_snapshot_version', ae_snapshot_version)
redis.register_function('ae_upsert_nodes', ae_upsert_nodes)
redis.register_function('ae_put_rules', ae_put_rules)
redis.register_function('ae_replace_reservation', ae_replace_reservation)
redis.register_function('ae_claim_key', ae_claim_key)
