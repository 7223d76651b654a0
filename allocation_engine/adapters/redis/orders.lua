#!lua name=allocation_orders
--[[
Redis FUNCTIONS of the Redis order store (orders.py). functions.py loads this library with
FUNCTION LOAD REPLACE, and again when Redis lost it. All workflow keys share the hash tag {wf},
so this runs unchanged on Redis Cluster, where they all live in one slot (keys.py says why that
is enough and builds every name; the functions take them from KEYS and never build one).

Key layout (O = order id, C = customer id):
  {wf}:order:O           hash   version, state, doc (the order as JSON)
  {wf}:timeline:O        list   the order's events as JSON, oldest first
  {wf}:log               stream one entry per event (field e = JSON); the outbox reads it
  {wf}:ext:<channel id>  string O, for PlaceOrder's idempotency on (channel, external id)
  {wf}:orders            zset   O scored by created_at
  {wf}:customer-orders:C zset   O scored by created_at
  {wf}:state:<STATE>     zset   O scored by created_at
  {wf}:customer:C        string the customer as JSON
  {wf}:email:<e-mail>    string C
]]

--[[ wf_commit: stores one order change and appends its events, all or nothing.
KEYS[1] order hash       KEYS[2] timeline       KEYS[3] log stream      KEYS[4] external id key
KEYS[5] all orders zset  KEYS[6] customer's orders zset
KEYS[7] the zset of the state the caller read  KEYS[8] the zset of the new state
KEYS[9] customer key     KEYS[10] e-mail key
ARGV[1] expected version (0 = create)  ARGV[2] order id  ARGV[3] order JSON  ARGV[4] new version
ARGV[5] new state  ARGV[6] created_at  ARGV[7] new customer JSON ('' = none)  ARGV[8] customer id
ARGV[9] customer e-mail ('' = none)  ARGV[10..] event JSONs
Returns {'OK'}, {'STALE', current version}, {'EXTERNAL', order id} or {'CUSTOMER', customer id};
on anything but OK nothing was written. ]]
local function wf_commit(keys, args)
  local current = tonumber(redis.call('HGET', keys[1], 'version') or '0')
  if current ~= tonumber(args[1]) then
    return {'STALE', tostring(current)}
  end
  local order_id = args[2]
  if current == 0 then
    local other = redis.call('GET', keys[4])
    if other then
      return {'EXTERNAL', other}
    end
    if args[7] ~= '' then
      if redis.call('EXISTS', keys[9]) == 1 then
        return {'CUSTOMER', args[8]}
      end
      if args[9] ~= '' then
        local owner = redis.call('GET', keys[10])
        if owner then
          return {'CUSTOMER', owner}
        end
        redis.call('SET', keys[10], args[8])
      end
      redis.call('SET', keys[9], args[7])
    end
    redis.call('SET', keys[4], order_id)
    redis.call('ZADD', keys[5], args[6], order_id)
    redis.call('ZADD', keys[6], args[6], order_id)
  else
    redis.call('ZREM', keys[7], order_id)
  end
  redis.call('ZADD', keys[8], args[6], order_id)
  redis.call('HSET', keys[1], 'version', args[4], 'state', args[5], 'doc', args[3])
  for i = 10, #args do
    redis.call('RPUSH', keys[2], args[i])
    redis.call('XADD', keys[3], '*', 'e', args[i])
  end
  return {'OK'}
end

--[[ wf_put_customer: creates or replaces a customer and its e-mail index, all or nothing, if
the customer is as the caller read it.
KEYS[1] customer key  KEYS[2] the key of its new e-mail  KEYS[3] the key of the e-mail it had
ARGV[1] customer JSON  ARGV[2] customer id  ARGV[3] new e-mail ('' = none)
ARGV[4] NEW (the caller read no customer) or OLD  ARGV[5] the e-mail the caller read ('' = none)
Returns {'OK'}, {'STALE'} (created, or its e-mail changed, since the read) or
{'CUSTOMER', owner id} (another customer has the e-mail); on anything but OK nothing was
written. ]]
local function wf_put_customer(keys, args)
  local stored = redis.call('GET', keys[1])
  if args[4] == 'NEW' then
    if stored then
      return {'STALE'}
    end
  elseif not stored or cjson.decode(stored)['email'] ~= args[5] then
    return {'STALE'}
  end
  if args[3] ~= '' then
    local owner = redis.call('GET', keys[2])
    if owner and owner ~= args[2] then
      return {'CUSTOMER', owner}
    end
  end
  if args[4] == 'OLD' and args[5] ~= '' and args[5] ~= args[3] then
    redis.call('DEL', keys[3])
  end
  if args[3] ~= '' then
    redis.call('SET', keys[2], args[2])
  end
  redis.call('SET', keys[1], args[1])
  return {'OK'}
end

redis.register_function('wf_commit', wf_commit)
redis.register_function('wf_put_customer', wf_put_customer)
