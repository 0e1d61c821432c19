-- send_file {room, name, type, data} -> file_sent {id, room, name, type,
-- size, url}; the others get new_file {id, room, user, name, type, size,
-- url}. data is base64 text or a Socket.IO binary attachment; large base64
-- text arrives as a file handle (space.is_file), never as a Lua string.
-- The cheap checks run here; decoding, the content's type, hashing and
-- writing run off the event loop in space.store_file, and the answer
-- follows from its callback.
local space = require "space"
local rules = require "rules"
local event = require "app.event"

local function allowed_type(t)
  for _, allowed in ipairs(rules.file.types) do
    if allowed == t then return true end
  end
  return false
end

-- The upload's size (what base64 text decodes to, from its length and
-- padding: the store checks the real size after decoding) and whether it
-- is base64; or nil, code, message. The size is checked before anything
-- is decoded, so an oversized upload costs no decoding.
local function measure(data)
  if space.is_binary(data) then return #data, false end
  if space.is_file(data) then return data.size, true end
  if type(data) ~= "string" then return nil, "invalid_payload", "'data' must be base64 text or binary" end
  local padding = data:sub(-2):match("=*$")
  return #data // 4 * 3 - #padding, true
end

return event({
  { "room", "room" },
  { "name", "string" },
  { "type", "string" },
  { "data", "any" }, -- base64 text or binary: measure() says which is wrong, after in_room
  in_room = true,
  ev = true, -- answered later, from the store's callback
}, function(conn, data, ev)
  local room, name, mime = data.room, data.name, data.type
  local max = rules.file.max_bytes
  local size, base64, msg = measure(data.data)
  if not size then return nil, base64, msg end
  if size > max then return nil, "file_too_large", ("files have at most %d bytes"):format(max) end
  local name_ok, why = space.check_file_name(name, rules.file.max_name_bytes)
  if not name_ok then return nil, "invalid_file", why end
  if not allowed_type(mime) then
    return nil, "file_type_not_allowed", ("files of type %s are not allowed"):format(mime)
  end

  local user = conn:user()
  space.store_file(data.data, { type = mime, name = name, max_bytes = max, base64 = base64 }, function(file, code, message)
    if not file then
      if code == "internal_error" then space.log("error", "send_file: the file could not be stored") end
      conn:reply(ev, "error", { code = code, message = message, event = "send_file" })
      return
    end
    local sent = { id = file.id, room = room, name = file.name, type = file.type, size = file.size, url = file.url }
    local new_file = {
      id = file.id, room = room, user = user, name = file.name, type = file.type, size = file.size, url = file.url,
    }
    space.history_append(room, "new_file", new_file) -- kept, and given its offset
    conn:to(room, "new_file", new_file)
    conn:reply(ev, "file_sent", sent)
  end)
end)
