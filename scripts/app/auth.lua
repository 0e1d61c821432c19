-- Development authentication (no JWT key configured): the CONNECT auth
-- object may carry {"name": "alice"}; the id is derived from the name, so
-- the same name is the same user. Without a name, each connection is its
-- own guest.
local M = {}

local MAX_NAME_BYTES = 64
-- Whitespace a name may carry around its bytes: a longer name is a guest
-- before any pattern reads it (the name is client text).
local MAX_NAME_EDGE_BYTES = 256

function M.authenticate(conn, auth)
  local name = auth.name
  if type(name) == "string" and #name <= MAX_NAME_BYTES + MAX_NAME_EDGE_BYTES then
    -- Both finds are linear ("%s+$" would retry from every space of an
    -- inner run): the last non-space is where "%S%s*$" matches.
    local first, last = name:find("%S"), name:find("%S%s*$")
    name = first and name:sub(first, last) or ""
    if #name > 0 and #name <= MAX_NAME_BYTES and utf8.len(name) then
      return { id = "dev:" .. name, name = name }
    end
  end
  return { id = "guest:" .. conn:id(), name = "guest-" .. conn:id():sub(1, 6) }
end

return M
