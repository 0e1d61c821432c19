-- leave_room {room} -> left_room {room};
-- the others get user_left_room when the user's last connection left.
local space = require "space"
local event = require "app.event"

return event({
  { "room", "room" },
  in_room = true,
}, function(conn, data)
  local room = data.room
  local _, user_left = conn:leave(room)
  if user_left then
    space.to(room, "user_left_room", { room = room, user = conn:user() })
  end
  return "left_room", { room = room }
end)
