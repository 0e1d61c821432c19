-- A token bucket per connection: rules.rate.per_second tokens a second, at
-- most rules.rate.burst. State lives in conn:data(), which the server keeps
-- for the connection's life.
local space = require "space"
local rules = require "rules"

local M = {}

function M.take(conn)
  local data = conn:data()
  local now = space.now()
  local b = data.bucket
  if not b then
    b = { tokens = rules.rate.burst, at = now }
    data.bucket = b
  end
  local refill = (now - b.at) / 1000 * rules.rate.per_second
  b.tokens = math.min(rules.rate.burst, b.tokens + refill)
  b.at = now
  if b.tokens < 1 then
    return nil, "rate_limited", ("at most %s messages a second"):format(rules.rate.per_second)
  end
  b.tokens = b.tokens - 1
  return true
end

return M
