-- send_message {room, text, client_msg_id?} -> message_sent {id, room,
-- timestamp, client_msg_id}; the others get new_message {id, room, user,
-- text, timestamp, offset}, which the room's history keeps. The rate limit is the ratelimit plugin's.
local space = require "space"
local rules = require "rules"
local event = require "app.event"
local validate = require "app.validate"

return event({
  { "room", "room" },
  { "text", "string" },
  { "client_msg_id", { "string", "number" }, optional = true },
  in_room = true,
}, function(conn, data)
  local text, code, msg = validate.message_text(data.text, rules.message.max_length)
  if not text then return nil, code, msg end

  local room, id, now = data.room, space.new_id(), space.now()
  local message = { id = id, room = room, user = conn:user(), text = text, timestamp = now }
  space.history_append(room, "new_message", message) -- kept, and given its offset
  conn:to(room, "new_message", message)
  return "message_sent", {
    id = id, room = room, timestamp = now,
    client_msg_id = data.client_msg_id == nil and space.null or data.client_msg_id,
  }
end)
