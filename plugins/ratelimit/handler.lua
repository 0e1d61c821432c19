-- ratelimit: a token bucket per connection. rate.per_second tokens a
-- second, at most rate.burst, read from the rules at every event so that a
-- saved rules.lua applies at once. The buckets live in conn:data(), which
-- the server keeps for the connection's whole life, across reloads.
local space = require "space"

local RateLimit = { VERSION = "1.0.0", PRIORITY = 1000 }

local function counted(conf, event)
  for _, e in ipairs(conf.events) do
    if e == event then return true end
  end
  return false
end

local function take(bucket, rate, now)
  local refill = (now - bucket.at) / 1000 * rate.per_second
  bucket.tokens = math.min(rate.burst, bucket.tokens + refill)
  bucket.at = now
  if bucket.tokens < 1 then return false end
  bucket.tokens = bucket.tokens - 1
  return true
end

function RateLimit:on_event(conf, conn, event)
  if not counted(conf, event) then return end
  local rate = require(conf.rules).rate
  local data = conn:data()
  local now = space.now()
  data.ratelimit = data.ratelimit or { tokens = rate.burst, at = now }
  if not take(data.ratelimit, rate, now) then
    return nil, "rate_limited", ("at most %s messages a second, %s at once"):format(rate.per_second, rate.burst)
  end
end

return RateLimit
