-- ratelimit: a token bucket per connection. rate.per_second tokens a
-- second, at most rate.burst, read from the rules at every event so that a
-- saved rules.lua applies at once. The buckets live in conn:data(), which
-- the server keeps for the connection's whole life, across reloads.
local space = require "space"
local now_ms = space.now

local RateLimit = { VERSION = "1.0.0", PRIORITY = 1000 }

-- What on_event needs of a conf, worked out once per conf table: the
-- counted events as a set, and the rules module. A reload brings a new
-- conf (and a new copy of this file), so nothing here outlives its rules.
local prepared = setmetatable({}, { __mode = "k" })

local function prepare(conf)
  local p = { events = {}, rules = require(conf.rules) }
  for _, e in ipairs(conf.events) do p.events[e] = true end
  prepared[conf] = p
  return p
end

local function take(bucket, rate, now)
  local tokens = bucket.tokens + (now - bucket.at) / 1000 * rate.per_second
  if not (tokens < rate.burst) then tokens = rate.burst end -- math.min(rate.burst, tokens)
  bucket.at = now
  if tokens < 1 then
    bucket.tokens = tokens
    return false
  end
  bucket.tokens = tokens - 1
  return true
end

function RateLimit:on_event(conf, conn, event)
  local p = prepared[conf] or prepare(conf)
  if not p.events[event] then return end
  local rate = p.rules.rate
  local data = conn:data()
  local now = now_ms()
  local bucket = data.ratelimit
  if not bucket then
    bucket = { tokens = rate.burst, at = now }
    data.ratelimit = bucket
  end
  if not take(bucket, rate, now) then
    return nil, "rate_limited", ("at most %s messages a second, %s at once"):format(rate.per_second, rate.burst)
  end
end

return RateLimit
