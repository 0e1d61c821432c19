-- refresh_token {token} -> token_refreshed {exp}: a fresh JWT for the same
-- user before (or within the grace after) the current one expires.
local validate = require "app.validate"

return function(conn, data)
  local ok, code, msg = validate.object(data)
  if not ok then return nil, code, msg end
  local token
  token, code, msg = validate.string_field(data, "token")
  if not token then return nil, code, msg end
  local exp
  exp, code, msg = conn:refresh_token(token)
  if not exp then return nil, code, msg end
  return "token_refreshed", { exp = exp }
end
