-- send_file {room, name, type, data} -> file_sent {id, room, name, type,
-- size, url}; the others get new_file {id, room, user, name, type, size,
-- url}. data is base64 text or a Socket.IO binary attachment. Everything is
-- checked before anything is stored; storing runs off the event loop and
-- the answer follows when it is done.
local space = require "space"
local rules = require "rules"
local event = require "app.event"

local function allowed_type(t)
  for _, allowed in ipairs(rules.file.types) do
    if allowed == t then return true end
  end
  return false
end

-- The bytes of data, or nil, code, message. Sizes are checked before
-- decoding, so an oversized upload costs no decoding.
local function decode(data)
  local max = rules.file.max_bytes
  if space.is_binary(data) then
    if #data > max then return nil, "file_too_large", ("files have at most %d bytes"):format(max) end
    return data
  end
  if type(data) ~= "string" then return nil, "invalid_payload", "'data' must be base64 text or binary" end
  local padding = data:sub(-2):match("=*$") -- only the end: a pattern over 10 MiB is slow
  if #data // 4 * 3 - #padding > max then
    return nil, "file_too_large", ("files have at most %d bytes"):format(max)
  end
  local bytes = space.base64_decode(data)
  if not bytes then return nil, "invalid_file", "'data' is not valid base64" end
  return bytes
end

return event({
  { "room", "room" },
  { "name", "string" },
  { "type", "string" },
  { "data", "any" }, -- base64 text or binary: decode() says which is wrong, after in_room
  in_room = true,
  ev = true, -- answered later, from the store's callback
}, function(conn, data, ev)
  local room, name, mime = data.room, data.name, data.type
  local bytes, code, msg = decode(data.data)
  if not bytes then return nil, code, msg end
  local name_ok, why = space.check_file_name(name, rules.file.max_name_bytes)
  if not name_ok then return nil, "invalid_file", why end
  if not allowed_type(mime) then
    return nil, "file_type_not_allowed", ("files of type %s are not allowed"):format(mime)
  end
  if space.sniff_type(bytes) ~= mime then
    return nil, "file_type_not_allowed", ("the content is not %s"):format(mime)
  end

  local user = conn:user()
  space.store_file(bytes, { type = mime, name = name }, function(file, err)
    if not file then
      space.log("error", "send_file: " .. tostring(err))
      conn:reply(ev, "error", { code = "internal_error", message = "the file could not be stored", event = "send_file" })
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
