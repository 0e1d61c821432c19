-- Checks of client data shared by the handlers. Each returns the value, or
-- nil, code, message as the handlers answer.
local rules = require "rules"

local M = {}

-- A JSON object decodes to a table without metatable (arrays have one).
function M.object(data)
  if type(data) ~= "table" or getmetatable(data) ~= nil then
    return nil, "invalid_payload", "data must be a JSON object"
  end
  return data
end

function M.string_field(data, key)
  local v = data[key]
  if type(v) ~= "string" then
    return nil, "invalid_payload", ("'%s' must be a string"):format(key)
  end
  return v
end

-- Room names found valid, so that a room's every message does not run the
-- pattern again; emptied when it holds MAX_VALID_ROOMS names.
local MAX_VALID_ROOMS = 4096
local valid_rooms, n_valid_rooms = {}, 0

function M.room(data)
  local room, code, msg = M.string_field(data, "room")
  if not room then return nil, code, msg end
  if valid_rooms[room] then return room end
  if #room == 0 or #room > rules.room.max_length or room:find("[^%w_%-%.:]") then
    return nil, "invalid_room",
      ("room names have 1 to %d characters: letters, digits, _ - . :"):format(rules.room.max_length)
  end
  if n_valid_rooms == MAX_VALID_ROOMS then valid_rooms, n_valid_rooms = {}, 0 end
  valid_rooms[room], n_valid_rooms = true, n_valid_rooms + 1
  return room
end

-- Whitespace removed from both ends of a message: ASCII space, tab, newlines
-- and the no-break and ideographic spaces JavaScript's trim() also removes.
local LEAD_SPACES = "^[ \t\n\r\v\f]+"
local TRAIL_SPACES = "[ \t\n\r\v\f]+$"
local UNICODE_SPACES = { "\u{00A0}", "\u{FEFF}", "\u{3000}", "\u{2028}", "\u{2029}", "\u{202F}" }

-- The bytes a space (ASCII or one of UNICODE_SPACES) can start with, and
-- end with: a string whose two ends are none of them is already trimmed.
-- Most messages are, and this check spares them the patterns.
local FIRST, LAST = {}, {}
for _, b in ipairs({ 9, 10, 11, 12, 13, 32 }) do FIRST[b], LAST[b] = true, true end
for _, u in ipairs(UNICODE_SPACES) do FIRST[u:byte(1)], LAST[u:byte(-1)] = true, true end

local byte = string.byte

function M.trim(s)
  if not FIRST[byte(s, 1)] and not LAST[byte(s, -1)] then return s end
  local changed = true
  while changed do
    changed = false
    local t = s:gsub(LEAD_SPACES, ""):gsub(TRAIL_SPACES, "")
    for _, u in ipairs(UNICODE_SPACES) do
      if t:sub(1, #u) == u then t, changed = t:sub(#u + 1), true end
      if #t >= #u and t:sub(-#u) == u then t, changed = t:sub(1, -#u - 1), true end
    end
    s = t
  end
  return s
end

return M
