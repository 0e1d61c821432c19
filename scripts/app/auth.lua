-- Development authentication (no JWT key configured): the CONNECT auth
-- object may carry {"name": "alice"}; the id is derived from the name, so
-- the same name is the same user. Without a name, each connection is its
-- own guest.
local M = {}

local MAX_NAME_BYTES = 64

function M.authenticate(conn, auth)
  local name = auth.name
  if type(name) == "string" then
    name = name:gsub("^%s+", ""):gsub("%s+$", "")
    if #name > 0 and #name <= MAX_NAME_BYTES and utf8.len(name) then
      return { id = "dev:" .. name, name = name }
    end
  end
  return { id = "guest:" .. conn:id(), name = "guest-" .. conn:id():sub(1, 6) }
end

return M
