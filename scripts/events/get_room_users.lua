-- get_room_users {room} -> room_users {room, users, count}
local space = require "space"
local validate = require "app.validate"

return function(_, data)
  local ok, code, msg = validate.object(data)
  if not ok then return nil, code, msg end
  local room
  room, code, msg = validate.room(data)
  if not room then return nil, code, msg end
  local users, count = space.room_users(room)
  return "room_users", { room = room, users = users, count = count }
end
