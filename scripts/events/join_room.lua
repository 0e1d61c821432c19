-- join_room {room} -> joined_room {room, users, count};
-- the others get user_joined_room when this user was not in the room yet.
local space = require "space"
local rules = require "rules"
local event = require "app.event"

return event({
  { "room", "room" },
}, function(conn, data)
  local room = data.room
  if not conn:in_room(room) then
    local users = space.room_size(room)
    if users >= rules.room.max_users and not space.room_has_user(room, conn:user().id) then
      return nil, "room_full", ("room %s has %d users, the most it takes"):format(room, users)
    end
    local _, user_is_new = conn:join(room)
    if user_is_new then
      conn:to(room, "user_joined_room", { room = room, user = conn:user() })
    end
  end
  local users, count = space.room_users(room)
  return "joined_room", { room = room, users = users, count = count }
end)
