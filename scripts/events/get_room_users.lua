-- get_room_users {room} -> room_users {room, users, count}
local space = require "space"
local event = require "app.event"

return event({
  { "room", "room" },
}, function(_, data)
  local room = data.room
  local users, count = space.room_users(room)
  return "room_users", { room = room, users = users, count = count }
end)
