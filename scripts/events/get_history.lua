-- get_history {room, before?, limit?} -> room_history {room, messages,
-- has_more}: the room's new_message and new_file data as sent, each with its
-- offset, oldest first: the newest `limit` before the offset `before` (or
-- the newest of all). Members only. Read off the event loop; the answer
-- follows when the page is read.
local space = require "space"
local event = require "app.event"

return event({
  { "room", "room" },
  { "before", "string", optional = true, min = 16, max = 16, pattern = "^[0-9a-f]*$",
    message = "'before' must be an offset (as in a message's 'offset')" },
  { "limit", "integer", optional = true, min = 1, max = 200, default = 50,
    message = "'limit' must be 1 to 200" },
  in_room = true,
  ev = true, -- answered later, from the history's callback
}, function(conn, data, ev)
  local room = data.room
  space.history(room, { before = data.before, limit = data.limit }, function(messages, has_more, err)
    if not conn:is_open() then return end
    if not messages then
      space.log("error", "get_history: " .. tostring(err))
      conn:reply(ev, "error", { code = "internal_error", message = "the history could not be read", event = "get_history" })
      return
    end
    conn:reply(ev, "room_history", { room = room, messages = messages, has_more = has_more })
  end)
end)
