-- refresh_token {token} -> token_refreshed {exp}: a fresh JWT for the same
-- user before (or within the grace after) the current one expires.
local event = require "app.event"

return event({
  { "token", "string" },
}, function(conn, data)
  local exp, code, msg = conn:refresh_token(data.token)
  if not exp then return nil, code, msg end
  return "token_refreshed", { exp = exp }
end)
