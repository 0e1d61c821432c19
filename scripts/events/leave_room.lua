-- leave_room {room} -> left_room {room};
-- the others get user_left_room when the user's last connection left.
local space = require "space"
local validate = require "app.validate"

return function(conn, data)
  local ok, code, msg = validate.object(data)
  if not ok then return nil, code, msg end
  local room
  room, code, msg = validate.room(data)
  if not room then return nil, code, msg end

  local was_member, user_left = conn:leave(room)
  if not was_member then return nil, "not_in_room", "you are not in room " .. room end
  if user_left then
    space.to(room, "user_left_room", { room = room, user = conn:user() })
  end
  return "left_room", { room = room }
end
