#!lua name=allocation_engine
--[[
Redis FUNCTIONS of the Redis inventory store (inventory.py). functions.py loads this library
with FUNCTION LOAD REPLACE, and again when Redis lost it. Each function is one atomic operation;
every key it touches shares one hash tag, so each also runs unchanged on Redis Cluster.

The functions take every key name from KEYS and never build or parse one: keys.py builds them all.
Functions that need the node id (to write it into views) get it as ARGV[1]. Key layout (N = node
id, S = sku, R = reservation id, K = adjustment key):
  inv:{N}:pos      hash  S -> "on_hand:reserved:safety_stock:snapshot_version"   (the authority)
  inv:{N}:holds    hash  R -> JSON {"l": {S: units}, "e": expires_ms or 0 (0 = pinned),
                         "d": the UTC day whose shipment it spent, "t": {L: units held against
                         lot L}, "p": {L: the lot's date when held}, "c": ms when taken}
  inv:{N}:exp      zset  R scored by expires_ms, for holds not yet pinned
  inv:{N}:seq      counter, bumped by every change at the node
  inv:{N}:applied  zset  K scored by the time it was applied (kept for the retention ARGV)
  inv:{N}:ships    hash  day, used: the node's shipments spent on its current UTC day
  inv:{N}:stage:T hash  S -> "on_hand US safety_stock" of staged snapshot T (until commit)
  inv:{N}:lots     hash  L -> JSON {"n": sku, "u": units still expected, "d": expected ISO date,
                         "k": kind, "h": units held against it}   (incoming supply, lot id L)
  inv:{N}:answers  hash  K -> the JSON answer of a supply receipt or revision under key K
  {meta}:lots      hash  L -> "N US S": which node and sku a lot id belongs to
  {meta}:lots_done zset  L scored by when it was received in full (forgotten after keep_ms)
  lots:{S}         hash  L -> N: the lots of a sku not yet received in full (for listing)
  view:{S}         hash  N -> "on_hand:reserved:safety_stock:seq"   (planning view, per sku)
  ships:{view}     hash  N -> "day:used:seq"   (planning view of the shipments spent per node)

Every change at a node also goes to the per-sku views, stamped with the node's seq; a state is
written into a view only if its seq is newer than the one there, so a late or repeated write never
rolls a view back. On a single Redis the store passes the view keys of the skus a call names as
extra KEYS and the node function writes them itself, in the same atomic step; the hold functions
(hold, release, fulfil, pin) refuse to run, changing nothing, when they would touch a view they
were not given, so every change of holds reaches the views in its own atomic step. Node functions
return the state of what they touched as a flat list {seq, S1, view1, S2, view2, ...}; on Redis
Cluster, where view keys live in other slots, the store writes it with ae_view_merge in a second
step (a crash between the two leaves a view stale until `allocation-engine repair` reconciles it
from ae_node_state, or the node changes again).
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

-- Appends S1, view1, ... to `reply` for the touched skus that the node holds a position of, each
-- value stamped `seq`; those with a view key in `views` are written to it here too, under the
-- node id `node`. Every node function's reply ends so.
local function append_positions(reply, pos_key, touched, seq, views, node)
  for sku in pairs(touched) do
    local raw = redis.call('HGET', pos_key, sku)
    if raw then
      local on_hand, reserved, safety = unpack_pos(raw)
      local value = pack(on_hand, reserved, safety, seq)
      if views and views[sku] then
        view_write(views[sku], node, value)
      end
      table.insert(reply, sku)
      table.insert(reply, value)
    end
  end
  return reply
end

-- The reply of every node function but the hold functions: {head..., seq, S1, view1, ...}.
local function view_reply(keys, touched, head, inline, node)
  local seq = redis.call('INCR', keys[4])
  local reply = head or {}
  table.insert(reply, seq)
  return append_positions(reply, keys[1], touched, seq, inline, node)
end

--[[ The hold functions (ae_hold, ae_release, ae_fulfil, ae_pin) change holds, so they change
`reserved` and the node's shipments of the day. They share one calling convention:
KEYS: pos, holds, exp, seq, ships, lots of one node; on a single Redis then the shipments view and
      the view key of each sku named in ARGV[3], in that order (on Cluster nothing more: the store
      writes the views in a second step from the reply)
ARGV: node id, now_ms, the skus of the view keys joined by RS ('' = none), then the function's own
With view keys given, every view the call changes is written in the same atomic step. A call that
would touch a sku whose view key it was not given (an expired hold swept on the way, a hold whose
lines the caller did not know) changes nothing and returns {-2, {missing skus}}: the store calls
again with those keys too.
Returns {code, lots, shipments value or '', S1, view1, ...}; lots is {L1, free1, ...}, the units
not yet held of each lot an ae_hold asked for (empty for the others), and the shipments value is
"day:used:seq" when the call changed the node's count of the day.
  inv:{N}:ships  hash  day -> the UTC day (days since the epoch), used -> shipments spent that day
  holds carry the day whose shipment they spent ("d"); giving one back returns it to that day
  only while that day is still the node's current one. ]]
local DAY_MS = 86400000
local NEED = -2

local function context(keys, args)
  local ctx = {keys = keys, node = args[1], now_ms = tonumber(args[2]), touched = {}}
  ctx.day = math.floor(ctx.now_ms / DAY_MS)
  if #keys > 6 then
    ctx.ship_view, ctx.views = keys[7], {}
    local k = 8
    for sku in string.gmatch(args[3], '[^\30]+') do
      ctx.views[sku] = keys[k]
      k = k + 1
    end
  end
  return ctx
end

local function spent(ctx)
  local raw = redis.call('HMGET', ctx.keys[5], 'day', 'used')
  return tonumber(raw[1]), tonumber(raw[2]) or 0
end

-- Skus of `lines_list` without a view key (none on Cluster, where no view is written inline).
local function missing(ctx, lines_list)
  local out, seen = {}, {}
  if not ctx.views then
    return out
  end
  for _, lines in ipairs(lines_list) do
    for sku in pairs(lines) do
      if not ctx.views[sku] and not seen[sku] then
        seen[sku] = true
        table.insert(out, sku)
      end
    end
  end
  return out
end

-- Holds past their expiry: {{rid, hold}, ...}; stale index entries are dropped.
local function expired(ctx)
  local out = {}
  for _, rid in ipairs(redis.call('ZRANGEBYSCORE', ctx.keys[3], '-inf', ctx.now_ms)) do
    local raw = redis.call('HGET', ctx.keys[2], rid)
    if raw then
      table.insert(out, {rid, cjson.decode(raw)})
    else
      redis.call('ZREM', ctx.keys[3], rid)
    end
  end
  return out
end

local function lines_of(list)
  local out = {}
  for _, entry in ipairs(list) do
    table.insert(out, entry[2].l)
  end
  return out
end

-- Adds `delta` to the held units of lot `lot_id` (and, when shipping, takes them off its units).
local function change_lot(lots_key, lot_id, delta, ship)
  local raw = redis.call('HGET', lots_key, lot_id)
  if raw then
    local lot = cjson.decode(raw)
    lot.h = lot.h + delta
    if ship then
      lot.u = math.max(0, lot.u + delta)
    end
    redis.call('HSET', lots_key, lot_id, cjson.encode(lot))
  end
end

-- Removes hold R (decoded as `hold`); a hold given back (not shipped) returns its shipment.
local function drop(ctx, rid, hold, ship)
  change_reserved(ctx.keys[1], hold.l, -1, ship)
  for lot_id, units in pairs(hold.t or {}) do
    change_lot(ctx.keys[6], lot_id, -units, ship)
  end
  redis.call('HDEL', ctx.keys[2], rid)
  redis.call('ZREM', ctx.keys[3], rid)
  for sku in pairs(hold.l) do
    ctx.touched[sku] = true
  end
  if not ship and hold.d then
    local day, used = spent(ctx)
    if day == tonumber(hold.d) and used > 0 then
      redis.call('HSET', ctx.keys[5], 'used', used - 1)
      ctx.ships = true
    end
  end
end

local function hold_reply(ctx, code)
  local seq = redis.call('INCR', ctx.keys[4])
  local ships = ''
  if ctx.ships then
    local day, used = spent(ctx)
    ships = string.format('%d:%d:%d', day, used, seq)
    if ctx.ship_view then
      view_write(ctx.ship_view, ctx.node, ships)
    end
  end
  local frees = {}
  for lot_id in pairs(ctx.takes or {}) do
    local raw = redis.call('HGET', ctx.keys[6], lot_id)
    local lot = raw and cjson.decode(raw)
    table.insert(frees, lot_id)
    table.insert(frees, lot and math.max(0, lot.u - lot.h) or 0)
  end
  return append_positions({code, frees, ships}, ctx.keys[1], ctx.touched, seq, ctx.views, ctx.node)
end

-- Whether two hold line tables ask for the same units of the same skus.
local function same_lines(a, b)
  for sku, units in pairs(a) do
    if b[sku] ~= units then
      return false
    end
  end
  for sku in pairs(b) do
    if a[sku] == nil then
      return false
    end
  end
  return true
end

--[[ ae_hold: take a hold if every line is available, every lot has the units not yet held, and
the node has a shipment left today.
ARGV (after the shared three): reservation id, expires_ms (0 = never), capacity ('' = unlimited),
      the lot takes "L US units" joined by RS ('' = none), then sku, units pairs
Code: 1 held (an existing hold of the same id counts as held), 0 short of stock, 2 no shipment
left today. ]]
local function ae_hold(keys, args)
  local ctx = context(keys, args)
  local rid, expires_ms, capacity = args[4], tonumber(args[5]), args[6]
  local lines, takes = {}, {}
  for i = 8, #args, 2 do
    lines[args[i]] = tonumber(args[i + 1])
  end
  for lot_id, units in string.gmatch(args[7], '([^\30\31]+)\31(%d+)') do
    takes[lot_id] = tonumber(units)
  end
  ctx.takes = takes
  local due = expired(ctx)
  local check = lines_of(due)
  table.insert(check, lines)
  local need = missing(ctx, check)
  if #need > 0 then
    return {NEED, need, ''}
  end
  for _, entry in ipairs(due) do
    drop(ctx, entry[1], entry[2], false)
  end
  for sku in pairs(lines) do
    ctx.touched[sku] = true
  end
  local existing = redis.call('HGET', keys[2], rid)
  if existing then  -- held already: the same lines count as held, other lines are refused
    local old = cjson.decode(existing)
    return hold_reply(ctx, (same_lines(old.l, lines) and same_lines(old.t or {}, takes)) and 1 or 0)
  end
  local fits = expires_ms == 0 or expires_ms > ctx.now_ms
  for sku, units in pairs(lines) do
    local raw = redis.call('HGET', keys[1], sku)
    local on_hand, reserved, safety = unpack_pos(raw)
    if not raw or available(on_hand, reserved, safety) < units then
      fits = false
    end
  end
  local promised = {}
  for lot_id, units in pairs(takes) do
    local raw = redis.call('HGET', keys[6], lot_id)
    local lot = raw and cjson.decode(raw)
    if not lot or lot.u - lot.h < units then
      fits = false
    else
      promised[lot_id] = lot.d
    end
  end
  if not fits then
    return hold_reply(ctx, 0)
  end
  local day, used = spent(ctx)
  if day ~= ctx.day then
    used = 0
  end
  if capacity ~= '' and used >= tonumber(capacity) then
    return hold_reply(ctx, 2)
  end
  change_reserved(keys[1], lines, 1, false)
  for lot_id, units in pairs(takes) do
    change_lot(keys[6], lot_id, units, false)
  end
  local hold = {l = lines, e = expires_ms, d = ctx.day, c = ctx.now_ms}
  if next(takes) then
    hold.t, hold.p = takes, promised
  end
  redis.call('HSET', keys[2], rid, cjson.encode(hold))
  if expires_ms > 0 then
    redis.call('ZADD', keys[3], expires_ms, rid)
  end
  redis.call('HSET', keys[5], 'day', ctx.day, 'used', used + 1)
  ctx.ships = true
  return hold_reply(ctx, 1)
end

--[[ ae_release / ae_fulfil: give a hold back (its shipment too), or ship it (units leave
on_hand and reserved, the shipment stays spent).
ARGV (after the shared three): reservation id
Code: 1 (a hold that is not there changes nothing). ]]
local function drop_hold(keys, args, ship)
  local ctx = context(keys, args)
  local raw = redis.call('HGET', keys[2], args[4])
  if not raw then
    return hold_reply(ctx, 1)
  end
  local hold = cjson.decode(raw)
  local need = missing(ctx, {hold.l})
  if #need > 0 then
    return {NEED, need, ''}
  end
  drop(ctx, args[4], hold, ship)
  return hold_reply(ctx, 1)
end

local function ae_release(keys, args)
  return drop_hold(keys, args, false)
end

local function ae_fulfil(keys, args)
  return drop_hold(keys, args, true)
end

--[[ ae_pin: make an unexpired hold permanent (commit).
ARGV (after the shared three): reservation id
Code: 1 pinned, 0 the hold is gone or expired. ]]
local function ae_pin(keys, args)
  local ctx = context(keys, args)
  local rid = args[4]
  local due = expired(ctx)
  local need = missing(ctx, lines_of(due))
  if #need > 0 then
    return {NEED, need, ''}
  end
  for _, entry in ipairs(due) do
    drop(ctx, entry[1], entry[2], false)
  end
  local raw = redis.call('HGET', keys[2], rid)
  if not raw then
    return hold_reply(ctx, 0)
  end
  local hold = cjson.decode(raw)
  hold.e = 0
  redis.call('HSET', keys[2], rid, cjson.encode(hold))
  redis.call('ZREM', keys[3], rid)
  return hold_reply(ctx, 1)
end

--[[ ae_node_state: the node's whole state, read atomically, for reconciling its views.
KEYS: pos, seq, ships of one node
Returns {seq, shipments "day:used:seq" or '', S1, "on_hand:reserved:safety_stock:seq", ...}. ]]
local function ae_node_state(keys, args)
  local seq = tonumber(redis.call('GET', keys[2]) or '0')
  local day, used = redis.call('HGET', keys[3], 'day'), redis.call('HGET', keys[3], 'used')
  local ships = ''
  if day then
    ships = string.format('%d:%d:%d', tonumber(day), tonumber(used or '0'), seq)
  end
  local reply = {seq, ships}
  local all = redis.call('HGETALL', keys[1])
  for i = 1, #all, 2 do
    local on_hand, reserved, safety = unpack_pos(all[i + 1])
    table.insert(reply, all[i])
    table.insert(reply, pack(on_hand, reserved, safety, seq))
  end
  return reply
end

-- Sets on_hand (and safety stock) of `records` ({sku, on_hand, safety or ''}) where `version` is
-- not older than the one that set the position; `view_key(k)` is the view key of record k to
-- write inline, or nil (then its state goes into the reply). Returns {applied, skipped, seq, ...}.
local function apply_snapshot(keys, node, version, records, view_key)
  local applied, skipped = 0, 0
  local seq = redis.call('INCR', keys[4])
  local reply = {0, 0, seq}
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
        local view = view_key(k)
        if view then
          view_write(view, node, value)
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

--[[ ae_snapshot: set on_hand (and safety stock) where this version is not older than the one
that set the position; holds are left alone.
KEYS: pos, holds, exp, seq of one node, then optionally the view key of each record's sku
ARGV: node id, version, then one string of records "sku US on_hand US safety_stock" ('' = keep) joined
      by RS (US = \31, RS = \30: one argument instead of three per position)
Returns {applied, skipped, seq, S1, view1, ...}. ]]
local function ae_snapshot(keys, args)
  local records = {}
  for sku, on_hand, safety in string.gmatch(args[3], '([^\30\31]+)\31([^\30\31]*)\31([^\30\31]*)') do
    table.insert(records, {sku, tonumber(on_hand), safety})
  end
  return apply_snapshot(keys, args[1], tonumber(args[2]), records, function(k)
    return keys[4 + k]
  end)
end

--[[ ae_snapshot_commit: apply what a staged snapshot holds for this node, then drop the stage.
KEYS: pos, holds, exp, seq of one node, the node's stage hash (sku -> "on_hand US safety_stock"),
      then optionally the view key of each sku of ARGV[3], in that order
ARGV: node id, version, the staged skus joined by RS
Returns {applied, skipped, seq, S1, view1, ...}. ]]
local function ae_snapshot_commit(keys, args)
  local skus = {}
  for sku in string.gmatch(args[3], '[^\30]+') do
    table.insert(skus, sku)
  end
  local records = {}
  for first = 1, #skus, BATCH do
    local batch = {}
    for k = first, math.min(#skus, first + BATCH - 1) do
      table.insert(batch, skus[k])
    end
    local staged = redis.call('HMGET', keys[5], unpack(batch))
    for k, raw in ipairs(staged) do
      if raw then
        local on_hand, safety = string.match(raw, '^(%d+)\31(%d*)$')
        table.insert(records, {batch[k], tonumber(on_hand), safety, first + k - 1})
      end
    end
  end
  local inline = #keys > 5
  local reply = apply_snapshot(keys, args[1], tonumber(args[2]), records, function(k)
    if inline then
      return keys[5 + records[k][4]]
    end
    return nil
  end)
  redis.call('DEL', keys[5])
  return reply
end

--[[ ae_adjust: add on_hand deltas once per key (on_hand stops at 0 and at max_units).
KEYS: pos, holds, exp, seq, applied of one node, then optionally the view key of each sku
ARGV: node id, key, now_ms, keep_ms (how long applied keys are remembered), max_units, then sku,
      delta, safety_stock ('' = keep) triples
Returns {number of clamped skus, the clamped skus, seq, S1, view1, ...}. ]]
local function ae_adjust(keys, args)
  local node, key, now_ms, keep_ms = args[1], args[2], tonumber(args[3]), tonumber(args[4])
  local max_units = tonumber(args[5])
  local touched, clamped, skus = {}, {}, {}
  for i = 6, #args, 3 do
    touched[args[i]] = true
    table.insert(skus, args[i])
  end
  local inline = inline_views(keys, 6, skus)
  if redis.call('ZSCORE', keys[5], key) then
    return view_reply(keys, touched, {0}, inline, node)
  end
  redis.call('ZADD', keys[5], now_ms, key)
  redis.call('ZREMRANGEBYSCORE', keys[5], '-inf', now_ms - keep_ms)
  for i = 6, #args, 3 do
    local sku, delta = args[i], tonumber(args[i + 1])
    local on_hand, reserved, safety, version = unpack_pos(redis.call('HGET', keys[1], sku))
    if on_hand + delta < 0 or on_hand + delta > max_units then
      table.insert(clamped, sku)
    end
    if args[i + 2] ~= '' then
      safety = tonumber(args[i + 2])
    end
    local counted = math.min(max_units, math.max(0, on_hand + delta))
    redis.call('HSET', keys[1], sku, pack(counted, reserved, safety, version))
  end
  local head = {#clamped}
  for _, sku in ipairs(clamped) do
    table.insert(head, sku)
  end
  return view_reply(keys, touched, head, inline, node)
end

--[[ Incoming supply. Keys already applied live in inv:{N}:applied (as adjustments' do, with a
prefix per operation), and the answer of a receipt or revision in inv:{N}:answers, so a repeat of
its key answers the same; both are forgotten after keep_ms. ]]

-- Marks `key` applied now and forgets keys (and their answers) older than keep_ms.
local function mark_applied(applied, answers, key, now_ms, keep_ms)
  local old = redis.call('ZRANGEBYSCORE', applied, '-inf', now_ms - keep_ms)
  for first = 1, #old, BATCH do
    local batch = {}
    for k = first, math.min(#old, first + BATCH - 1) do
      table.insert(batch, old[k])
    end
    redis.call('HDEL', answers, unpack(batch))
    redis.call('ZREM', applied, unpack(batch))
  end
  redis.call('ZADD', applied, now_ms, key)
end

-- The holds against lot `lot_id`, earliest taken first: {{rid, hold}, ...}.
local function promise_order(holds_key, lot_id)
  local out = {}
  local all = redis.call('HGETALL', holds_key)
  for i = 1, #all, 2 do
    local hold = cjson.decode(all[i + 1])
    if hold.t and hold.t[lot_id] then
      table.insert(out, {all[i], hold})
    end
  end
  table.sort(out, function(a, b)
    if a[2].c ~= b[2].c then
      return (a[2].c or 0) < (b[2].c or 0)
    end
    return a[1] < b[1]
  end)
  return out
end

--[[ ae_lot_index: admit lot ids to the index of which node and sku each belongs to. Lots
received in full stay indexed for keep_ms (a repeat of the receipt's key still finds its
answer), then are forgotten here.
KEYS: {meta}:lots, {meta}:lots_done
ARGV: now_ms, keep_ms, then lot id, "node US sku" pairs
Returns {0} when every lot is new or already so indexed (then all are written), else
{k, "node US sku"}: the k-th pair names a lot of another node or sku, and nothing is written. ]]
local function ae_lot_index(keys, args)
  local old = redis.call('ZRANGEBYSCORE', keys[2], '-inf', tonumber(args[1]) - tonumber(args[2]))
  for first = 1, #old, BATCH do
    local batch = {}
    for k = first, math.min(#old, first + BATCH - 1) do
      table.insert(batch, old[k])
    end
    redis.call('HDEL', keys[1], unpack(batch))
    redis.call('ZREM', keys[2], unpack(batch))
  end
  for i = 3, #args, 2 do
    local owner = redis.call('HGET', keys[1], args[i])
    if owner and owner ~= args[i + 1] then
      return {(i - 1) / 2, owner}
    end
  end
  for i = 3, #args, 2 do
    redis.call('HSET', keys[1], args[i], args[i + 1])
    redis.call('ZREM', keys[2], args[i])
  end
  return {0}
end

--[[ ae_supply_put: create lots of one node or set their units, date and kind, once per key.
KEYS: lots, applied, answers of one node
ARGV: key, now_ms, keep_ms, then lot id, sku, units, expected date, kind groups
Returns {1 applied or 0 already applied, lot JSON ...} in the order given (false for a lot no
longer there), or {-1, k, held}: the k-th lot's units are below its held units (nothing changed). ]]
local function ae_supply_put(keys, args)
  local key = 'supply:' .. args[1]
  local code = 0
  if not redis.call('ZSCORE', keys[2], key) then
    for i = 4, #args, 5 do
      local raw = redis.call('HGET', keys[1], args[i])
      local held = raw and cjson.decode(raw).h or 0
      if tonumber(args[i + 2]) < held then
        return {-1, (i - 4) / 5 + 1, held}
      end
    end
    for i = 4, #args, 5 do
      local raw = redis.call('HGET', keys[1], args[i])
      local held = raw and cjson.decode(raw).h or 0
      local lot = {n = args[i + 1], u = tonumber(args[i + 2]), d = args[i + 3], k = args[i + 4], h = held}
      redis.call('HSET', keys[1], args[i], cjson.encode(lot))
    end
    mark_applied(keys[2], keys[3], key, tonumber(args[2]), tonumber(args[3]))
    code = 1
  end
  local reply = {code}
  for i = 4, #args, 5 do
    table.insert(reply, redis.call('HGET', keys[1], args[i]) or false)
  end
  return reply
end

--[[ ae_supply_receive: units of a lot arrived. They go on_hand (up to max_units); holds against
the lot, earliest first, get as many of them on the shelf as they held (holds past their expiry
get none: they are being swept and give their lot units back); the rest stays expected, and a lot
with nothing expected nor held is dropped.
KEYS: pos, holds, exp, seq, lots, applied, answers of one node, then optionally the sku's view
ARGV: node id, key, now_ms, keep_ms, lot id, units, max_units
Returns {1, answer JSON, seq, S, view} when applied, {0, answer JSON} for a repeat of the key, and
{-1} when the node has no such lot. The answer: {"r": reservation ids in promise order, "s": those
now holding shelf units only (nothing of them waits for a lot any more), "lot": lot JSON or
false, "lv": "on_hand:reserved:safety_stock"}. ]]
local function ae_supply_receive(keys, args)
  local node, key, now_ms, keep_ms = args[1], 'receive:' .. args[2], tonumber(args[3]), tonumber(args[4])
  local lot_id, units, max_units = args[5], tonumber(args[6]), tonumber(args[7])
  local seen = redis.call('HGET', keys[7], key)
  if seen then
    return {0, seen}
  end
  local raw = redis.call('HGET', keys[5], lot_id)
  if not raw then
    return {-1}
  end
  local lot = cjson.decode(raw)
  local sku = lot.n
  local on_hand, reserved, safety, version = unpack_pos(redis.call('HGET', keys[1], sku))
  on_hand = math.min(max_units, on_hand + units)
  local left, order, shelf = units, {}, {}
  for _, entry in ipairs(promise_order(keys[2], lot_id)) do
    local rid, hold = entry[1], entry[2]
    table.insert(order, rid)
    if hold.e == 0 or hold.e > now_ms then
      local moved = math.min(left, hold.t[lot_id])
      left = left - moved
      hold.t[lot_id] = hold.t[lot_id] - moved
      hold.l[sku] = (hold.l[sku] or 0) + moved
      reserved = reserved + moved
      lot.h = lot.h - moved
      if hold.t[lot_id] == 0 then
        hold.t[lot_id] = nil
        if hold.p then
          hold.p[lot_id] = nil
        end
        if next(hold.t) == nil then  -- nothing of it waits for supply any more
          table.insert(shelf, rid)
        end
      end
      redis.call('HSET', keys[2], rid, cjson.encode(hold))
    end
  end
  redis.call('HSET', keys[1], sku, pack(on_hand, reserved, safety, version))
  lot.u = math.max(0, lot.u - units)
  local stored = false
  if lot.u == 0 and lot.h == 0 then
    redis.call('HDEL', keys[5], lot_id)
  else
    stored = cjson.encode(lot)
    redis.call('HSET', keys[5], lot_id, stored)
  end
  local answer = cjson.encode({r = order, s = shelf, lot = stored,
    lv = string.format('%d:%d:%d', on_hand, reserved, safety)})
  redis.call('HSET', keys[7], key, answer)
  mark_applied(keys[6], keys[7], key, now_ms, keep_ms)
  return view_reply(keys, {[sku] = true}, {1, answer}, inline_views(keys, 8, {sku}), node)
end

--[[ ae_supply_revise: set a lot's units and/or expected date (late, or cut).
KEYS: lots, holds, applied, answers of one node
ARGV: key, now_ms, keep_ms, lot id, units ('' = keep), expected date ('' = keep)
Returns {1 applied or 0 a repeat, answer JSON} or {-1} when the node has no such lot. The
answer: {"lot": lot JSON, "b": the reservations whose promise no longer holds, in promise order
(held beyond the new units, or promised before the new date)}. ]]
local function ae_supply_revise(keys, args)
  local key, now_ms, keep_ms, lot_id = 'revise:' .. args[1], tonumber(args[2]), tonumber(args[3]), args[4]
  local seen = redis.call('HGET', keys[4], key)
  if seen then
    return {0, seen}
  end
  local raw = redis.call('HGET', keys[1], lot_id)
  if not raw then
    return {-1}
  end
  local lot = cjson.decode(raw)
  if args[5] ~= '' then
    lot.u = tonumber(args[5])
  end
  if args[6] ~= '' then
    lot.d = args[6]
  end
  local stored = cjson.encode(lot)
  redis.call('HSET', keys[1], lot_id, stored)
  local broken, promised = {}, 0
  for _, entry in ipairs(promise_order(keys[2], lot_id)) do
    promised = promised + entry[2].t[lot_id]
    local date = entry[2].p and entry[2].p[lot_id] or lot.d
    if promised > lot.u or date < lot.d then
      table.insert(broken, entry[1])
    end
  end
  local answer = cjson.encode({lot = stored, b = broken})
  redis.call('HSET', keys[4], key, answer)
  mark_applied(keys[3], keys[4], key, now_ms, keep_ms)
  return {1, answer}
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
redis.register_function{function_name = 'ae_node_state', callback = ae_node_state, flags = {'no-writes'}}
redis.register_function('ae_snapshot', ae_snapshot)
redis.register_function('ae_snapshot_commit', ae_snapshot_commit)
redis.register_function('ae_adjust', ae_adjust)
redis.register_function('ae_view_merge', ae_view_merge)
redis.register_function('ae_lot_index', ae_lot_index)
redis.register_function('ae_supply_put', ae_supply_put)
redis.register_function('ae_supply_receive', ae_supply_receive)
redis.register_function('ae_supply_revise', ae_supply_revise)
redis.register_function('ae_snapshot_version', ae_snapshot_version)
redis.register_function('ae_upsert_nodes', ae_upsert_nodes)
redis.register_function('ae_put_rules', ae_put_rules)
redis.register_function('ae_replace_reservation', ae_replace_reservation)
redis.register_function('ae_claim_key', ae_claim_key)
