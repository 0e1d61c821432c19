-- send_message {room, text, client_msg_id?} -> message_sent {id, room,
-- timestamp, client_msg_id}; the others get new_message {id, room, user,
-- text, timestamp}. The rate limit is the ratelimit plugin's.
local space = require "space"
local rules = require "rules"
local validate = require "app.validate"

return function(conn, data)
  local ok, code, msg = validate.object(data)
  if not ok then return nil, code, msg end
  local room
  room, code, msg = validate.room(data)
  if not room then return nil, code, msg end
  local text
  text, code, msg = validate.string_field(data, "text")
  if not text then return nil, code, msg end
  local client_msg_id = data.client_msg_id
  if client_msg_id ~= nil and type(client_msg_id) ~= "string" and type(client_msg_id) ~= "number" then
    return nil, "invalid_payload", "'client_msg_id' must be a string or a number"
  end
  if not conn:in_room(room) then return nil, "not_in_room", "you are not in room " .. room end
  text, code, msg = validate.message_text(text, rules.message.max_length)
  if not text then return nil, code, msg end

  local id, now = space.new_id(), space.now()
  conn:to(room, "new_message", { id = id, room = room, user = conn:user(), text = text, timestamp = now })
  return "message_sent", {
    id = id, room = room, timestamp = now,
    client_msg_id = client_msg_id == nil and space.null or client_msg_id,
  }
end
